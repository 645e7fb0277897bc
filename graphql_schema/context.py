"""The per-request GraphQL context: who is calling, and the request's database session."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.fastapi import BaseContext

from api.auth import Caller
from api.db import open_session


class Context(BaseContext):
    def __init__(self, open_session: Callable[[], Awaitable[AsyncSession]]) -> None:
        super().__init__()
        self._open_session = open_session
        self._session: AsyncSession | None = None
        self._session_lock = asyncio.Lock()
        # Set by graphql_schema.router before the operation is parsed; None until then, which
        # IsOwner refuses (fail closed).
        self.caller: Caller | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The request's session, held by one resolver at a time.

        GraphQL resolves a query's top-level fields concurrently, and an AsyncSession must not
        run two operations at once; the lock keeps one session per request safe. The session is
        opened on first use, inside a resolver, so that waiting too long for a database
        connection is that field's SERVICE_UNAVAILABLE error like any other database failure.
        """
        async with self._session_lock:
            if self._session is None:
                self._session = await self._open_session()
            yield self._session


@asynccontextmanager
async def request_context(request: Request) -> AsyncIterator[Context]:
    """The context of one request: one session, as REST has, closed when the request ends."""
    async with AsyncExitStack() as stack:
        context = Context(lambda: stack.enter_async_context(open_session(request)))
        context.request = request
        yield context
