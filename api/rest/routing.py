"""Route classes and dependencies: who may call a route, and the request's database session.

A route class wraps the handler FastAPI compiled for the route; it costs a fraction of a
generator dependency, which FastAPI runs through an exit stack and a shielded cancel scope on
every request.
"""

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from api.auth import authorize
from api.storage.store import StoreSession
from api.tasks.service import TaskService
from api.web.authentication import authenticate

E = TypeVar("E", bound=Callable[..., Any])


class OwnerRoute(APIRoute):
    """A route under /api/{user_id}: only the user in the path may call it.

    Authentication and the ownership rule run before the request body is read or parsed, so
    a caller who may not address this user learns nothing else and costs nothing more.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_for_owner(request: Request) -> Response:
            await check_owner(request)
            return await handle(request)

        return handle_for_owner


async def check_owner(request: Request) -> None:
    """Authenticate the caller and let through only the user in the path, as the caller."""
    caller = await authenticate(request)
    authorize(caller, request.path_params["user_id"])
    request.state.caller = caller


# A route's direct handler: the answer to an ordinary request, made without FastAPI's parameter
# parsing and dependency solving; None hands the request to the route's own handler (which then
# reads and validates it as always, and gives every error its usual answer).
DirectHandler = Callable[[Request, StoreSession, TaskService], Awaitable[Response | None]]

_DIRECT = "direct_handler"


def direct(handler: DirectHandler) -> Callable[[E], E]:
    """Mark a route's endpoint with its direct handler (see DirectHandler)."""

    def mark(endpoint: E) -> E:
        setattr(endpoint, _DIRECT, handler)
        return endpoint

    return mark


def direct_handler_of(route: object) -> DirectHandler | None:
    """The direct handler of a route with a session, if its endpoint is marked with one."""
    if not isinstance(route, SessionRoute):
        return None
    handler: DirectHandler | None = getattr(route.endpoint, _DIRECT, None)
    return handler


@dataclass
class DirectAnswers:
    """How many requests the direct handlers answered, and how many of those in front of the
    routing (api.rest.endpoint); tests read them."""

    direct: int = 0
    before_routing: int = 0


class SessionRoute(APIRoute):
    """A route whose request gets one database session before its handler runs, closed (so
    rolled back if left open) once the handler has made the answer.

    A route marked with a direct handler (`direct`) tries it first: FastAPI's parameter parsing
    and dependency solving cost more CPU than the service call of a list or a create, and an
    ordinary request needs neither. Errors the service raises reach the same exception handlers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        direct_handler = direct_handler_of(self)

        async def handle_with_session(request: Request) -> Response:
            tasks = tasks_of(request)
            async with tasks.session() as db:
                request.state.db = db
                answers: DirectAnswers | None = request.app.state.rest_direct_answers
                if direct_handler is not None and answers is not None:
                    response = await direct_handler(request, db, tasks)
                    if response is not None:
                        answers.direct += 1
                        return response
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
