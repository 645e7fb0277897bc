"""The task service: every rule of the contract, written once for both faces.

Each function takes the request's session first and the owner second, scopes every statement
to that owner, owns its transaction, and raises only `api.errors` types.
"""

import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID

import pydantic
from sqlalchemy import ColumnElement, String, func, literal, or_, text, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from api import errors
from api.cursors import Boundary, CursorCodec
from api.db import UTCDateTime, utcnow
from api.models import (
    OrderDirection,
    Task,
    TaskCreate,
    TaskFilter,
    TaskListQuery,
    TaskOrder,
    TaskOrderField,
    TaskUpdate,
    UserId,
)

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


@dataclass(frozen=True)
class TaskPage:
    """A list of tasks in the order asked for; `cursors` is filled for paged lists only."""

    tasks: Sequence[Task]
    cursors: Sequence[str] = ()
    has_next_page: bool = False
    has_previous_page: bool = False

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def _cursor_codec(session: AsyncSession) -> CursorCodec:
    # api.db puts the app's codec on every session it makes.
    codec: CursorCodec = session.info["cursor_codec"]
    return codec


def _filtered(user_id: str, filter: TaskFilter) -> SelectOfScalar[Task]:
    statement = select(Task).where(col(Task.user_id) == user_id)
    if filter.completed is not None:
        statement = statement.where(col(Task.completed) == filter.completed)
    if filter.search:
        statement = statement.where(
            or_(
                col(Task.title).icontains(filter.search, autoescape=True),
                col(Task.description).icontains(filter.search, autoescape=True),
            )
        )
    return statement


def _beyond(order: TaskOrder, boundary: Boundary, *, forward: bool) -> ColumnElement[bool]:
    """Tasks after `boundary` in reading order (`forward`), or before it."""
    row = tuple_(getattr(Task, order.field.value), col(Task.id))
    ascending = (order.direction is OrderDirection.ASC) == forward
    bound = tuple_(literal(boundary.key, _KEY_TYPES[order.field]), literal(boundary.task_id))
    return row > bound if ascending else row < bound


_KEY_TYPES = {
    TaskOrderField.CREATED_AT: UTCDateTime(),
    TaskOrderField.UPDATED_AT: UTCDateTime(),
    TaskOrderField.TITLE: String(),
}


def _ordered(
    statement: SelectOfScalar[Task], order: TaskOrder, *, reverse: bool
) -> SelectOfScalar[Task]:
    key, task_id = getattr(Task, order.field.value), col(Task.id)
    descending = (order.direction is OrderDirection.DESC) != reverse
    if descending:
        return statement.order_by(key.desc(), task_id.desc())
    return statement.order_by(key.asc(), task_id.asc())


def list_statement(
    user_id: str, query: TaskListQuery, after: Boundary | None, before: Boundary | None
) -> SelectOfScalar[Task]:
    """The one SELECT a list page costs (read backward when `last` is given)."""
    statement = _filtered(user_id, query.filter)
    if after is not None:
        statement = statement.where(_beyond(query.order, after, forward=True))
    if before is not None:
        statement = statement.where(_beyond(query.order, before, forward=False))
    size = query.last if query.last is not None else query.first
    statement = _ordered(statement, query.order, reverse=query.last is not None)
    if size is not None:
        statement = statement.limit(size + 1)  # one more tells whether another page follows
    return statement


@_service_call
async def list_tasks(
    session: AsyncSession, user_id: str, query: TaskListQuery | None = None
) -> TaskPage:
    """The user's tasks matching `query`, in its order (default: all, oldest first).

    Keyset pagination as Relay's algorithm: `after`/`before` cut the ordered list at their
    boundary tasks, then `first` takes from its start or `last` from its end.
    """
    user_id = validate_user_id(user_id)
    query = query or TaskListQuery()
    codec = _cursor_codec(session)
    after = before = None
    if query.after is not None:
        after = await codec.decode(session, user_id, query.order, query.after)
    if query.before is not None:
        before = await codec.decode(session, user_id, query.order, query.before)
    statement = list_statement(user_id, query, after, before)
    tasks = list((await session.exec(statement)).all())
    size = query.last if query.last is not None else query.first
    if size is None:
        return TaskPage(tasks=tasks)

    backward = query.last is not None
    more = len(tasks) > size
    tasks = tasks[:size]
    if backward:
        tasks.reverse()
    cursors = [await codec.encode(session, user_id, query.order, task) for task in tasks]
    return TaskPage(
        tasks=tasks,
        cursors=cursors,
        has_next_page=query.before is not None if backward else more,
        has_previous_page=more if backward else query.after is not None,
    )


@_service_call
async def count_tasks(session: AsyncSession, user_id: str, filter: TaskFilter) -> int:
    """How many of the user's tasks match `filter`."""
    matching = _filtered(validate_user_id(user_id), filter).subquery()
    statement = select(func.count()).select_from(matching)
    return int((await session.exec(statement)).one())


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
