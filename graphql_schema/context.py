"""The GraphQL context: who is calling, the task service, and the request's session; for a
WebSocket, one context for the whole connection."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from typing import Concatenate, ParamSpec, TypeVar

from starlette.requests import Request
from strawberry.fastapi import BaseContext

from api.auth import Caller
from api.storage.store import StoreSession
from api.tasks.events import Subscription
from api.tasks.service import TaskService

P = ParamSpec("P")
R = TypeVar("R")


class Context(BaseContext):
    # A WebSocket holds its own long-lived connection slot; an HTTP stream takes one per stream.
    holds_connection_slot = False

    def __init__(
        self,
        tasks: TaskService,
        caller: Caller,
        open_session: Callable[[], Awaitable[StoreSession]],
    ) -> None:
        super().__init__()
        self.tasks = tasks
        # Checked before anything runs (graphql_schema.permissions), on every field that names
        # a user.
        self.caller = caller
        self._open_session = open_session
        self._session: StoreSession | None = None
        self._session_lock = asyncio.Lock()

    async def run(
        self,
        call: Callable[Concatenate[StoreSession, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """`call` (a service method) with the request's session, held by one call at a time.

        GraphQL resolves a query's top-level fields concurrently, and a session must not run
        two operations at once; the lock keeps one session per request safe. The session is
        opened on first use, inside a resolver, so that waiting too long for a database
        connection is that field's SERVICE_UNAVAILABLE error like any other database failure.
        """
        async with self._session_lock:
            if self._session is None:
                self._session = await self._open_session()
            return await call(self._session, *args, **kwargs)

    @asynccontextmanager
    async def event_stream(self, user_id: str, after: str | None) -> AsyncIterator[Subscription]:
        """The user's task events for a subscription, closed when the block ends; no session is
        held meanwhile. Ends when the caller's token expires."""
        with ExitStack() as slot:
            if not self.holds_connection_slot:
                slot.enter_context(self.tasks.events.connection())
            subscription = await self.tasks.task_events(
                user_id, after, expires_at=self.caller.expires_at
            )
            try:
                yield subscription
            finally:
                subscription.close()


class ConnectionContext(Context):
    """A WebSocket's context: its caller comes with `connection_init` (or the handshake's
    header), and each operation takes a session of its own for as long as it runs, so an open
    socket holds no database connection."""

    holds_connection_slot = True

    def __init__(self, tasks: TaskService, caller: Caller) -> None:
        super().__init__(tasks, caller, self._unused_session)
        self.connection_params: dict[str, object] | None = None

    async def _unused_session(self) -> StoreSession:
        raise AssertionError("a connection's operations open their own sessions")

    async def run(
        self,
        call: Callable[Concatenate[StoreSession, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        async with self.tasks.session() as session:
            return await call(session, *args, **kwargs)


@asynccontextmanager
async def request_context(
    request: Request | None, tasks: TaskService, caller: Caller
) -> AsyncIterator[Context]:
    """The context of one request: one session, as REST has, closed when the request ends."""
    async with AsyncExitStack() as stack:
        context = Context(tasks, caller, lambda: stack.enter_async_context(tasks.session()))
        context.request = request
        yield context
