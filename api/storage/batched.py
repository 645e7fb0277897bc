"""Creates that arrive together go to PostgreSQL together: one INSERT of many rows.

A create is one INSERT, a transaction by itself. Sent one by one, each costs a pool checkout, an
asyncpg round trip, and in PostgreSQL a transaction: its own executor start, its commit (a WAL
flush) and, through the outbox trigger, a lock on the user's event counter held until that
commit. Under load those costs, not the rows, are most of a create. `BatchedInserts` sends the
rows that arrived while the previous statements were in flight as one statement
(`INSERT ... SELECT * FROM unnest($1::uuid[], ...)`): one checkout, one round trip, one commit
for all of them. Nothing waits for company: a create that finds a sender free is sent at once,
alone, as before, so a quiet service answers as fast as it did; batches form only when creates
queue up anyway.

What each caller sees is what it saw alone:
- its row is committed when its call returns, in a transaction with the others of its batch;
- when the batch's statement fails for another reason than a lost connection (one row the
  database refuses), nothing of it was committed, and each row is sent again alone, so only the
  refused row fails, with the database's own error;
- when the connection is lost, every row of the batch fails with `ConnectionLost` (503), as each
  would have alone: whether it committed is unknown, so none is sent again;
- rows are sent ordered by user id (each user's in the order they arrived): the trigger locks
  each user's counter in the order of the rows, so two batches in two processes always lock in
  the same order and never wait on each other in a cycle.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Executable, Table, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import String

from api.storage import hot
from api.storage.failures import ConnectionLost

logger = logging.getLogger(__name__)

# The most rows in one statement: bounds how long one batch holds its users' counters.
MAX_BATCH = 64
# Statements in flight at once per process. With one, a process's creates wait for each other's
# round trips; with two, the GraphQL and REST creates of bench/peers.py ran 5-15% faster; four
# were no faster than two (docs/performance.md).
SENDERS = 2

# Runs a statement on a hot connection (the store's, which notes a lost connection).
Execute = Callable[[hot.HotConnection, Executable, dict[str, Any]], Awaitable[None]]


def insert_many(table: Table) -> TextClause:
    """INSERT of any number of `table`'s rows, each column's values as one array parameter named
    after the column: one statement, prepared once per connection, whatever the batch's size."""
    dialect = asyncpg_dialect()
    arrays = []
    for column in table.columns:
        # The element type without its collation (an array of `VARCHAR COLLATE "C"` cannot be
        # spelled); the column's own type and collation apply as the row is stored.
        element = "text" if isinstance(column.type, String) else column.type.compile(dialect)
        arrays.append(f"CAST(:{column.key} AS {element}[])")
    names = ", ".join(column.name for column in table.columns)
    return text(f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({', '.join(arrays)})")


@dataclass
class _Row:
    values: dict[str, Any]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class BatchedInserts:
    """The INSERTs of one table's rows on the hot path, sent as few statements as they allow.

    `one` inserts a row (its values by column key), `many` the rows of a batch (`insert_many`).
    At most SENDERS statements are in flight per process. A row that arrives while a sender is
    checking out its connection goes with that sender's batch; one that arrives while every
    sender is waiting for its statement starts another sender, up to SENDERS, else waits for
    the next batch, which takes every row waiting (at most MAX_BATCH).
    """

    def __init__(
        self, engine: AsyncEngine, table: Table, one: Executable, execute: Execute, order_by: str
    ) -> None:
        self._engine = engine
        self._keys = [column.key for column in table.columns]
        # The column whose order the rows of a batch are sent in (see the module's docstring).
        self._order_by = order_by
        self._one = one
        self._many = insert_many(table)
        self._execute = execute
        self._waiting: list[_Row] = []
        # The tasks sending batches while rows wait (held here: the loop keeps only weak
        # references to tasks), and how many of them are checking out a connection, after
        # which each takes every row waiting.
        self._senders: set[asyncio.Task[None]] = set()
        self._gathering = 0
        # Statements sent and rows they held, which the tests read.
        self.statements = 0
        self.rows = 0

    async def insert(self, values: dict[str, Any]) -> None:
        """Insert one row; returns once it is committed, raises what stopped it."""
        row = _Row(values)
        self._waiting.append(row)
        if not self._gathering and len(self._senders) < SENDERS:
            sender = asyncio.create_task(self._send_while_waiting())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        await row.done

    async def _send_while_waiting(self) -> None:
        try:
            while self._waiting:
                await self._send_next()
        finally:
            # At once, not in a done callback (which runs a turn later): meanwhile a row would
            # count this sender as busy and wait for it, and no sender would take that row.
            self._senders.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _send_next(self) -> None:
        """Check out a connection, then send what waits by then: the rows that came while it was
        being checked out go too."""
        batch: list[_Row] = []
        self._gathering += 1
        gathering = True
        try:
            async with hot.checked_out(self._engine) as connection:
                self._gathering -= 1
                gathering = False
                batch = self._take()
                await self._send(connection, batch)
        except Exception as exc:
            if gathering:
                # No connection: nothing was sent; every row waiting would meet the same.
                self._gathering -= 1
                batch = self._take()
            # Else returning the connection failed after the batch's outcome was given: only
            # rows still without an answer get this error.
            for row in batch:
                _fail(row, exc)

    def _take(self) -> list[_Row]:
        """The rows waiting (their callers still waiting too), at most MAX_BATCH, by user."""
        waiting = [row for row in self._waiting if not row.done.done()]
        batch, self._waiting = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
        # Stable: one user's rows keep the order they came in.
        batch.sort(key=lambda row: row.values[self._order_by])
        return batch

    async def _send(self, connection: hot.HotConnection, batch: list[_Row]) -> None:
        if not batch:
            return
        self.statements += 1
        self.rows += len(batch)
        if len(batch) == 1:
            await self._send_alone(connection, batch[0])
            return
        columns = {key: [row.values[key] for row in batch] for key in self._keys}
        try:
            await self._execute(connection, self._many, columns)
        except ConnectionLost as lost:
            for row in batch:
                _fail(row, ConnectionLost(*lost.args))
            return
        except Exception:
            # Nothing of the batch was committed: each row alone, so only a refused one fails.
            logger.debug("a batch of %d rows was refused; sending them one by one", len(batch))
            for index, row in enumerate(batch):
                self.statements += 1
                if not await self._send_alone(connection, row):
                    for unsent in batch[index + 1 :]:
                        _fail(unsent, ConnectionLost("connection lost before the row was sent"))
                    return
            return
        for row in batch:
            _succeed(row)

    async def _send_alone(self, connection: hot.HotConnection, row: _Row) -> bool:
        """Send `row` by itself; False when the connection was lost."""
        try:
            await self._execute(connection, self._one, row.values)
        except Exception as exc:
            _fail(row, exc)
            return not isinstance(exc, ConnectionLost)
        _succeed(row)
        return True


def _succeed(row: _Row) -> None:
    if not row.done.done():
        row.done.set_result(None)


def _fail(row: _Row, exc: Exception) -> None:
    if not row.done.done():
        row.done.set_exception(exc)
