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
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar
from uuid import UUID, uuid4

import pydantic
from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    text,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Delete, Update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api import errors, idempotency
from api.cursors import Boundary, CursorCodec
from api.db import BEHIND_POOLER, UTCDateTime, utcnow
from api.models import (
    OrderDirection,
    Task,
    TaskCreate,
    TaskFilter,
    TaskListQuery,
    TaskOrderField,
    TaskRead,
    TaskRecord,
    TaskUpdate,
    UserId,
)

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

    The pool pings only connections that sat idle (api.db); this catches one that died unnoticed
    (a database restart, a killed backend). A read changes nothing, so a second try on a fresh
    connection is safe. Never use this on a write: the first try may have committed.
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


async def _missing_or_stale(session: AsyncSession, user_id: str, task_id: str | UUID) -> NoReturn:
    """Explain a guarded write that matched no row: the task is gone, or at another version."""
    found = (await session.exec(select(Task.id).where(*_owned(user_id, task_id)))).first()
    raise errors.NotFoundError() if found is None else errors.PreconditionFailedError()


@dataclass(frozen=True)
class TaskPage:
    """A list of tasks in the order asked for; `cursors` is filled for paged lists only."""

    tasks: Sequence[TaskRecord]
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


# The table's Core columns: lists and lookups read plain rows, without the ORM's per-object cost
# (identity map, instrumentation); a row reads like a task (`row.title`), see models.TaskRecord.
_TASKS = Task.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(_TASKS.c)
_INSERT = insert(_TASKS)


def _search_pattern(search: str) -> str:
    """`search` for `icontains(..., escape="/")`: its `%`, `_` and `/` match themselves."""
    return search.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _filtered(statement: Select[Any], *, completed: bool, search: bool) -> Select[Any]:
    statement = statement.where(_TASKS.c.user_id == bindparam("user_id"))
    if completed:
        statement = statement.where(_TASKS.c.completed == bindparam("completed"))
    if search:
        statement = statement.where(
            or_(
                _TASKS.c.title.icontains(bindparam("search"), escape="/"),
                _TASKS.c.description.icontains(bindparam("search"), escape="/"),
            )
        )
    return statement


def _filter_values(user_id: str, filter: TaskFilter) -> dict[str, Any]:
    values: dict[str, Any] = {"user_id": user_id}
    if filter.completed is not None:
        values["completed"] = filter.completed
    if filter.search:
        values["search"] = _search_pattern(filter.search)
    return values


@functools.cache
def _list_select(
    field: TaskOrderField,
    direction: OrderDirection,
    *,
    completed: bool,
    search: bool,
    after: bool,
    before: bool,
    backward: bool,
    limited: bool,
) -> Select[Any]:
    """The list SELECT of one shape, built once: every value in it is a bound parameter.

    Keyset pagination: `after`/`before` compare (sort key, id) with the boundary task's, the
    order is read backward when `last` is given, and the limit is one more than the page so the
    extra row tells whether another page follows.
    """
    key, task_id = _TASKS.c[field.value], _TASKS.c.id
    statement = _filtered(select(*_COLUMNS), completed=completed, search=search)
    for name, present, forward in (("after", after, True), ("before", before, False)):
        if not present:
            continue
        row = tuple_(key, task_id)
        bound = tuple_(
            bindparam(f"{name}_key", type_=key.type), bindparam(f"{name}_id", type_=task_id.type)
        )
        ascending = (direction is OrderDirection.ASC) == forward
        statement = statement.where(row > bound if ascending else row < bound)
    if (direction is OrderDirection.DESC) != backward:
        statement = statement.order_by(key.desc(), task_id.desc())
    else:
        statement = statement.order_by(key.asc(), task_id.asc())
    if limited:
        statement = statement.limit(bindparam("limit"))
    return statement


def list_statement(
    user_id: str, query: TaskListQuery, after: Boundary | None, before: Boundary | None
) -> tuple[Select[Any], dict[str, Any]]:
    """The one SELECT a list page costs, and its parameter values."""
    size = query.last if query.last is not None else query.first
    statement = _list_select(
        query.order.field,
        query.order.direction,
        completed=query.filter.completed is not None,
        search=bool(query.filter.search),
        after=after is not None,
        before=before is not None,
        backward=query.last is not None,
        limited=size is not None,
    )
    values = _filter_values(user_id, query.filter)
    for name, boundary in (("after", after), ("before", before)):
        if boundary is not None:
            values[f"{name}_key"], values[f"{name}_id"] = boundary.key, boundary.task_id
    if size is not None:
        values["limit"] = size + 1
    return statement, values


