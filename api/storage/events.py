"""The task events outbox as storage sees it: its statements, its purge, and the wake-ups.

The triggers of migration 0005 write `task_events` in the transaction of each change; this module
reads it (`read_events`, `resume_state`, `head`, `heads_of`), purges it (`purge_events`) and, on
PostgreSQL, holds the process's one `LISTEN task_events` connection, which also sends the
wake-ups after commits (`Notifications`). Everything runs on the
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
import orjson
from sqlalchemy import Integer, String, any_, bindparam, delete, exists, select, tuple_
from sqlalchemy.dialects import postgresql
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


# One round trip sends every payload of the batch (PostgreSQL).
NOTIFY_MANY = f"SELECT pg_notify('{CHANNEL}', payload) FROM unnest($1::text[]) AS payload"
# PostgreSQL refuses a payload of 8,000 bytes or more.
MAX_PAYLOAD_BYTES = 7_999
# The most users waiting to be announced; past it they are dropped, and the sweep finds them.
MAX_PENDING = 100_000
# The heads of the users a process has subscribers of (PostgreSQL: one array parameter).
HEADS_OF = select(HEADS.c.user_id, HEADS.c.last_seq).where(
    HEADS.c.user_id == any_(bindparam("user_ids", type_=postgresql.ARRAY(String())))
)


def payloads(user_ids: Sequence[str]) -> list[str]:
    """The users of one batch as few notification payloads as fit: JSON arrays of user ids.

    One notification names many users, because what a notification costs PostgreSQL and every
    listening process (its queue entry, a message to each listening connection, the parsing and
    the callback there) is per notification, not per byte. JSON, because a user id may hold any
    character but NUL; one is at most 255 characters, so even fully escaped it fits a payload.
    """
    chunks: list[str] = []
    current: list[bytes] = []
    size = 2  # the brackets
    for user_id in user_ids:
        try:
            encoded = orjson.dumps(user_id)
        except TypeError:
            # Not UTF-8 (a lone surrogate): the service refuses such an id, so none was stored.
            continue
        if current and size + 1 + len(encoded) > MAX_PAYLOAD_BYTES:
            chunks.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        current.append(encoded)
        size += len(encoded) + (1 if len(current) > 1 else 0)
    if current:
        chunks.append(b"[" + b",".join(current) + b"]")
    return [chunk.decode() for chunk in chunks]


def users_of(payload: str) -> list[str]:
    """The user ids a notification names: a JSON array of them, or (sent by a process of an
    earlier version, during a rolling upgrade) one user id as it is."""
    if payload.startswith("["):
        try:
            named = orjson.loads(payload)
        except orjson.JSONDecodeError:
            named = None
        if isinstance(named, list) and all(isinstance(user_id, str) for user_id in named):
            return named
    return [payload]


async def heads_of(store: TaskStore, user_ids: Sequence[str]) -> dict[str, int]:
    """The last event number of each of these users that has one (PostgreSQL)."""
    rows = await _rows(store, HEADS_OF, {"user_ids": list(user_ids)})
    return {row.user_id: int(row.last_seq) for row in rows}


class Notifications:
    """The process's one `LISTEN task_events` connection (PostgreSQL).

    It is opened on the direct URL when one is set: a transaction-mode pooler hands each
    transaction to any server connection, so a LISTEN there would hear nothing. `on_event(user_id)`
    is called for each user a notification names (its payload is a JSON array of user ids, see
    `payloads`; the events themselves are read from the outbox).

    `announce(user_id)` queues a wake-up for a user whose change has committed; the same
    connection sends the queued ones, as many as have gathered, in one statement (usually one
    notification for them all): a NOTIFY after the commit, in a transaction of its own that
    writes nothing (see migration 0005 for why not inside the writing transaction), and off the
    request's path. It sends at most one such NOTIFY every `notify_interval` seconds: each
    costs PostgreSQL a transaction and wakes every listening process, so under a stream of
    changes one per interval carries them all; after a quiet interval one goes at once.
    `on_connected(again)` is called after every (re)connection, where `again` means
    notifications may have been missed meanwhile, so readers catch up from the outbox. A lost
    connection is reopened with capped, jittered exponential backoff; a ping every
    `ping_seconds` finds one that died silently.
    """

    def __init__(
        self,
        url: str,
        connect_timeout: float,
        on_event: Callable[[str], None],
        on_connected: Callable[[bool], None],
        *,
        ping_seconds: float = 30.0,
        notify_interval: float = 0.0,
        max_backoff: float = 5.0,
    ) -> None:
        options = engine_options(url, connect_timeout)
        if options.behind_pooler:
            logger.warning(
                "task events: LISTEN goes through a transaction-mode pooler, which may not carry "
                "notifications; set DATABASE_DIRECT_URL. Until then other processes' changes "
                "arrive with the sweep, every TASK_API_EVENTS_SWEEP_SECONDS"
            )
        connect_args = dict(options.connect_args)
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
        self._pending: set[str] = set()
        self._notify_interval = notify_interval
        self._last_sent = -notify_interval
        self._attention = asyncio.Event()
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

    def announce(self, user_id: str) -> None:
        """Wake every process (this one included) for `user_id`, soon; never waits."""
        if len(self._pending) < MAX_PENDING:
            self._pending.add(user_id)
        self._attention.set()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload:
            for user_id in users_of(payload):
                self._on_event(user_id)

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

        def on_termination(_connection: Any) -> None:
            lost.set()
            self._attention.set()

        driver.add_termination_listener(on_termination)
        await driver.add_listener(CHANNEL, self._notified)
        self.backend_pid = driver.get_server_pid()
        return lost

    async def _watch(self, connection: AsyncConnection, lost: asyncio.Event) -> None:
        """Send the announced wake-ups and ping while idle; return (raising) once the
        connection is gone."""
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        while True:
            self._attention.clear()
            if lost.is_set() or driver.is_closed():
                await connection.invalidate()
                raise ConnectionError("LISTEN connection closed")
            if self._pending:
                # At most one NOTIFY per interval: under a stream of changes the wake-ups of
                # an interval go out together; after a quiet interval one goes at once.
                wait = self._last_sent + self._notify_interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_sent = loop.time()
                users = list(self._pending)
                self._pending.clear()
                try:
                    await driver.execute(NOTIFY_MANY, payloads(users))
                except BaseException:
                    self._pending.update(users)
                    raise
                continue
            try:
                async with asyncio.timeout(self._ping_seconds):
                    await self._attention.wait()
            except TimeoutError:
                async with asyncio.timeout(self._ping_seconds):
                    await driver.execute("SELECT 1")
