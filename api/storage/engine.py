"""The async engine and its pool: SQLite's pragmas, and a ping only after a connection sat idle."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import Tracer
from sqlalchemy import Executable, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from api.config import Settings
from api.observe import tracing
from api.storage.hot import postgres_sql
from api.storage.urls import EngineOptions

logger = logging.getLogger(__name__)


def _enable_sqlite_wal(engine: AsyncEngine) -> None:
    # WAL lets readers go on while a writer commits; busy_timeout makes a writer wait for the
    # lock instead of failing at once when two requests write together.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


# Where a pooled connection's `info` keeps the time.monotonic() it was last returned to the pool,
# and when it was opened.
_CHECKED_IN_AT = "task_api_checked_in_at"
_OPENED_AT = "task_api_opened_at"


class LostConnections:
    """When a statement last met a dead connection: every connection opened before then is
    suspect (a database restart or a killed backend rarely takes just one), and is replaced when
    it is next checked out, as SQLAlchemy does when its own statements meet a dead connection."""

    def __init__(self) -> None:
        self.since = 0.0

    def seen(self) -> None:
        self.since = time.monotonic()


def _ping_after_idle(engine: AsyncEngine, idle_seconds: float, lost: LostConnections) -> None:
    """Ping a pooled connection on checkout only when it sat idle in the pool for `idle_seconds`.

    pool_pre_ping pings on every checkout: one more round trip for every request. A connection
    returned moments ago is almost always alive, and one that dies in use anyway is handled
    where it fails (SQLAlchemy then invalidates the whole pool, and reads are retried once).
    Connections that sit idle are the ones a firewall, an idle timeout or a restart kills unseen.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_OPENED_AT] = time.monotonic()

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        if record.info.get(_OPENED_AT, 0.0) < lost.since:
            # The pool discards it and checks out a fresh one in its place.
            raise sa_exc.DisconnectionError("pooled connection opened before one was lost")
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


def create_engine(settings: Settings, options: EngineOptions, lost: LostConnections) -> AsyncEngine:
    """Build the async engine for `options` with the settings' pool; a connection opened before
    `lost` last saw a dead one is replaced on checkout."""
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
    _ping_after_idle(engine, settings.db_ping_after_idle, lost)
    return engine


# Where a statement's span waits, on SQLAlchemy's execution context, for the statement to end.
_SPAN = "_task_api_span"


def trace_statements(engine: AsyncEngine, tracer: Tracer) -> None:
    """A span for every statement SQLAlchemy sends (its text, never its values)."""
    sync_engine = engine.sync_engine
    system = sync_engine.dialect.name

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context is not None:
            setattr(context, _SPAN, tracing.start_database_span(tracer, system, statement))

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _end(
        _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        span = getattr(context, _SPAN, None)
        if span is not None:
            tracing.end(span)

    @event.listens_for(sync_engine, "handle_error")
    def _failed(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, _SPAN, None)
        if span is not None:
            tracing.end(span, exception_context.original_exception)


@contextmanager
def traced_hot_statement(tracer: Tracer, statement: Executable) -> Iterator[None]:
    """A span for one of the statements sent through asyncpg itself (api.storage.hot)."""
    span = tracing.start_database_span(tracer, "postgresql", postgres_sql(statement).sql)
    try:
        yield
    except BaseException as exc:
        tracing.end(span, exc)
        raise
    tracing.end(span)
