"""Live updates: each process's subscribers of task events, fed from the outbox.

Every committed change has its event in `task_events` (written by trigger in the change's own
transaction, numbered 1, 2, 3... per user with no gaps, in commit order; see migration 0005).
`TaskEvents` is made once per process:

- A wake-up says "user U has new events": after each commit the service calls `changed()`, which
  on PostgreSQL has a NOTIFY sent that every process hears on its one LISTEN connection
  (`api.storage.events.Notifications`), so a change made by any process reaches every process;
  on SQLite (one process) it wakes this process directly. A sweep every `sweep_seconds` compares
  each subscribed user's last event number with what this process has read, so a change whose
  NOTIFY never came (its process died just after the commit, or the change was made in psql) is
  still delivered, late.
- Each user with subscribers in this process has a `_Channel`: on a wake-up it reads the user's
  new events from the outbox once, after the last one it read, and hands them to each of its live
  subscribers. After the LISTEN connection was lost and restored, every channel reads again, so a
  notification missed meanwhile loses nothing.
- A `Subscription` that resumes after an id first reads what it missed from the outbox itself,
  then joins its channel's live events; it joins only when the channel has read nothing beyond
  what it has, and events are handed to it only past its own last id: no gap, no duplicate.
- Bounded: each subscriber holds at most `queue_size` events; one that falls further behind is
  closed (`SubscriberTooSlowError`) and resumes with its last id. At most `max_connections`
  long-lived connections per process. Events older than the retention are purged in batches.

Knows no web framework: the faces turn a `Subscription` into WebSocket messages or SSE.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from api.config import Settings
from api.storage import events as outbox
from api.storage import failures
from api.storage.columns import utcnow
from api.storage.store import TaskStore
from api.tasks import errors
from api.tasks.shapes import TaskEvent, TaskEventKind, TaskRead

logger = logging.getLogger(__name__)

# Events read per statement, from the outbox into a channel or a resuming subscription.
PAGE = 500
# Seconds before a channel tries again to read after the database failed it.
READ_RETRY_SECONDS = 1.0


def event_id(seq: int) -> str:
    return str(seq)


def parse_event_id(value: str, field: str) -> int:
    """The number behind an event id; ValidationError for anything this service never issued."""
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise errors.ValidationError([{"field": field, "message": "not an event id"}])
    return int(value)


def _event(row: Any) -> TaskEvent:
    task = TaskRead.model_construct(
        id=row.task_id,
        user_id=row.user_id,
        title=row.title,
        description=row.description,
        completed=row.completed,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )
    return TaskEvent(id=event_id(row.seq), kind=TaskEventKind(row.kind), task=task, at=row.at)


@dataclass(frozen=True)
class _Numbered:
    seq: int
    event: TaskEvent


def _numbered(rows: Sequence[Any]) -> list[_Numbered]:
    return [_Numbered(int(row.seq), _event(row)) for row in rows]


class Subscription:
    """One subscriber's events, in order: `async for event in subscription`.

    Ends by raising a `StreamClosedError` (too slow, shutting down), `EventsExpiredError` (it
    fell behind the retention) or `AuthenticationError` (its token expired); `close()` when done.
    """

    def __init__(
        self,
        hub: "TaskEvents",
        channel: "_Channel",
        cursor: int,
        *,
        live: bool,
        expires_at: float | None,
    ) -> None:
        self._hub = hub
        self._channel = channel
        self.cursor = cursor  # the number of the last event handed to this subscriber
        self.live = live
        self._expires_at = expires_at
        self._queue: deque[TaskEvent] = deque()
        self._ready = asyncio.Event()
        self._error: errors.TaskAPIError | None = None
        self._closed = False

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> TaskEvent:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._error is not None:
                raise self._error
            if self.live:
                await self._wait()
            else:
                with failures.domain_errors():
                    await self._catch_up()

    async def _catch_up(self) -> None:
        """Read what this subscriber missed from the outbox; join the live events once the
        channel has read nothing it has not."""
        channel = self._channel
        rows = await self._hub.read(channel.user_id, self.cursor)
        if rows:
            if int(rows[0].seq) != self.cursor + 1:
                raise errors.EventsExpiredError()  # purged while it was being read
            for numbered in _numbered(rows):
                self._queue.append(numbered.event)
            self.cursor = int(rows[-1].seq)
            return
        async with channel.lock:
            if channel.last_seq is not None and channel.last_seq <= self.cursor:
                self.live = True

    async def _wait(self) -> None:
        self._ready.clear()
        if self._expires_at is None:
            await self._ready.wait()
            return
        try:
            async with asyncio.timeout(self._expires_at - time.time()):
                await self._ready.wait()
        except TimeoutError:
            self.fail(errors.AuthenticationError("The token has expired"))

    def deliver(self, events: Sequence[_Numbered]) -> None:
        """Hand the channel's new events to this live subscriber (past its own last one)."""
        for numbered in events:
            if numbered.seq <= self.cursor:
                continue
            if numbered.seq != self.cursor + 1:
                self.fail(errors.EventsExpiredError())
                return
            if len(self._queue) >= self._hub.queue_size:
                self.fail(errors.SubscriberTooSlowError())
                return
            self._queue.append(numbered.event)
            self.cursor = numbered.seq
        self._ready.set()

    def fail(self, error: errors.TaskAPIError) -> None:
        """End the stream with `error` once what it already holds has been read."""
        if self._error is None:
            self._error = error
        self._channel.subscribers.discard(self)
        self._ready.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._channel.subscribers.discard(self)
            self._hub.release(self)


