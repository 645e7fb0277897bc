"""The task events outbox as storage sees it: its statements, its purge, and the wake-ups.

The triggers of migration 0005 write `task_events` in the transaction of each change; this module
reads it (`read_events`, `resume_state`, `head`), purges it (`purge_events`) and, on PostgreSQL,
holds the process's one `LISTEN task_events` connection (`Notifications`). Everything runs on the
store's pool and its admission, except the LISTEN connection, which is the process's own.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Integer, bindparam, delete, exists, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from api.storage.store import TaskStore
from api.storage.tables import TaskEvent, TaskEventHead
from api.storage.urls import engine_options

logger = logging.getLogger(__name__)

CHANNEL = "task_events"
LISTENER_NAME = "task-api events listener"

EVENTS = TaskEvent.__table__  # type: ignore[attr-defined]
HEADS = TaskEventHead.__table__  # type: ignore[attr-defined]

READ_EVENTS = (
    select(*EVENTS.c)
    .where(EVENTS.c.user_id == bindparam("user_id"), EVENTS.c.seq > bindparam("after"))
    .order_by(EVENTS.c.seq)
    .limit(bindparam("limit", type_=Integer()))
)
HEAD = select(HEADS.c.last_seq).where(HEADS.c.user_id == bindparam("user_id"))
# The user's last number, and whether the event after a resume point is still kept.
RESUME_STATE = select(
    select(HEADS.c.last_seq).where(HEADS.c.user_id == bindparam("user_id")).scalar_subquery(),
    exists().where(EVENTS.c.user_id == bindparam("user_id"), EVENTS.c.seq == bindparam("next")),
)


async def _rows(store: TaskStore, statement: Any, values: dict[str, Any]) -> Sequence[Any]:
    async with store.session() as db, db.single_statements() as connection:
        return await db.fetch(connection, statement, values)


async def read_events(store: TaskStore, user_id: str, after: int, limit: int) -> Sequence[Any]:
    """Up to `limit` of the user's events numbered after `after`, in order."""
    return await _rows(store, READ_EVENTS, {"user_id": user_id, "after": after, "limit": limit})


async def head(store: TaskStore, user_id: str) -> int:
    """The number of the user's last committed event (0 before the first)."""
    rows = await _rows(store, HEAD, {"user_id": user_id})
    return int(rows[0][0]) if rows else 0


async def resume_state(store: TaskStore, user_id: str, after: int) -> tuple[int, bool]:
    """The user's last number, and whether the event numbered `after + 1` is still kept."""
    (row,) = await _rows(store, RESUME_STATE, {"user_id": user_id, "next": after + 1})
    return int(row[0] or 0), bool(row[1])


async def purge_events(store: TaskStore, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` events older than `cutoff`, oldest first; how many went.

    Bounded, so a purge never holds locks or a connection for long; SKIP LOCKED lets several
    processes purge at once without waiting on each other (SQLite has one writer and ignores it).
    """
    expired = (
        select(EVENTS.c.user_id, EVENTS.c.seq)
        .where(EVENTS.c.at < cutoff)
        .order_by(EVENTS.c.at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    statement = delete(EVENTS).where(tuple_(EVENTS.c.user_id, EVENTS.c.seq).in_(expired))
    async with store.session() as db, db.own_transaction() as connection:
        result = await connection.execute(statement)
    return int(result.rowcount or 0)


def parse_payload(payload: str) -> tuple[str, int] | None:
    """The user id and event number of a notification (`<number>:<user id>`)."""
    number, _, user_id = payload.partition(":")
    if not number.isdigit() or not user_id:
        return None
    return user_id, int(number)


class Notifications:
    """The process's one `LISTEN task_events` connection (PostgreSQL).

    It is opened on the direct URL when one is set: a transaction-mode pooler hands each
    transaction to any server connection, so a LISTEN there would hear nothing. `on_event(user_id,
    number)` is called for each notification; `on_connected(again)` after every (re)connection,
    where `again` means notifications may have been missed meanwhile, so readers catch up from
    the outbox. A lost connection is reopened with capped, jittered exponential backoff; a ping
    every `ping_seconds` finds one that died silently.
    """

    def __init__(
        self,
        url: str,
        connect_timeout: float,
        on_event: Callable[[str, int], None],
        on_connected: Callable[[bool], None],
        *,
        ping_seconds: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        options = engine_options(url, connect_timeout)
        # The pooler settings do not apply: this connection always runs outside a pooler.
        connect_args = {
            key: value
            for key, value in options.connect_args.items()
            if key not in {"statement_cache_size", "prepared_statement_name_func"}
        }
        # Named, so an operator (or a test) can tell it apart in pg_stat_activity.
        server_settings = {
            "application_name": LISTENER_NAME,
            **connect_args.get("server_settings", {}),
        }
        connect_args["server_settings"] = server_settings
        self._engine = create_async_engine(
            options.url, connect_args=connect_args, poolclass=NullPool
        )
        self._on_event = on_event
        self._on_connected = on_connected
        self._ping_seconds = ping_seconds
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.backend_pid: int | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-events-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._engine.dispose()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is not None:
            self._on_event(*parsed)

    async def _run(self) -> None:
        failures = 0
        connected_before = False
        while True:
            try:
                async with self._engine.connect() as connection:
                    lost = await self._listen(connection)
                    failures = 0
                    self._on_connected(connected_before)
                    if connected_before:
                        logger.warning(
                            "task events: LISTEN connection restored; catching up from the outbox"
                        )
                    connected_before = True
                    self.connected.set()
                    await self._watch(connection, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if connected_before and failures == 0:
                    logger.warning(
                        "task events: LISTEN connection lost (%s); reconnecting",
                        type(exc).__name__,
                    )
            self.connected.clear()
            self.backend_pid = None
            failures += 1
            # Capped exponential backoff with jitter, so restarted processes do not reconnect
            # in lockstep.
            delay = min(self._max_backoff, 0.05 * 2**failures) * (0.5 + random.random() / 2)
            await asyncio.sleep(delay)

    async def _listen(self, connection: AsyncConnection) -> asyncio.Event:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        lost = asyncio.Event()
        driver.add_termination_listener(lambda _connection: lost.set())
        await driver.add_listener(CHANNEL, self._notified)
        self.backend_pid = driver.get_server_pid()
        return lost

    async def _watch(self, connection: AsyncConnection, lost: asyncio.Event) -> None:
        """Return (raising) once the connection is gone."""
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_seconds):
                    await lost.wait()
            if lost.is_set() or driver.is_closed():
                await connection.invalidate()
                raise ConnectionError("LISTEN connection closed")
            async with asyncio.timeout(self._ping_seconds):
                await driver.execute("SELECT 1")
