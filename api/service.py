"""The task service: every rule of the contract, written once for both faces.

Each function takes the request's session first and the owner second, scopes every statement
to that owner, owns its transaction, and raises only `api.errors` types.
"""

import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID

import pydantic
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import errors
from api.db import utcnow
from api.models import Task, TaskCreate, TaskUpdate, UserId

P = ParamSpec("P")
R = TypeVar("R")

_user_id_adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(UserId)


def _service_call(
    func: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
) -> Callable[Concatenate[AsyncSession, P], Awaitable[R]]:
    """Roll back on any failure and let only `errors.TaskAPIError` leave the service."""

    @functools.wraps(func)
    async def wrapper(session: AsyncSession, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await func(session, *args, **kwargs)
        except BaseException as exc:
            # The connection may be gone already; the original error is what matters.
            with contextlib.suppress(Exception):
                await session.rollback()
            if isinstance(exc, Exception):
                raise errors.classify(exc) from exc
            raise

    return wrapper


def validate_user_id(user_id: str) -> str:
    try:
        return _user_id_adapter.validate_python(user_id)
    except pydantic.ValidationError as exc:
        raise errors.ValidationError.from_pydantic(
            [{**error, "loc": ("user_id",)} for error in exc.errors()]
        ) from None


def parse_task_id(task_id: str | UUID) -> UUID:
    """A task id as a UUID; anything else names no task, so it is not found."""
    if isinstance(task_id, UUID):
        return task_id
    try:
        return UUID(task_id)
    except (ValueError, TypeError, AttributeError):
        raise errors.NotFoundError() from None


async def _get_owned(
    session: AsyncSession, user_id: str, task_id: str | UUID, *, for_update: bool = False
) -> Task:
    statement = select(Task).where(
        col(Task.user_id) == validate_user_id(user_id), col(Task.id) == parse_task_id(task_id)
    )
    if for_update:
        statement = statement.with_for_update()
    task = (await session.exec(statement)).first()
    if task is None:
        raise errors.NotFoundError()
    return task


@_service_call
async def list_tasks(session: AsyncSession, user_id: str) -> Sequence[Task]:
    """The user's tasks, oldest first (created_at, then id)."""
    statement = (
        select(Task)
        .where(col(Task.user_id) == validate_user_id(user_id))
        .order_by(col(Task.created_at), col(Task.id))
    )
    return (await session.exec(statement)).all()


@_service_call
async def get_task(session: AsyncSession, user_id: str, task_id: str | UUID) -> Task:
    """The user's task, or NotFoundError."""
    return await _get_owned(session, user_id, task_id)


@_service_call
async def create_task(session: AsyncSession, user_id: str, data: TaskCreate) -> Task:
    """Store a new, not completed task for the user."""
    now = utcnow()
    task = Task(
        user_id=validate_user_id(user_id),
        title=data.title,
        description=data.description,
        completed=False,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    await session.commit()
    return task


async def _apply(session: AsyncSession, task: Task, changes: dict[str, object]) -> Task:
    """Write the changes that differ; a write that changes nothing leaves updated_at alone."""
    changed = {name: value for name, value in changes.items() if getattr(task, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(task, name, value)
        task.updated_at = utcnow()
    # Commit either way: it ends the transaction and its row lock, and (unlike a rollback, which
    # expires loaded objects) leaves `task` readable.
    await session.commit()
    return task


@_service_call
async def update_task(
    session: AsyncSession, user_id: str, task_id: str | UUID, changes: TaskUpdate
) -> Task:
    """Apply the fields present in `changes`; absent ones are kept."""
    task = await _get_owned(session, user_id, task_id, for_update=True)
    return await _apply(session, task, changes.changes())


@_service_call
async def set_completed(
    session: AsyncSession, user_id: str, task_id: str | UUID, completed: bool = True
) -> Task:
    """Mark the task completed or not; repeating it gives the same result."""
    task = await _get_owned(session, user_id, task_id, for_update=True)
    return await _apply(session, task, {"completed": completed})


@_service_call
async def delete_task(session: AsyncSession, user_id: str, task_id: str | UUID) -> Task:
    """Delete the task and return it as it was."""
    task = await _get_owned(session, user_id, task_id, for_update=True)
    await session.delete(task)
    await session.commit()
    return task


@_service_call
async def ping(session: AsyncSession) -> None:
    """Raise DatabaseError unless the database answers."""
    connection = await session.connection()
    await connection.execute(text("SELECT 1"))