class _Channel:
    """One user's subscribers in this process, and the last of the user's events it read."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.subscribers: set[Subscription] = set()
        self.lock = asyncio.Lock()
        self.last_seq: int | None = None
        self.pending = False
        self.reader: asyncio.Task[None] | None = None
        # Subscriptions being set up (waiting for the lock): the channel is kept for them.
        self.joining = 0


class TaskEvents:
    """The process's live updates: channels per user, the wake-ups, the purge."""

    def __init__(
        self,
        store: TaskStore,
        *,
        retention: timedelta,
        purge_interval: float,
        purge_batch: int,
        queue_size: int,
        max_connections: int,
        listen_url: str | None,
        connect_timeout: float = 5.0,
        sweep_seconds: float = 2.0,
        notify_interval: float = 0.0,
    ) -> None:
        self.store = store
        self.retention = retention
        self.queue_size = queue_size
        self.max_connections = max_connections
        self.connections = 0
        self._purge_interval = purge_interval
        self._purge_batch = purge_batch
        self._channels: dict[str, _Channel] = {}
        self._subscriptions: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._purger: asyncio.Task[None] | None = None
        self._closing = False
        self._sweep_seconds = sweep_seconds
        self._sweeper: asyncio.Task[None] | None = None
        self.notifications = (
            outbox.Notifications(
                listen_url,
                connect_timeout,
                self.wake,
                self._reconnected,
                notify_interval=notify_interval,
            )
            if listen_url is not None
            else None
        )

    @classmethod
    def from_settings(cls, store: TaskStore, settings: Settings) -> "TaskEvents":
        postgresql = store.engine.dialect.name == "postgresql"
        return cls(
            store,
            retention=timedelta(hours=settings.events_retention_hours),
            purge_interval=settings.events_purge_interval_seconds,
            purge_batch=settings.events_purge_batch,
            queue_size=settings.events_queue_size,
            max_connections=settings.events_max_connections,
            # A pooler cannot carry LISTEN: the direct URL when there is one.
            listen_url=settings.migration_url if postgresql else None,
            connect_timeout=settings.db_connect_timeout,
            sweep_seconds=settings.events_sweep_seconds,
            notify_interval=settings.events_notify_interval_ms / 1000,
        )

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.notifications is not None:
            self.notifications.start()
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="task-events-sweep")
        self._purger = asyncio.create_task(self._purge_forever(), name="task-events-purge")

    def close_streams(self) -> None:
        """End every open stream (the process is shutting down); clients resume elsewhere."""
        self._closing = True
        for subscription in list(self._subscriptions):
            subscription.fail(errors.ServiceRestartingError())

    async def stop(self) -> None:
        self.close_streams()
        tasks = [task for task in (self._purger, self._sweeper, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.notifications is not None:
            await self.notifications.stop()

    # --- wake-ups --------------------------------------------------------------------------

    def changed(self, user_id: str) -> None:
        """The service committed a change of `user_id`'s tasks: wake whoever follows them. On
        PostgreSQL a NOTIFY, sent soon by the LISTEN connection, wakes every process, this one
        included; on SQLite this process, at once."""
        if self.notifications is None:
            self.wake(user_id)
        else:
            self.notifications.announce(user_id)

    def wake(self, user_id: str) -> None:
        """`user_id` has new events: read them, if anyone here follows that user."""
        channel = self._channels.get(user_id)
        if channel is None:
            return
        channel.pending = True
        if channel.reader is None or channel.reader.done():
            channel.reader = self._spawn(self._read_into(channel))

    def _reconnected(self, again: bool) -> None:
        if again:
            for user_id in list(self._channels):
                self.wake(user_id)

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _read_into(self, channel: _Channel) -> None:
        """Read the channel's new events from the outbox, once for all its subscribers."""
        while channel.pending and self._channels.get(channel.user_id) is channel:
            channel.pending = False
            try:
                async with channel.lock:
                    await self._read_pages(channel)
            except Exception as exc:
                logger.warning(
                    "task events: reading the outbox failed (%s); retrying", type(exc).__name__
                )
                channel.pending = True
                await asyncio.sleep(READ_RETRY_SECONDS)

    async def _read_pages(self, channel: _Channel) -> None:
        if channel.last_seq is None:
            return  # the first subscriber sets it, and reads from there itself
        while True:
            rows = await self.read(channel.user_id, channel.last_seq)
            if not rows:
                return
            events = _numbered(rows)
            for subscription in list(channel.subscribers):
                if subscription.live:
                    subscription.deliver(events)
            channel.last_seq = events[-1].seq
            if len(rows) < PAGE:
                return

    async def read(self, user_id: str, after: int) -> Sequence[Any]:
        return await outbox.read_events(self.store, user_id, after, PAGE)

    # --- subscribing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        """Hold one of the process's long-lived connections (TooManyStreamsError when none)."""
        if self.connections >= self.max_connections:
            raise errors.TooManyStreamsError()
        self.connections += 1
        try:
            yield
        finally:
            self.connections -= 1

    async def subscribe(
        self, user_id: str, after: int | None, expires_at: float | None
    ) -> Subscription:
        """A subscription to `user_id`'s events after `after` (None: from now on)."""
        if expires_at is not None and expires_at <= time.time():
            raise errors.AuthenticationError("The token has expired")
        if self._closing:
            raise errors.ServiceRestartingError()
        channel = self._channels.get(user_id)
        if channel is None:
            channel = self._channels[user_id] = _Channel(user_id)
        channel.joining += 1
        try:
            with failures.domain_errors():
                async with channel.lock:
                    if channel.last_seq is None:
                        channel.last_seq = await outbox.head(self.store, user_id)
                    if after is None:
                        subscription = Subscription(
                            self, channel, channel.last_seq, live=True, expires_at=expires_at
                        )
                    else:
                        head, kept = await outbox.resume_state(self.store, user_id, after)
                        if after > head or (after < head and not kept):
                            raise errors.EventsExpiredError()
                        subscription = Subscription(
                            self, channel, after, live=False, expires_at=expires_at
                        )
                    channel.subscribers.add(subscription)
        finally:
            channel.joining -= 1
            self._forget_if_unused(channel)
        self._subscriptions.add(subscription)
        return subscription

    def release(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._forget_if_unused(subscription._channel)

    def _forget_if_unused(self, channel: _Channel) -> None:
        if (
            not channel.subscribers
            and not channel.joining
            and self._channels.get(channel.user_id) is channel
        ):
            del self._channels[channel.user_id]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    # --- retention -------------------------------------------------------------------------------

    async def purge(self) -> int:
        """Delete events older than the retention, in bounded batches; how many went."""
        cutoff = utcnow() - self.retention
        total = 0
        while True:
            deleted = await outbox.purge_events(self.store, cutoff, self._purge_batch)
            total += deleted
            if deleted < self._purge_batch:
                return total

    async def sweep(self) -> int:
        """Wake the channels whose user has events this process has not read; how many."""
        behind = 0
        if not self._channels:
            return behind
        heads = await outbox.heads_of(self.store, list(self._channels))
        for user_id, head in heads.items():
            channel = self._channels.get(user_id)
            if channel is not None and channel.last_seq is not None and head > channel.last_seq:
                if not channel.pending and (channel.reader is None or channel.reader.done()):
                    behind += 1
                self.wake(user_id)
        return behind

    async def _sweep_forever(self) -> None:
        await _every(
            self._sweep_seconds,
            self.sweep,
            "sweep",
            # No NOTIFY came for them, or theirs is still waiting out its interval.
            "%d users had events no NOTIFY had announced yet",
        )

    async def _purge_forever(self) -> None:
        await _every(self._purge_interval, self.purge, "purge", "purged %d events past retention")


async def _every(seconds: float, work: Callable[[], Awaitable[int]], name: str, done: str) -> None:
    """Run `work` every `seconds` until cancelled; log how many it handled, or that it failed
    (the next round tries again)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            count = await work()
        except Exception as exc:
            logger.warning("task events: %s failed (%s)", name, type(exc).__name__)
        else:
            if count:
                logger.info("task events: " + done, count)
