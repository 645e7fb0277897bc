"""The task service: every rule of the contract, written once for both faces.

`TaskService` is made once at start-up with what it depends on (the store, the cursor codec and
the process's live updates, `api.tasks.events`, told of every change it commits).
Each method takes the request's `StoreSession` first and the owner second, validates the owner,
scopes every statement to that owner, owns its transaction, and raises only
`api.tasks.errors` types.

Reads and plain creates are single statements on a pooled connection; writes of an existing
task are single atomic statements in the ORM session's transaction, guarded by a version when
the caller gives one. Reads that fail only because their pooled connection had died are retried
once; writes never are. Keyed (idempotent) creates are in `api.tasks.idempotency`.
"""

import functools
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, NoReturn
from uuid import UUID, uuid4

import pydantic
from sqlalchemy import Delete, Update

from api.storage import statements
from api.storage.columns import utcnow
from api.storage.store import StoreSession, TaskStore
from api.storage.tables import Task
from api.tasks import errors, idempotency
from api.tasks.calls import retried_read, service_call
from api.tasks.cursors import CursorCodec
from api.tasks.events import Subscription, TaskEvents, parse_event_id
from api.tasks.shapes import (
    STORED_TASK_FIELDS,
    StoredTask,
    TaskCreate,
    TaskFilter,
    TaskListQuery,
    TaskRecord,
    TaskUpdate,
    UserId,
    folded_columns,
)

# A version the caller holds: the write happens only while the task is at it (or one of them).
ExpectedVersion = int | Collection[int] | None

_user_id_adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(UserId)


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


def _versions(expected_version: ExpectedVersion) -> frozenset[int] | None:
    if expected_version is None:
        return None
    if isinstance(expected_version, int):
        return frozenset({expected_version})
    return frozenset(expected_version)


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


