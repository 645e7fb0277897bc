"""Everything that knows which database is behind the service.

Hosted PostgreSQL providers hand out libpq URLs (`postgres://...?sslmode=require&channel_binding=
require`), often pointing at a transaction-mode pgbouncer; SQLAlchemy's asyncpg dialect passes
every query parameter to `asyncpg.connect()`, which rejects the libpq-only ones. This module turns
such a URL into one asyncpg accepts, applies the pooler rules, and builds the engine, the session
factory and the per-request session dependency.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import DateTime, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from api.config import Settings
from api.errors import DatabaseError

logger = logging.getLogger(__name__)

# libpq parameters that asyncpg.connect() does not take; each is translated or dropped.
_LIBPQ_DROPPED = frozenset(
    {"channel_binding", "pgbouncer", "sslcert", "sslkey", "sslrootcert", "gssencmode"}
)


@dataclass(frozen=True)
class EngineOptions:
    """A URL SQLAlchemy's async dialects accept, plus the connect arguments it needs."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    behind_pooler: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"


def _unique_statement_name() -> str:
    # A transaction-mode pooler hands each transaction a different server connection, so
    # asyncpg's numbered statement names collide there; a random name per statement cannot.
    return f"__asyncpg_{uuid4()}__"


def engine_options(raw_url: str, connect_timeout: float = 5.0) -> EngineOptions:
    """Translate a database URL as providers hand it out into one the async drivers accept."""
    url = make_url(raw_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.drivername != "sqlite+aiosqlite":
            url = url.set(drivername="sqlite+aiosqlite")
        return EngineOptions(url=url)
    if backend not in {"postgresql", "postgres"}:
        raise ValueError(f"unsupported database backend {backend!r}: use PostgreSQL or SQLite")

    query = dict(url.query)
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    server_settings: dict[str, str] = {}

    pgbouncer = str(query.get("pgbouncer", "")).lower() in {"true", "1", "yes", "on"}
    behind_pooler = pgbouncer or "-pooler" in (url.host or "")

    if "sslmode" in query:
        # asyncpg's `ssl` takes libpq's mode names as they are.
        connect_args["ssl"] = query.pop("sslmode")
    if "connect_timeout" in query:
        connect_args["timeout"] = float(str(query.pop("connect_timeout")))
    if "options" in query:
        # libpq sends `options` as a startup parameter (Neon reads its endpoint id from it).
        server_settings["options"] = str(query.pop("options"))
    if "application_name" in query:
        server_settings["application_name"] = str(query.pop("application_name"))
    for name in _LIBPQ_DROPPED & query.keys():
        query.pop(name)
        # channel_binding and pgbouncer come in every hosted URL and have nothing to do here;
        # a dropped certificate setting is worth a word.
        if name not in {"channel_binding", "pgbouncer"}:
            logger.warning("database URL parameter %r is not supported by asyncpg; ignored", name)
    if server_settings:
        connect_args["server_settings"] = server_settings

    if behind_pooler:
        # The three settings SQLAlchemy's asyncpg docs prescribe for transaction-mode poolers.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
        query["prepared_statement_cache_size"] = "0"

    url = url.set(drivername="postgresql+asyncpg", query=query)
    return EngineOptions(url=url, connect_args=connect_args, behind_pooler=behind_pooler)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that reads back UTC-aware on every database.

    SQLite has no timezone type and returns naive datetimes; storing UTC and re-attaching the
    offset on the way out makes both databases answer alike.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enable_sqlite_wal(engine: AsyncEngine) -> None:
    # WAL lets readers go on while a writer commits; busy_timeout makes a writer wait for the
    # lock instead of failing at once when two requests write together.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


# Where a pooled connection's `info` keeps the time.monotonic() it was last returned to the pool.
_CHECKED_IN_AT = "task_api_checked_in_at"


def _ping_after_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout only when it sat idle in the pool for `idle_seconds`.

    pool_pre_ping pings on every checkout: one more round trip for every request. A connection
    returned moments ago is almost always alive, and one that dies in use anyway is handled
    where it fails (SQLAlchemy then invalidates the whole pool, and reads are retried once).
    Connections that sit idle are the ones a firewall, an idle timeout or a restart kills unseen.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        # None: the connection was just opened (the pool clears `info` whenever it reconnects).
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out a fresh one in its place. Only
            # this one: idle kills (timeouts, firewalls) take connections one at a time, and each
            # other idle connection gets its own ping.
            raise sa_exc.DisconnectionError("pooled connection died while idle") from exc


def create_engine(settings: Settings, raw_url: str | None = None) -> AsyncEngine:
    """Build the async engine for `raw_url` (default: the settings' database URL)."""
    options = engine_options(
        raw_url or settings.database_url.get_secret_value(), settings.db_connect_timeout
    )
    if options.is_sqlite:
        engine = create_async_engine(options.url)
        _enable_sqlite_wal(engine)
    else:
        engine = create_async_engine(
            options.url,
            connect_args=options.connect_args,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            # Without this the password-less URL repr is still fine, but never echo SQL params.
            hide_parameters=True,
        )
    _ping_after_idle(engine, settings.db_ping_after_idle)
    return engine


# The key in every session's `info` that says whether a transaction-mode pooler is in between.
BEHIND_POOLER = "behind_pooler"


def behind_pooler(settings: Settings) -> bool:
    """Whether the settings' database URL names a transaction-mode pooler (see engine_options)."""
    return engine_options(settings.database_url.get_secret_value()).behind_pooler


def create_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions for `engine`; `info` is what the service finds in every session's `info`."""
    # expire_on_commit=False: objects stay readable after commit without a lazy reload.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, info=info or {})


class SessionSlots:
    """First come, first served admission of requests to the connection pool.

    SQLAlchemy's async pool gives a returned connection to whoever asks next, so under load a
    request already waiting can be overtaken again and again: seconds of tail latency while
    others pass. asyncio.Semaphore serves waiters in order; with one slot per connection the
    pool itself never has waiters. Waiting is bounded by the pool timeout, then DatabaseError.
    """

    def __init__(self, size: int, timeout: float) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._timeout = timeout

    @asynccontextmanager
    async def session(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        """A session, once a slot is free; closed (so rolled back if left open) at the end."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._semaphore.acquire()
        except TimeoutError:
            raise DatabaseError("No database connection became free in time") from None
        try:
            async with sessionmaker() as session:
                yield session
        finally:
            self._semaphore.release()


def session_slots(settings: Settings) -> SessionSlots:
    return SessionSlots(settings.db_pool_size + settings.db_max_overflow, settings.db_pool_timeout)


def open_session(request: Request) -> AbstractAsyncContextManager[AsyncSession]:
    """The request's session, admitted in turn by the app's SessionSlots."""
    slots: SessionSlots = request.app.state.session_slots
    return slots.session(request.app.state.sessionmaker)


class SessionRoute(APIRoute):
    """A route whose request gets one session before its handler runs, closed (so rolled back if
    left open) once the handler has made the answer.

    The same as a generator dependency, which FastAPI runs through an exit stack and a shielded
    cancel scope on every request, at a fraction of the cost.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_with_session(request: Request) -> Response:
            async with open_session(request) as session:
                request.state.session = session
                return await handle(request)

        return handle_with_session


async def get_session(request: Request) -> AsyncSession:
    """The request's session, from its SessionRoute."""
    session: AsyncSession = request.state.session
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def insert_ignoring_duplicates(dialect_name: str, table: Any, values: dict[str, Any]) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` in the syntax of `dialect_name` (PostgreSQL or SQLite).

    A duplicate of a row that a concurrent transaction is inserting waits for that transaction
    (PostgreSQL) or for the write lock (SQLite), so exactly one of many concurrent inserts wins.
    """
    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return dialect_insert(table).values(**values).on_conflict_do_nothing()


def utcnow() -> datetime:
    return datetime.now(UTC)
