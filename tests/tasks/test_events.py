"""The task events outbox and the service's subscriptions, on both databases, in one process.

The faces and several processes are in tests/test_live_updates.py; here the service's own
subscriptions (`TaskService.task_events`) are read after changes made through both faces.
"""

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlmodel import col

from api.storage.tables import Task
from api.storage.tables import TaskEvent as TaskEventRow
from api.tasks import errors
from api.tasks.events import Subscription
from api.tasks.shapes import TaskEvent, TaskEventKind
from tests.apps import app_of, client_of
from tests.conftest import reset_postgres
from tests.factories import create_task, execute, fetch_all, graphql

# A bound on every wait: the events come at once, so this only stops a broken test hanging.
WAIT = 10.0

COMPLETE = """
mutation Complete($userId: String!, $id: ID!) {
  completeTask(userId: $userId, id: $id) { id }
}
"""


async def next_events(subscription: Subscription, count: int) -> list[TaskEvent]:
    async with asyncio.timeout(WAIT):
        return [await anext(subscription) for _ in range(count)]


def summary(events: list[TaskEvent]) -> list[tuple[str, TaskEventKind, str, int]]:
    return [(e.id, e.kind, e.task.title, e.task.version) for e in events]


async def subscribe(client: httpx.AsyncClient, user: str, after: str | None = None) -> Subscription:
    return await app_of(client).state.tasks.task_events(user, after)