def _new_task_values(user_id: str, data: TaskCreate) -> dict[str, Any]:
    """Every column of a new task; the service, not the database, chooses id and timestamps."""
    now = utcnow()
    values = {
        "id": uuid4(),
        "user_id": user_id,
        "title": data.title,
        "description": data.description,
        "completed": False,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    return values | folded_columns(values)


class TaskService:
    """The contract's operations on tasks, over one store."""

    def __init__(self, store: TaskStore, cursors: CursorCodec, events: TaskEvents) -> None:
        self.store = store
        self.cursors = cursors
        self.events = events

    async def task_events(
        self, user_id: str, after: str | None = None, *, expires_at: float | None = None
    ) -> Subscription:
        """The user's task events after the event id `after` (None: from now on), then live.

        EventsExpiredError when the events after `after` are no longer kept (the caller reloads
        the list); the subscription ends when `expires_at` (the caller's token's expiry) passes.
        Holds no database session: events are read as they come.
        """
        owner = validate_user_id(user_id)
        seq = None if after is None else parse_event_id(after, "after")
        return await self.events.subscribe(owner, seq, expires_at)

    def session(self) -> AbstractAsyncContextManager[StoreSession]:
        """A request's session: admitted to the pool in turn, closed when the block ends."""
        return self.store.session()

    @service_call
    @retried_read
    async def list_tasks(
        self, db: StoreSession, user_id: str, query: TaskListQuery | None = None
    ) -> TaskPage:
        """The user's tasks matching `query`, in its order (default: all, oldest first).

        Keyset pagination as Relay's algorithm: `after`/`before` cut the ordered list at their
        boundary tasks, then `first` takes from its start or `last` from its end.
        """
        user_id = validate_user_id(user_id)
        query = query or TaskListQuery()
        folded = query.filter.folded()
        if folded is not query.filter:
            query = query.model_copy(update={"filter": folded})
        codec = self.cursors
        async with db.single_statements() as connection:
            read_key = functools.partial(db.cursor_key, connection)
            after = before = None
            if query.after is not None:
                after = await codec.decode(
                    read_key, user_id, query.order, query.after, field="after"
                )
            if query.before is not None:
                before = await codec.decode(
                    read_key, user_id, query.order, query.before, field="before"
                )
            statement, values = statements.list_statement(user_id, query, after, before)
            tasks: list[TaskRecord] = list(await db.fetch(connection, statement, values))
            size = query.last if query.last is not None else query.first
            if size is None:
                return TaskPage(tasks=tasks)

            backward = query.last is not None
            more = len(tasks) > size
            tasks = tasks[:size]
            if backward:
                tasks.reverse()
            # Inside the block: the first encode may read the cursor key on this connection.
            cursors = [await codec.encode(read_key, user_id, query.order, t) for t in tasks]
        return TaskPage(
            tasks=tasks,
            cursors=cursors,
            has_next_page=query.before is not None if backward else more,
            has_previous_page=more if backward else query.after is not None,
        )

    @service_call
    @retried_read
    async def count_tasks(self, db: StoreSession, user_id: str, filter: TaskFilter) -> int:
        """How many of the user's tasks match `filter`."""
        statement, values = statements.count_statement(validate_user_id(user_id), filter.folded())
        async with db.single_statements() as connection:
            (row,) = await db.fetch(connection, statement, values)
        return int(row[0])

    @service_call
    @retried_read
    async def get_task(self, db: StoreSession, user_id: str, task_id: str | UUID) -> TaskRecord:
        """The user's task, or NotFoundError."""
        owned = {"user_id": validate_user_id(user_id), "task_id": parse_task_id(task_id)}
        async with db.single_statements() as connection:
            found = await db.fetch(connection, statements.GET_TASK, owned)
        task: TaskRecord | None = found[0] if found else None
        if task is None:
            raise errors.NotFoundError()
        return task

    @service_call
    async def create_task(
        self,
        db: StoreSession,
        user_id: str,
        data: TaskCreate,
        idempotency_key: str | None = None,
    ) -> TaskRecord:
        """Store a new, not completed task for the user.

        With an `idempotency_key`, the same user and key within `idempotency.TTL` answer with the
        task the first request created, as it was created (even if it has changed or been
        deleted since), instead of creating another; the same key with a different request is a
        ValidationError.
        """
        owner = validate_user_id(user_id)
        if idempotency_key is None:
            values = _new_task_values(owner, data)
            # One INSERT, a transaction by itself (on PostgreSQL perhaps with other creates that
            # arrived meanwhile): one round trip, not BEGIN, INSERT, COMMIT.
            await db.insert_task(values)
            self.events.changed(owner)
            # The values were checked on the way in (TaskCreate) and are now stored as they are.
            return StoredTask(**{name: values[name] for name in STORED_TASK_FIELDS})
        key = idempotency.validate_key(idempotency_key)

        def new_task() -> Task:
            return Task(**_new_task_values(owner, data))

        task = await idempotency.create_once(db, owner, key, data, new_task)
        self.events.changed(owner)
        await idempotency.purge_expired(db)
        return task

    @service_call
    async def update_task(
        self,
        db: StoreSession,
        user_id: str,
        task_id: str | UUID,
        changes: TaskUpdate,
        expected_version: ExpectedVersion = None,
    ) -> TaskRecord:
        """Apply the fields present in `changes`; absent ones are kept."""
        return await self._write(db, user_id, task_id, changes.changes(), expected_version)

    @service_call
    async def set_completed(
        self,
        db: StoreSession,
        user_id: str,
        task_id: str | UUID,
        completed: bool = True,
        expected_version: ExpectedVersion = None,
    ) -> TaskRecord:
        """Mark the task completed or not; repeating it gives the same result."""
        return await self._write(db, user_id, task_id, {"completed": completed}, expected_version)

    @service_call
    async def delete_task(
        self,
        db: StoreSession,
        user_id: str,
        task_id: str | UUID,
        expected_version: ExpectedVersion = None,
    ) -> TaskRecord:
        """Delete the task and return it as it was."""
        owner, target = validate_user_id(user_id), parse_task_id(task_id)
        statement = statements.delete_statement(owner, target)
        return await self._guarded(db, statement, owner, target, expected_version)

    @service_call
    @retried_read
    async def ping(self, db: StoreSession) -> None:
        """Raise DatabaseError unless the database answers."""
        async with db.single_statements() as connection:
            await db.fetch(connection, statements.PING, {})

    async def _write(
        self,
        db: StoreSession,
        user_id: str,
        task_id: str | UUID,
        values: dict[str, Any],
        expected_version: ExpectedVersion,
    ) -> TaskRecord:
        owner, target = validate_user_id(user_id), parse_task_id(task_id)
        # The folded search and order columns follow the title and description they fold.
        values = values | folded_columns(values)
        statement = statements.update_statement(owner, target, values, utcnow())
        return await self._guarded(db, statement, owner, target, expected_version)

    async def _guarded(
        self,
        db: StoreSession,
        statement: Update | Delete,
        user_id: str,
        task_id: UUID,
        expected_version: ExpectedVersion,
    ) -> TaskRecord:
        """Run a write of one task (RETURNING it), only while it is at an expected version if
        any is given; commit it, or explain why no row matched."""
        statement = statements.at_versions(statement, _versions(expected_version))
        task: Task | None = (await db.orm.exec(statement)).scalars().first()
        if task is None:
            await self._missing_or_stale(db, user_id, task_id)
        await db.orm.commit()
        self.events.changed(user_id)
        return task

    async def _missing_or_stale(self, db: StoreSession, user_id: str, task_id: UUID) -> NoReturn:
        """Explain a guarded write that matched no row: the task is gone, or at another version."""
        found = (await db.orm.exec(statements.exists_statement(user_id, task_id))).first()
        raise errors.NotFoundError() if found is None else errors.PreconditionFailedError()
