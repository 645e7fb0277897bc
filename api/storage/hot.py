"""The hot statements on a direct PostgreSQL connection: sent through asyncpg itself.

SQLAlchemy's execution of a Core statement (its compiled-cache lookup, parameter and result
processing, the greenlet hop into the driver) costs about as much CPU as asyncpg's own round
trip for a 20-row list. For the statements the service runs on every request, `Statements` sends
the SQL that SQLAlchemy compiles for them, compiled once per statement (one home for the SQL:
the statements in `api.storage.statements`), straight to the asyncpg connection beneath the
pooled SQLAlchemy connection; asyncpg prepares each once per connection and keeps it. Rows come
back as asyncpg's records, whose columns also read by name like a task's (`row.title`), with the
same values SQLAlchemy gives (asyncpg's UUIDs, UTC-aware timestamps). SQLAlchemy never begins a
transaction on such a connection, so each statement is a transaction by itself.

Elsewhere (SQLite, or behind a transaction-mode pooler, where asyncpg's statement cache is off
and a statement must run inside SQLAlchemy's transaction) the statements go through SQLAlchemy.
"""

import functools
import operator
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.util.concurrency import greenlet_spawn

from api.storage.failures import ConnectionLost, is_unavailable

_DIALECT = asyncpg_dialect()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    parameters: tuple[str, ...]
    # The row type of a statement that returns rows: asyncpg's record, its columns by name too.
    row: type[asyncpg.Record] | None


@functools.cache
def postgres_sql(statement: Executable) -> _Compiled:
    """The SQL SQLAlchemy sends for `statement` to asyncpg ($1, $2, ...), the parameter names in
    that order, and its row type; made once per statement (the service's are built once)."""
    compiled = statement.compile(dialect=_DIALECT)
    columns = getattr(statement, "selected_columns", None)
    row = None if columns is None else _row_class([column.key for column in columns])
    return _Compiled(str(compiled), tuple(compiled.positiontup or ()), row)


def _row_class(keys: list[str | None]) -> type[asyncpg.Record]:
    """asyncpg's record with each named column also readable by name (`row.title`), as a task
    is: asyncpg builds it directly, with no copy per row into another type. A column without a
    name (`count(*)`) is read by its index."""
    properties: dict[str, Any] = {}
    for index, key in enumerate(keys):
        if key is None or not key.isidentifier():
            continue
        if hasattr(asyncpg.Record, key) or key in properties:
            raise ValueError(f"column {key!r} cannot be an attribute of a row")
        properties[key] = property(operator.itemgetter(index))
    return type("Row", (asyncpg.Record,), {"__slots__": (), **properties})


class HotConnection:
    """A connection of SQLAlchemy's pool, checked out for asyncpg's own statements.

    Taken with the pool's own checkout and checkin (so its events run: the ping after idle, the
    replacement of connections opened before one was lost) but without the engine's Connection
    and its async wrapper around it: in a tight loop, a checkout and return took about 40 µs of
    CPU this way against about 60 µs through `AsyncEngine.connect()`.
    """

    __slots__ = ("driver", "pooled")

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self.pooled = pooled
        self.driver: asyncpg.Connection = pooled.driver_connection  # type: ignore[assignment]


@asynccontextmanager
async def checked_out(engine: AsyncEngine) -> AsyncIterator[HotConnection]:
    """A pooled connection for asyncpg's statements, returned to the pool when the block ends.
    SQLAlchemy never begins a transaction on it, so returning it rolls nothing back."""
    pooled = await engine.raw_connection()
    try:
        yield HotConnection(pooled)
    finally:
        if returns_without_io(engine.sync_engine.pool, pooled):
            _return_unreset(pooled)
        else:
            await greenlet_spawn(pooled.close)


def _return_unreset(pooled: PoolProxiedConnection) -> None:
    """Give `pooled` back to its pool telling it that no transaction is left to end (its
    `reset` event sees `transaction_was_reset`), as SQLAlchemy's own Connection does after it
    ended one: none was ever begun here. `close()` would have the dialect roll back first,
    which on asyncpg's adapter finds no transaction and does nothing, for about 3% of a
    create's CPU."""
    pooled._close_special(transaction_reset=True)  # type: ignore[attr-defined]


def returns_without_io(pool: Pool, pooled: PoolProxiedConnection) -> bool:
    """Whether returning `pooled` to `pool` can be done without SQLAlchemy's greenlet.

    The greenlet is there for I/O: a rollback, or closing a connection. Returning a valid
    connection that has no transaction (these never begin one) to a queue pool with room for it
    only queues it. The pool closes a connection it has no room for (one opened past its size),
    and an invalidated one is left to the greenlet too. Spawning the greenlet cost about 12 µs
    of the 37 µs a checkout and return took.
    """
    return isinstance(pool, QueuePool) and pooled.is_valid and pool.checkedin() < pool.size()


async def fetch(
    connection: HotConnection, statement: Executable, values: dict[str, Any]
) -> list[Any]:
    """The rows of a SELECT with `values`, through asyncpg on `connection`."""
    compiled = postgres_sql(statement)
    assert compiled.row is not None, "not a SELECT"
    try:
        return await connection.driver.fetch(
            compiled.sql, *[values[n] for n in compiled.parameters], record_class=compiled.row
        )
    except Exception as exc:
        raise await _lost(connection, exc) from exc


async def execute(connection: HotConnection, statement: Executable, values: dict[str, Any]) -> None:
    """Run `statement` with `values`, through asyncpg on `connection`."""
    compiled = postgres_sql(statement)
    try:
        await connection.driver.execute(compiled.sql, *[values[n] for n in compiled.parameters])
    except Exception as exc:
        raise await _lost(connection, exc) from exc


async def _lost(connection: HotConnection, exc: Exception) -> Exception:
    """`exc`, or ConnectionLost when the connection broke; then the pooled connection is dropped
    so that it is never handed out again (the caller marks the others suspect)."""
    # A backend killed under an idle connection can leave asyncpg's protocol mid-operation, which
    # it reports as an internal client error on the next statement.
    if not (is_unavailable(exc) or isinstance(exc, asyncpg.exceptions.InternalClientError)):
        return exc
    await greenlet_spawn(connection.pooled.invalidate, exc)
    return ConnectionLost(str(type(exc).__name__))