class TestOutbox:
    async def test_every_change_on_either_face_is_one_event_in_order(
        self, database_url: str
    ) -> None:
        async with client_of(database_url) as client:
            live = await subscribe(client, "alice")
            task = await create_task(client, title="first")
            path = f"/api/alice/tasks/{task['id']}"
            assert (await client.put(path, json={"title": "second"})).status_code == 200
            body = await graphql(client, COMPLETE, userId="alice", id=task["id"])
            assert "errors" not in body
            # Completing again changes nothing: no version, no event.
            assert (await client.patch(f"{path}/complete")).status_code == 200
            assert (await client.delete(path)).status_code == 204
            events = await next_events(live, 4)
            live.close()
        assert summary(events) == [
            ("1", TaskEventKind.CREATED, "first", 1),
            ("2", TaskEventKind.UPDATED, "second", 2),
            ("3", TaskEventKind.UPDATED, "second", 3),
            # The task as it was before the deletion.
            ("4", TaskEventKind.DELETED, "second", 3),
        ]
        assert events[2].task.completed is True
        assert str(events[0].task.id) == task["id"]
        assert [e.at for e in events] == sorted(e.at for e in events)

    async def test_keyed_creates_write_one_event(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            live = await subscribe(client, "alice")
            for _ in range(2):
                response = await client.post(
                    "/api/alice/tasks", json={"title": "once"}, headers={"Idempotency-Key": "k"}
                )
                assert response.status_code == 201
            await create_task(client, title="marker")
            events = await next_events(live, 2)
            live.close()
        assert [e.task.title for e in events] == ["once", "marker"]

    async def test_a_rolled_back_write_makes_no_event(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            app = app_of(client)
            task = await create_task(client, title="kept")
            engine = app.state.store.engine
            async with engine.connect() as connection:
                transaction = await connection.begin()
                await connection.execute(
                    text("UPDATE tasks SET title = 'never', version = version + 1")
                )
                # Inside the transaction the event exists...
                inside = await connection.execute(select(func.count()).select_from(TaskEventRow))
                assert inside.scalar_one() == 2
                await transaction.rollback()
            live = await subscribe(client, "alice", after="1")
            await create_task(client, title="next")
            (event,) = await next_events(live, 1)
            live.close()
            rows = await fetch_all(app, select(TaskEventRow.seq, TaskEventRow.title))
        # ...and after the rollback it never did: the next event is number 2.
        assert (event.id, event.task.title) == ("2", "next")
        assert sorted(rows) == [(1, "kept"), (2, "next")]
        assert task["title"] == "kept"

    async def test_other_users_events_never_reach_a_subscriber(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            bobs = await subscribe(client, "bob")
            await create_task(client, "alice", title="alice's")
            await create_task(client, "bob", title="bob's")
            (event,) = await next_events(bobs, 1)
            bobs.close()
        assert (event.id, event.task.user_id, event.task.title) == ("1", "bob", "bob's")


class TestResume:
    async def test_resume_gets_exactly_the_missed_events_then_live_ones(
        self, database_url: str
    ) -> None:
        async with client_of(database_url) as client:
            first = await subscribe(client, "alice")
            await create_task(client, title="seen")
            (seen,) = await next_events(first, 1)
            first.close()
            for title in ("missed 1", "missed 2", "missed 3"):
                await create_task(client, title=title)
            resumed = await subscribe(client, "alice", after=seen.id)
            missed = await next_events(resumed, 3)
            await create_task(client, title="live")
            (live,) = await next_events(resumed, 1)
            resumed.close()
        assert [e.task.title for e in missed] == ["missed 1", "missed 2", "missed 3"]
        assert [e.id for e in [*missed, live]] == ["2", "3", "4", "5"]
        assert live.task.title == "live"

    async def test_changes_during_the_replay_come_once_each(self, database_url: str) -> None:
        """Changes made while a resumed subscriber is still replaying: no gap, no duplicate at
        the seam between the replay and the live events."""
        async with client_of(database_url) as client:
            for n in range(5):
                await create_task(client, title=f"before {n}")
            watcher = await subscribe(client, "alice")  # keeps the channel reading live
            resumed = await subscribe(client, "alice", after="0")
            received = [await anext(resumed)]  # replaying now
            writes = [create_task(client, title=f"during {n}") for n in range(5)]
            await asyncio.gather(*writes)
            received += await next_events(resumed, 9)
            await create_task(client, title="after")
            received += await next_events(resumed, 1)
            resumed.close()
            watched = await next_events(watcher, 6)
            watcher.close()
        assert [e.id for e in received] == [str(n) for n in range(1, 12)]
        assert [e.id for e in watched] == [str(n) for n in range(6, 12)]

    async def test_an_id_past_the_retention_is_refused(self, database_url: str) -> None:
        async with client_of(database_url, events_purge_batch=2) as client:
            app = app_of(client)
            for n in range(5):
                await create_task(client, title=f"old {n}")
            await create_task(client, "bob", title="bob's")
            # Age alice's events past the retention, then purge (in batches of 2).
            await age_events(app, "alice", timedelta(hours=25))
            assert await app.state.events.purge() == 5
            with pytest.raises(errors.EventsExpiredError):
                await subscribe(client, "alice", after="2")
            # Nothing was missed after the last event: that id still resumes.
            caught_up = await subscribe(client, "alice", after="5")
            await create_task(client, title="new")
            (event,) = await next_events(caught_up, 1)
            caught_up.close()
            # An id this user was never given is refused too; one that is no id is invalid.
            with pytest.raises(errors.EventsExpiredError):
                await subscribe(client, "alice", after="99")
            with pytest.raises(errors.ValidationError):
                await subscribe(client, "alice", after="not-an-id")
            # Bob's event is within the retention and stays.
            bobs = await subscribe(client, "bob", after="0")
            (kept,) = await next_events(bobs, 1)
            bobs.close()
        assert (event.id, event.task.title) == ("6", "new")
        assert kept.task.title == "bob's"


async def age_events(app: Any, user_id: str, by: timedelta) -> None:
    table = TaskEventRow.__table__  # type: ignore[attr-defined]
    for seq, at in await fetch_all(
        app, select(table.c.seq, table.c.at).where(table.c.user_id == user_id)
    ):
        await execute(
            app,
            update(table).where(table.c.user_id == user_id, table.c.seq == seq).values(at=at - by),
        )


class TestBounds:
    async def test_a_slow_subscriber_is_closed_and_resumes_losing_nothing(
        self, database_url: str
    ) -> None:
        async with client_of(database_url, events_queue_size=3) as client:
            slow = await subscribe(client, "alice")
            watcher = await subscribe(client, "alice")
            # The watcher reads each event as it comes; the slow one reads nothing meanwhile.
            for n in range(6):
                await create_task(client, title=f"task {n}")
                await next_events(watcher, 1)
            held = await next_events(slow, 3)
            with pytest.raises(errors.SubscriberTooSlowError):
                await anext(slow)
            slow.close()
            resumed = await subscribe(client, "alice", after=held[-1].id)
            rest = await next_events(resumed, 3)
            resumed.close()
            watcher.close()
        assert [e.id for e in [*held, *rest]] == ["1", "2", "3", "4", "5", "6"]

    async def test_connections_per_process_are_limited(self, database_url: str) -> None:
        async with client_of(database_url, events_max_connections=2) as client:
            events = app_of(client).state.events
            with (
                events.connection(),
                events.connection(),
                pytest.raises(errors.TooManyStreamsError),
                events.connection(),
            ):
                pass
            with events.connection():
                assert events.connections == 1

    async def test_an_expiring_token_ends_the_subscription(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            tasks = app_of(client).state.tasks
            with pytest.raises(errors.AuthenticationError):
                await tasks.task_events("alice", expires_at=time.time() - 1)
            subscription = await tasks.task_events("alice", expires_at=time.time() + 0.2)
            with pytest.raises(errors.AuthenticationError, match="expired"):
                await asyncio.wait_for(anext(subscription), WAIT)
            subscription.close()

    async def test_shutdown_ends_every_stream_and_forgets_it(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            events = app_of(client).state.events
            subscription = await subscribe(client, "alice")
            assert events.subscriber_count == 1
            events.close_streams()
            with pytest.raises(errors.ServiceRestartingError):
                await anext(subscription)
            subscription.close()
            assert events.subscriber_count == 0
            with pytest.raises(errors.ServiceRestartingError):
                await subscribe(client, "alice")


class TestWakeUps:
    async def test_a_change_no_notify_announced_is_found_by_the_sweep(
        self, postgres_url: str
    ) -> None:
        """A change made outside the service (or whose process died before its NOTIFY went)
        still reaches subscribers: the sweep sees the user's head past what was read."""
        await reset_postgres(postgres_url)
        async with client_of(postgres_url, events_sweep_seconds=0.05) as client:
            live = await subscribe(client, "alice")
            task = await create_task(client, title="through the service")
            await next_events(live, 1)
            await execute(
                app_of(client),
                update(Task)
                .where(col(Task.id) == uuid.UUID(task["id"]))
                .values(title="by hand", version=Task.version + 1),
            )
            (event,) = await next_events(live, 1)
            live.close()
        assert (event.id, event.kind, event.task.title) == ("2", TaskEventKind.UPDATED, "by hand")


class TestRestStreamRefusals:
    """What the REST stream answers before it starts (the stream itself: test_live_updates)."""

    async def test_an_unknown_or_expired_id_is_410_and_a_malformed_one_400(
        self, database_url: str
    ) -> None:
        async with client_of(database_url) as client:
            await create_task(client)
            gone = await client.get("/api/alice/tasks/events", params={"after": "7"})
            by_header = await client.get(
                "/api/alice/tasks/events", headers={"Last-Event-ID": "7"}, params={"after": "0"}
            )
            malformed = await client.get("/api/alice/tasks/events", params={"after": "x"})
        for response in (gone, by_header):
            assert response.status_code == 410
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["error_type"] == "EventsExpiredError"
        assert malformed.status_code == 400
        assert malformed.json()["errors"] == [{"field": "after", "message": "not an event id"}]

    async def test_a_full_process_answers_503_with_retry_after(self, database_url: str) -> None:
        async with client_of(database_url, events_max_connections=1) as client:
            with app_of(client).state.events.connection():
                refused = await client.get("/api/alice/tasks/events")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["error_type"] == "TooManyStreamsError"

    async def test_other_methods_are_405(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            answers = [
                await client.request(method, "/api/alice/tasks/events", json={"title": "x"})
                for method in ("POST", "PUT", "PATCH", "DELETE")
            ]
        for answer in answers:
            assert answer.status_code == 405
            assert answer.headers["allow"] == "GET"
            assert answer.headers["content-type"] == "application/problem+json"
