"""The per-request GraphQL context: who is calling, the task service, and the request's session."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Concatenate, ParamSpec, TypeVar

from starlette.requests import Request
from strawberry.fastapi import BaseContext

from api.auth import Caller
from api.storage.store import StoreSession
from api.tasks.service import TaskService

P = ParamSpec("P")
R = TypeVar("R")


class Context(BaseContext):
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
async def request_context(
    request: Request | None, tasks: TaskService, caller: Caller
) -> AsyncIterator[Context]:
    """The context of one request: one session, as REST has, closed when the request ends."""
    async with AsyncExitStack() as stack:
        context = Context(tasks, caller, lambda: stack.enter_async_context(tasks.session()))
        context.request = request
        yield context
