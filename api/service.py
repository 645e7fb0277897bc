"""The task service: every rule of the contract, written once for both faces.

Each function takes the request's session first and the owner second, scopes every statement
to that owner, owns its transaction, and raises only `api.errors` types.

Writes are single atomic statements (`UPDATE/DELETE ... RETURNING`), so a version check and the
write it guards cannot be split by a concurrent writer, on PostgreSQL and SQLite alike. Reads that
fail only because their pooled connection had died are retried once; writes never are. Keyed
(idempotent) creates are in `api.idempotency`.
"""

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar
from uuid import UUID

import pydantic
from sqlalchemy import ColumnElement, case, delete, false, literal, or_, text, update
from sqlalchemy import exc as sa_exc
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import errors, idempotency
from api.db import UTCDateTime, utcnow
from api.models import Task, TaskCreate, TaskUpdate, UserId

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# A version the caller holds: the write happens only while the task is at it (or one of them).
ExpectedVersion = int | Collection[int] | None

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


def _retried_read(
    func: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
) -> Callable[Concatenate[AsyncSession, P], Awaitable[R]]:
    """Run a read-only call again, once, when it failed because its connection had died.

    Pre-ping catches connections that died in the pool; this catches one that died after it was
    checked out (a database restart, a killed backend). A read changes nothing, so a second try on
    a fresh connection is safe. Never use this on a write: the first try may have committed.
    """

    @functools.wraps(func)
    async def wrapper(session: AsyncSession, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await func(session, *args, **kwargs)
        except sa_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            logger.info("read failed on a dead connection; retrying once on a fresh one")
            # Releases the invalidated connection; the next statement checks out a new one.
            await session.rollback()
        return await func(session, *args, **kwargs)

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


def _owned(user_id: str, task_id: str | UUID) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The WHERE clauses that name one task of one user."""
    return (
        col(Task.user_id) == validate_user_id(user_id),
        col(Task.id) == parse_task_id(task_id),
    )


def _versions(expected_version: ExpectedVersion) -> frozenset[int] | None:
    if expected_version is None:
        return None
    if isinstance(expected_version, int):
        return frozenset({expected_version})
    return frozenset(expected_version)


async def _get_owned(session: AsyncSession, user_id: str, task_id: str | UUID) -> Task:
    task = (await session.exec(select(Task).where(*_owned(user_id, task_id)))).first()
    if task is None:
        raise errors.NotFoundError()
    return task


async def _missing_or_stale(session: AsyncSession, user_id: str, task_id: str | UUID) -> NoReturn:
    """Explain a guarded write that matched no row: the task is gone, or at another version."""
    found = (await session.exec(select(Task.id).where(*_owned(user_id, task_id)))).first()
    raise errors.NotFoundError() if found is None else errors.PreconditionFailedError()


@_service_call
@_retried_read
async def list_tasks(session: AsyncSession, user_id: str) -> Sequence[Task]:
    """The user's tasks, oldest first (created_at, then id)."""
    statement = (
        select(Task)
        .where(col(Task.user_id) == validate_user_id(user_id))
        .order_by(col(Task.created_at), col(Task.id))
    )
    return (await session.exec(statement)).all()


@_service_call
@_retried_read
async def get_task(session: AsyncSession, user_id: str, task_id: str | UUID) -> Task:
    """The user's task, or NotFoundError."""
    return await _get_owned(session, user_id, task_id)


def _new_task(user_id: str, data: TaskCreate) -> Task:
    now = utcnow()
    return Task(
        user_id=user_id,
        title=data.title,
        description=data.description,
        completed=False,
        created_at=now,
        updated_at=now,
        version=1,
    )


@_service_call
async def create_task(
    session: AsyncSession, user_id: str, data: TaskCreate, idempotency_key: str | None = None
) -> Task:
    """Store a new, not completed task for the user.

    With an `idempotency_key`, the same user and key within `idempotency.TTL` answer with the task
    the first request created, as it was created (even if it has changed or been deleted since),
    instead of creating another; the same key with a different request is a ValidationError.
    """
    owner = validate_user_id(user_id)
    if idempotency_key is None:
        task = _new_task(owner, data)
        session.add(task)
        await session.commit()
        return task
    key = idempotency.validate_key(idempotency_key)
    task = await idempotency.create_once(session, owner, key, data, lambda: _new_task(owner, data))
    await idempotency.purge_expired(session)
    return task


async def _write(
    session: AsyncSession,
    user_id: str,
    task_id: str | UUID,
    values: dict[str, Any],
    expected_version: ExpectedVersion,
) -> Task:
    """Apply `values` in one atomic UPDATE, guarded by the expected version when one is given.

    The version and updated_at advance only when some value really differs, so a write that
    changes nothing (a retried PATCH complete) gives the same answer and the same version.
    """
    changed: ColumnElement[bool] = (
        or_(*(getattr(Task, name).is_distinct_from(value) for name, value in values.items()))
        if values
        else false()
    )
    statement = (
        update(Task)
        .where(*_owned(user_id, task_id))
        .values(
            **values,
            version=case((changed, col(Task.version) + 1), else_=col(Task.version)),
            updated_at=case(
                (changed, literal(utcnow(), UTCDateTime())), else_=col(Task.updated_at)
            ),
        )
        .returning(Task)
        .execution_options(populate_existing=True)
    )
    versions = _versions(expected_version)
    if versions is not None:
        statement = statement.where(col(Task.version).in_(versions))
    task: Task | None = (await session.exec(statement)).scalars().first()
    if task is None:
        await _missing_or_stale(session, user_id, task_id)
    await session.commit()
    return task


@_service_call
async def update_task(
    session: AsyncSession,
    user_id: str,
    task_id: str | UUID,
    changes: TaskUpdate,
    expected_version: ExpectedVersion = None,
) -> Task:
    """Apply the fields present in `changes`; absent ones are kept."""
    return await _write(session, user_id, task_id, changes.changes(), expected_version)


@_service_call
async def set_completed(
    session: AsyncSession,
    user_id: str,
    task_id: str | UUID,
    completed: bool = True,
    expected_version: ExpectedVersion = None,
) -> Task:
    """Mark the task completed or not; repeating it gives the same result."""
    return await _write(session, user_id, task_id, {"completed": completed}, expected_version)


@_service_call
async def delete_task(
    session: AsyncSession,
    user_id: str,
    task_id: str | UUID,
    expected_version: ExpectedVersion = None,
) -> Task:
    """Delete the task and return it as it was."""
    statement = delete(Task).where(*_owned(user_id, task_id)).returning(Task)
    versions = _versions(expected_version)
    if versions is not None:
        statement = statement.where(col(Task.version).in_(versions))
    task: Task | None = (await session.exec(statement)).scalars().first()
    if task is None:
        await _missing_or_stale(session, user_id, task_id)
    await session.commit()
    return task


@_service_call
async def ping(session: AsyncSession) -> None:
    """Raise DatabaseError unless the database answers."""
    connection = await session.connection()
    await connection.execute(text("SELECT 1"))
