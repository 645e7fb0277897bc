"""`TaskStore`, made once at start-up, and `StoreSession`, one request's use of the database.

Every request that touches the database is first admitted to the pool (`TaskStore.session`),
then uses one connection at a time: the ORM session for writes that need a transaction, or a
pooled connection for statements that are each complete by themselves (`single_statements`).
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.trace import Tracer
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.config import Settings
from api.observe import metrics
from api.storage import hot, statements
from api.storage.batched import BatchedInserts
from api.storage.engine import (
    LostConnections,
    create_engine,
    trace_statements,
    traced_hot_statement,
)
from api.storage.failures import ConnectionLost
from api.storage.urls import engine_options
from api.tasks.errors import DatabaseError

# What `StoreSession.single_statements` gives: SQLAlchemy's connection, or one for asyncpg's
# own statements (api.storage.hot).
Statements = AsyncConnection | hot.HotConnection


class StoreSession:
    """One request's use of the database; made by `TaskStore.session`."""

    def __init__(self, store: "TaskStore") -> None:
        self.store = store
        self._orm: AsyncSession | None = None

    @property
    def orm(self) -> AsyncSession:
        """The ORM session, for writes that need a transaction; made on first use (a read or a
        plain create never needs one), and holding a connection only while one is open."""
        if self._orm is None:
            self._orm = self.store.sessionmaker()
        return self._orm

    @property
    def dialect_name(self) -> str:
        return self.store.engine.dialect.name

    @asynccontextmanager
    async def single_statements(self) -> AsyncIterator[Statements]:
        """A connection for calls whose statements are each complete by themselves.

        A SELECT or a plain INSERT is a transaction by itself: run in autocommit it saves the
        BEGIN and COMMIT/ROLLBACK round trips (two of three for a one-statement call), and a
        pooled connection taken directly saves the ORM session's transaction bookkeeping. The
        ORM session holds no connection meanwhile (the service never leaves a transaction open),
        so a request still uses one at a time. On a direct PostgreSQL connection the statements
        go through asyncpg itself (`hot`), on a connection checked out of the same pool. Behind
        a transaction-mode pooler the statements run in a transaction all the same: outside
        one, the pooler may send asyncpg's two steps of a statement (prepare, then execute) to
        two different server connections.
        """
        if self.store.hot_statements:
            async with hot.checked_out(self.store.engine) as hot_connection:
                yield hot_connection
            return
        async with self.store.engine.connect() as connection:
            if self.store.behind_pooler:
                async with connection.begin():
                    yield connection
            else:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def fetch(
        self, connection: Statements, statement: Executable, values: dict[str, Any]
    ) -> Sequence[Any]:
        """The rows of a SELECT on a connection from `single_statements`."""
        if isinstance(connection, AsyncConnection):
            return list((await connection.execute(statement, values)).all())
        return await self.store.fetch_hot(connection, statement, values)

    async def cursor_key(self, connection: Statements) -> str:
        """The service's cursor key, on a connection from `single_statements`."""
        (row,) = await self.fetch(connection, statements.CURSOR_KEY, {})
        return str(row[0])

    async def execute(
        self, connection: Statements, statement: Executable, values: dict[str, Any]
    ) -> None:
        """Run a statement that returns nothing on a connection from `single_statements`."""
        if isinstance(connection, AsyncConnection):
            await connection.execute(statement, values)
            return
        await self.store.execute_hot(connection, statement, values)

    async def insert_task(self, values: dict[str, Any]) -> None:
        """Store a new task's row (every column's value), a transaction by itself: on the hot
        path together with the creates that arrive meanwhile (`api.storage.batched`)."""
        batched = self.store.batched_creates
        if batched is not None:
            # Traced per caller (its wait until committed), not per batch: every request's trace
            # shows its INSERT, whichever request's batch carried it.
            if self.store.tracer is not None:
                with traced_hot_statement(self.store.tracer, statements.INSERT_TASK):
                    await batched.insert(values)
                return
            await batched.insert(values)
            return
        async with self.single_statements() as connection:
            await self.execute(connection, statements.INSERT_TASK, values)

    @asynccontextmanager
    async def own_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on a connection of its own, apart from the ORM session's."""
        async with self.store.engine.begin() as connection:
            yield connection

    async def reset(self) -> None:
        """End whatever the ORM session had open, releasing its connection (dead or alive)."""
        if self._orm is not None:
            await self._orm.rollback()

    async def close(self) -> None:
        if self._orm is not None:
            await self._orm.close()


