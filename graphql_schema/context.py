"""The per-request GraphQL context: who is calling, and the request's database session."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.fastapi import BaseContext

from api.auth import Caller
from api.db import SessionDep


class Context(BaseContext):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self._session = session
        self._session_lock = asyncio.Lock()
        # Set by graphql_schema.router before the operation is parsed; None until then, which
        # IsOwner refuses (fail closed).
        self.caller: Caller | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The request's session, held by one resolver at a time.

        GraphQL resolves a query's top-level fields concurrently, and an AsyncSession must not
        run two operations at once; the lock keeps one session per request safe.
        """
        async with self._session_lock:
            yield self._session


async def get_context(session: SessionDep) -> Context:
    """A FastAPI dependency, so GraphQL gets the same one-session-per-request as REST."""
    return Context(session)
