"""The per-request GraphQL context: the request's database session."""

from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.fastapi import BaseContext

from api.db import SessionDep


class Context(BaseContext):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session


async def get_context(session: SessionDep) -> Context:
    """A FastAPI dependency, so GraphQL gets the same one-session-per-request as REST."""
    return Context(session)