class TaskStore:
    """The engine, its pool's admission, and whether a transaction-mode pooler is in between.

    SQLAlchemy's async pool gives a returned connection to whoever asks next, so under load a
    request already waiting can be overtaken again and again: seconds of tail latency while
    others pass. asyncio.Semaphore serves waiters in order; with one slot per connection the
    pool itself never has waiters. Waiting is bounded by the pool timeout, then DatabaseError.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        behind_pooler: bool,
        slots: int,
        admission_timeout: float,
        lost_connections: LostConnections,
        counted: bool = True,
        tracer: Tracer | None = None,
    ) -> None:
        self.engine = engine
        # Spans for statements (api.observe.tracing), when tracing is on.
        self.tracer = tracer
        if tracer is not None:
            trace_statements(engine, tracer)
        # Whether the pool's use is published to the metrics (TASK_API_METRICS_ENABLED).
        self.counted = counted
        # Requests holding a slot, and waiting for one, now.
        self.in_use = 0
        self.waiting = 0
        self.lost_connections = lost_connections
        self.behind_pooler = behind_pooler
        # The hot statements go through asyncpg itself on a direct PostgreSQL connection.
        self.hot_statements = engine.dialect.name == "postgresql" and not behind_pooler
        # expire_on_commit=False: objects stay readable after commit without a lazy reload.
        self.sessionmaker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        # Plain creates on the hot path go in batches when they arrive together.
        self.batched_creates = (
            BatchedInserts(
                engine, statements.TASKS, statements.INSERT_TASK, self._execute_hot, "user_id"
            )
            if self.hot_statements
            else None
        )
        self._slots = asyncio.Semaphore(slots)
        self._admission_timeout = admission_timeout

    async def fetch_hot(
        self, connection: hot.HotConnection, statement: Executable, values: dict[str, Any]
    ) -> Sequence[Any]:
        """The rows of a SELECT through asyncpg on a hot connection, traced and noted as
        `execute_hot` is."""
        if self.tracer is not None:
            with traced_hot_statement(self.tracer, statement):
                return await self._fetch_hot(connection, statement, values)
        return await self._fetch_hot(connection, statement, values)

    async def _fetch_hot(
        self, connection: hot.HotConnection, statement: Executable, values: dict[str, Any]
    ) -> Sequence[Any]:
        try:
            return await hot.fetch(connection, statement, values)
        except ConnectionLost:
            self.lost_connections.seen()
            raise

    async def execute_hot(
        self, connection: hot.HotConnection, statement: Executable, values: dict[str, Any]
    ) -> None:
        """Run a statement through asyncpg on a hot connection: traced when tracing is on, and
        a lost connection marks every pooled one opened before it suspect."""
        if self.tracer is not None:
            with traced_hot_statement(self.tracer, statement):
                await self._execute_hot(connection, statement, values)
            return
        await self._execute_hot(connection, statement, values)

    async def _execute_hot(
        self, connection: hot.HotConnection, statement: Executable, values: dict[str, Any]
    ) -> None:
        try:
            await hot.execute(connection, statement, values)
        except ConnectionLost:
            self.lost_connections.seen()
            raise

    @classmethod
    def from_settings(cls, settings: Settings, tracer: Tracer | None = None) -> "TaskStore":
        options = engine_options(
            settings.database_url.get_secret_value(), settings.db_connect_timeout
        )
        lost_connections = LostConnections()
        return cls(
            create_engine(settings, options, lost_connections),
            lost_connections=lost_connections,
            behind_pooler=options.behind_pooler,
            slots=settings.db_pool_size + settings.db_max_overflow,
            admission_timeout=settings.db_pool_timeout,
            counted=settings.metrics_enabled,
            tracer=tracer,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[StoreSession]:
        """A request's session, once a slot is free; closed (so rolled back if left open).

        `in_use` and `waiting` count the slots held and awaited (plain integers, published to
        the metrics by a sampler, not written on every request).
        """
        slots = self._slots
        if slots.locked():
            await self._wait_for_slot()
        else:
            # A free slot is taken at once (no waiting, so no timeout to arm).
            await slots.acquire()
        self.in_use += 1
        db = StoreSession(self)
        try:
            yield db
        finally:
            try:
                await db.close()
            finally:
                self.in_use -= 1
                slots.release()

    async def _wait_for_slot(self) -> None:
        """Wait in turn for a slot, at most the pool timeout, then DatabaseError."""
        self.waiting += 1
        try:
            async with asyncio.timeout(self._admission_timeout):
                await self._slots.acquire()
        except TimeoutError:
            metrics.POOL_TIMEOUTS.inc()
            metrics.unavailable("pool_timeout")
            raise DatabaseError("No database connection became free in time") from None
        finally:
            self.waiting -= 1

    def publish_pool_use(self) -> None:
        """Write the pool's use now to the metrics (the sampler and each scrape call this)."""
        if self.counted:
            metrics.POOL_IN_USE.set(self.in_use)
            metrics.POOL_WAITING.set(self.waiting)

    async def dispose(self) -> None:
        await self.engine.dispose()
