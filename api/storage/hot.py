"""The hot statements on a direct PostgreSQL connection: sent through asyncpg itself.

SQLAlchemy's execution of a Core statement (its compiled-cache lookup, parameter and result
processing, the greenlet hop into the driver) costs about as much CPU as asyncpg's own round
trip for a 20-row list. For the statements the service runs on every request, `Statements` sends
the SQL that SQLAlchemy compiles for them, compiled once per statement (one home for the SQL:
the statements in `api.storage.statements`), straight to the asyncpg connection beneath the
pooled SQLAlchemy connection; asyncpg prepares each once per connection and keeps it. Rows come
back as `TaskRow`, which reads like a task (`row.title`), with the same values SQLAlchemy gives
(asyncpg's UUIDs, UTC-aware timestamps).

Elsewhere (SQLite, or behind a transaction-mode pooler, where asyncpg's statement cache is off
and a statement must run inside SQLAlchemy's transaction) the statements go through SQLAlchemy.
"""

import functools
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from api.storage.failures import ConnectionLost, is_unavailable

_DIALECT = asyncpg_dialect()


class TaskRow(asyncpg.Record):
    """A row from asyncpg that reads like a task: `row.title` is `row["title"]`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@functools.cache
def postgres_sql(statement: Executable) -> tuple[str, tuple[str, ...]]:
    """The SQL SQLAlchemy sends for `statement` to asyncpg ($1, $2, ...) and the parameter names
    in that order; compiled once per statement (the service's statements are built once)."""
    compiled = statement.compile(dialect=_DIALECT)
    return str(compiled), tuple(compiled.positiontup or ())


async def _driver(connection: AsyncConnection) -> asyncpg.Connection:
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


async def fetch(
    connection: AsyncConnection, statement: Executable, values: dict[str, Any]
) -> Sequence[TaskRow]:
    """The rows of `statement` with `values`, through asyncpg on `connection`."""
    sql, names = postgres_sql(statement)
    try:
        driver = await _driver(connection)
        return await driver.fetch(sql, *[values[name] for name in names], record_class=TaskRow)
    except Exception as exc:
        raise await _lost(connection, exc) from exc


async def execute(
    connection: AsyncConnection, statement: Executable, values: dict[str, Any]
) -> None:
    """Run `statement` with `values`, through asyncpg on `connection`."""
    sql, names = postgres_sql(statement)
    try:
        driver = await _driver(connection)
        await driver.execute(sql, *[values[name] for name in names])
    except Exception as exc:
        raise await _lost(connection, exc) from exc


async def _lost(connection: AsyncConnection, exc: Exception) -> Exception:
    """`exc`, or ConnectionLost when the connection broke; then the pooled connection is dropped
    so that it is never handed out again (the caller marks the others suspect)."""
    # A backend killed under an idle connection can leave asyncpg's protocol mid-operation, which
    # it reports as an internal client error on the next statement.
    if not (is_unavailable(exc) or isinstance(exc, asyncpg.exceptions.InternalClientError)):
        return exc
    await connection.invalidate()
    return ConnectionLost(str(type(exc).__name__))
