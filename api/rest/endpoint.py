"""Ordinary REST lists and creates, answered in front of FastAPI's routing.

The routes' direct handlers (api.rest.routing, `direct`) already skip FastAPI's parameter
parsing and dependency solving; what was left of an ordinary create or list beyond the service
call was mostly the way to them: the router trying each route's pattern, its exception and
exit-stack layers, the route's request/response wrapper. `RestEndpoint` sits in the edge
middleware, in front of all that, and for a request that a route with a direct handler fully
matches it does what the route would: the owner check, the request's session, the direct
handler, the app's own exception handler for a service error. The route still answers whatever
the direct handler does not take (it hands the body it read back), and a caller the owner check
refuses, before anything has run.
"""

from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.rest.routing import (
    DirectAnswers,
    DirectHandler,
    OwnerRoute,
    check_owner,
    direct_handler_of,
    tasks_of,
)
from api.tasks.errors import TaskAPIError
from api.web.replay import replayed

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class RestEndpoint:
    """Answers the requests `routes`' direct handlers take; hands every other to `app`."""

    def __init__(
        self, app: ASGIApp, *, routes: Iterable[BaseRoute], answers: DirectAnswers
    ) -> None:
        self.app = app
        self.answers = answers
        self.routes: list[tuple[Route, DirectHandler]] = []
        for route in routes:
            handler = direct_handler_of(route)
            if handler is not None:
                # The owner check below is OwnerRoute's: a route without it is never answered here.
                assert isinstance(route, OwnerRoute), f"{route} has no owner check"
                self.routes.append((route, handler))
        # Where every such route lives, to pass other requests on at once.
        self.prefixes = tuple({route.path.split("{", 1)[0] for route, _ in self.routes})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(
            self.prefixes, len(scope.get("root_path", ""))
        ):
            await self.app(scope, receive, send)
            return
        for route, handler in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                # What the router would add: the endpoint, the path's parameters, the route
                # (which names the request in the metrics and the log).
                scope.update(child_scope)
                await self._answer(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, handler: DirectHandler, scope: Scope, receive: Receive, send: Send
    ) -> None:
        read: list[Message] = []

        async def recorded() -> Message:
            message = await receive()
            read.append(message)
            return message

        request = Request(scope, recorded, send)
        try:
            await check_owner(request)
        except TaskAPIError:
            # Nothing has run: the route refuses it, as it refuses every such caller.
            await self.app(scope, receive, send)
            return
        tasks = tasks_of(request)
        try:
            async with tasks.session() as db:
                request.state.db = db
                direct = await handler(request, db, tasks)
        except Exception as exc:
            on_error = _exception_handler(scope, exc)
            if on_error is None:
                raise  # unexpected: the server error middleware answers it, as for a route
            answer = await on_error(request, exc)
        else:
            if direct is None:
                # Not an ordinary request: the route reads it (again) and answers it as always.
                await self.app(scope, replayed(read, receive), send)
                return
            self.answers.direct += 1
            answer = direct
        self.answers.before_routing += 1
        await answer(scope, receive, send)


def _exception_handler(scope: Scope, exc: Exception) -> ExceptionHandler | None:
    """The app's handler for `exc`, looked up as Starlette's exception middleware does (by the
    exception's classes in order; the handler of Exception itself belongs to the server error
    middleware, outside)."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            handler: ExceptionHandler = handlers[cls]
            return handler
    return None