@contextlib.asynccontextmanager
async def _single_statements(session: AsyncSession) -> AsyncIterator[AsyncConnection]:
    """A connection for calls whose statements are each complete by themselves.

    A SELECT or a plain INSERT is a transaction by itself: run in autocommit it saves the BEGIN
    and COMMIT/ROLLBACK round trips (two of three for a one-statement call), and taking the
    connection from the session's engine directly saves the ORM session's transaction
    bookkeeping. The session holds no connection meanwhile, so a request still uses one at a
    time. Behind a transaction-mode pooler the statements run in a transaction all the same:
    outside one, the pooler may send asyncpg's two steps of a statement (prepare, then execute)
    to two different server connections. A transaction the caller left open (the service never
    does) is joined instead, and ended with the call, as every service call ends its own.
    """
    if session.in_transaction():
        connection = await session.connection()
        try:
            yield connection
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        return
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as connection:
        if session.info.get(BEHIND_POOLER, False):
            async with connection.begin():
                yield connection
        else:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")


@_service_call
@_retried_read
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
    async with _single_statements(session) as connection:
        after = before = None
        if query.after is not None:
            after = await codec.decode(connection, user_id, query.order, query.after)
        if query.before is not None:
            before = await codec.decode(connection, user_id, query.order, query.before)
        statement, values = list_statement(user_id, query, after, before)
        tasks: list[TaskRecord] = list((await connection.execute(statement, values)).all())
        size = query.last if query.last is not None else query.first
        if size is None:
            return TaskPage(tasks=tasks)

        backward = query.last is not None
        more = len(tasks) > size
        tasks = tasks[:size]
        if backward:
            tasks.reverse()
        # Inside the block: the first encode may read the cursor key on this connection.
        cursors = [await codec.encode(connection, user_id, query.order, task) for task in tasks]
    return TaskPage(
        tasks=tasks,
        cursors=cursors,
        has_next_page=query.before is not None if backward else more,
        has_previous_page=more if backward else query.after is not None,
    )


@_service_call
@_retried_read
async def count_tasks(session: AsyncSession, user_id: str, filter: TaskFilter) -> int:
    """How many of the user's tasks match `filter`."""
    statement = _count_select(completed=filter.completed is not None, search=bool(filter.search))
    async with _single_statements(session) as connection:
        result = await connection.execute(
            statement, _filter_values(validate_user_id(user_id), filter)
        )
        return int(result.scalar_one())


@functools.cache
def _count_select(*, completed: bool, search: bool) -> Select[Any]:
    return _filtered(select(func.count()).select_from(_TASKS), completed=completed, search=search)


@_service_call
@_retried_read
async def get_task(session: AsyncSession, user_id: str, task_id: str | UUID) -> TaskRecord:
    """The user's task, or NotFoundError."""
    owned = {"user_id": validate_user_id(user_id), "task_id": parse_task_id(task_id)}
    async with _single_statements(session) as connection:
        task: TaskRecord | None = (await connection.execute(_GET, owned)).first()
    if task is None:
        raise errors.NotFoundError()
    return task


_GET = select(*_COLUMNS).where(
    _TASKS.c.user_id == bindparam("user_id"), _TASKS.c.id == bindparam("task_id")
)


def _new_task_values(user_id: str, data: TaskCreate) -> dict[str, Any]:
    """Every column of a new task; the service, not the database, chooses id and timestamps."""
    now = utcnow()
    return {
        "id": uuid4(),
        "user_id": user_id,
        "title": data.title,
        "description": data.description,
        "completed": False,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


@_service_call
async def create_task(
    session: AsyncSession, user_id: str, data: TaskCreate, idempotency_key: str | None = None
) -> TaskRecord:
    """Store a new, not completed task for the user.

    With an `idempotency_key`, the same user and key within `idempotency.TTL` answer with the task
    the first request created, as it was created (even if it has changed or been deleted since),
    instead of creating another; the same key with a different request is a ValidationError.
    """
    owner = validate_user_id(user_id)
    if idempotency_key is None:
        values = _new_task_values(owner, data)
        # One INSERT, a transaction by itself: one round trip instead of BEGIN, INSERT, COMMIT.
        async with _single_statements(session) as connection:
            await connection.execute(_INSERT, values)
        # The values were checked on the way in (TaskCreate) and are now stored as they are.
        return TaskRead.model_construct(**values)
    key = idempotency.validate_key(idempotency_key)

    def new_task() -> Task:
        return Task(**_new_task_values(owner, data))

    task = await idempotency.create_once(session, owner, key, data, new_task)
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
    return await _guarded(session, statement, user_id, task_id, expected_version)


async def _guarded(
    session: AsyncSession,
    statement: Update | Delete,
    user_id: str,
    task_id: str | UUID,
    expected_version: ExpectedVersion,
) -> Task:
    """Run a write of one task (RETURNING it), only while it is at an expected version if any
    is given; commit it, or explain why no row matched."""
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
    return await _guarded(session, statement, user_id, task_id, expected_version)


@_service_call
async def ping(session: AsyncSession) -> None:
    """Raise DatabaseError unless the database answers."""
    connection = await session.connection()
    await connection.execute(text("SELECT 1"))
