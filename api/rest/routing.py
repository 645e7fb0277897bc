"""Route classes and dependencies: who may call a route, and the request's database session.

A route class wraps the handler FastAPI compiled for the route; it costs a fraction of a
generator dependency, which FastAPI runs through an exit stack and a shielded cancel scope on
every request.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from api.auth import authorize
from api.storage.store import StoreSession
from api.tasks.service import TaskService
from api.web.authentication import authenticate


class OwnerRoute(APIRoute):
    """A route under /api/{user_id}: only the user in the path may call it.

    Authentication and the ownership rule run before the request body is read or parsed, so
    a caller who may not address this user learns nothing else and costs nothing more.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_for_owner(request: Request) -> Response:
            caller = await authenticate(request)
            authorize(caller, request.path_params["user_id"])
            request.state.caller = caller
            return await handle(request)

        return handle_for_owner


class SessionRoute(APIRoute):
    """A route whose request gets one database session before its handler runs, closed (so
    rolled back if left open) once the handler has made the answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_with_session(request: Request) -> Response:
            async with tasks_of(request).session() as db:
                request.state.db = db
                return await handle(request)

        return handle_with_session


class TaskRoute(OwnerRoute, SessionRoute):
    """Only the user in the path may call it (checked first), and it has the request's session."""


def tasks_of(request: Request) -> TaskService:
    """The app's task service, made at start-up."""
    service: TaskService = request.app.state.tasks
    return service


async def get_tasks(request: Request) -> TaskService:
    # async: FastAPI would run a plain function in its thread pool.
    return tasks_of(request)


async def get_session(request: Request) -> StoreSession:
    """The request's session, from its SessionRoute."""
    db: StoreSession = request.state.db
    return db


SessionDep = Annotated[StoreSession, Depends(get_session)]
TasksDep = Annotated[TaskService, Depends(get_tasks)]
