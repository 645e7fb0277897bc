"""Creates that arrive together are sent as one INSERT (api/storage/batched.py).

PostgreSQL only: on SQLite (and behind a transaction-mode pooler) each create is its own
statement, as before. Through the real app, many creates at once on both faces are answered as
each would be alone, are all stored, and each user's events stay numbered without gaps; and they
took fewer statements than rows (a test that fails if the batches are bypassed). Through the
store itself: a row the database refuses fails alone, the rest of its batch is stored; a caller
that gave up is not sent; and every row waiting when no connection can be had gets that error.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from api.storage.batched import BatchedInserts
from api.storage.tables import TaskEvent
from api.tasks.shapes import folded_columns
from tests.apps import app_of, client_of, stored_tasks
from tests.conftest import reset_postgres
from tests.factories import TASK_FIELDS, fetch_all, graphql

USERS = ["ann", "bob", "cy", "dee"]
PER_USER = 10
CREATE = f"""
mutation Create($userId: String!, $input: CreateTaskInput!) {{
  createTask(userId: $userId, input: $input) {{ {TASK_FIELDS} }}
}}
"""


async def create(client: httpx.AsyncClient, user: str, number: int) -> dict[str, Any]:
    """Create a task by REST for even numbers, by GraphQL for odd ones; the task answered, its
    owner under `owner` (REST calls it `user_id`, GraphQL `userId`)."""
    fields = {"title": f"{user} {number}", "description": f"task {number} of {user}"}
    if number % 2 == 0:
        response = await client.post(f"/api/{user}/tasks", json=fields)
        assert response.status_code == 201, response.text
        answered: dict[str, Any] = response.json()
        return answered | {"owner": answered["user_id"]}
    body = await graphql(client, CREATE, userId=user, input=fields)
    assert "errors" not in body, body
    answered = body["data"]["createTask"]
    return answered | {"owner": answered["userId"]}


@pytest.fixture
async def client(postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app on an empty PostgreSQL database, started."""
    await reset_postgres(postgres_url)
    async with client_of(postgres_url) as started:
        yield started


def batches_of(client: httpx.AsyncClient) -> BatchedInserts:
    batched: BatchedInserts | None = app_of(client).state.store.batched_creates
    assert batched is not None, "PostgreSQL's creates are not batched"
    return batched


async def test_creates_at_once_are_answered_stored_and_numbered_as_alone(
    client: httpx.AsyncClient,
) -> None:
    batched = batches_of(client)
    answers = await asyncio.gather(
        *(create(client, user, number) for user in USERS for number in range(PER_USER))
    )
    # Each caller got its own task back.
    expected = {(user, f"{user} {number}") for user in USERS for number in range(PER_USER)}
    assert {(task["owner"], task["title"]) for task in answers} == expected
    assert all(task["version"] == 1 and task["completed"] is False for task in answers)
    # Every one is stored as answered.
    rows = {str(row["id"]): row for row in await stored_tasks(app_of(client))}
    assert len(rows) == len(answers)
    for task in answers:
        row = rows[task["id"]]
        assert (row["user_id"], row["title"], row["description"]) == (
            task["owner"],
            task["title"],
            task["description"],
        )
    # One event per create, each user's numbered 1..n, each naming one of its tasks.
    events = await fetch_all(
        app_of(client), select(TaskEvent.user_id, TaskEvent.seq, TaskEvent.task_id)
    )
    for user in USERS:
        mine = sorted((seq, str(task_id)) for owner, seq, task_id in events if owner == user)
        assert [seq for seq, _ in mine] == list(range(1, PER_USER + 1))
        assert {task_id for _, task_id in mine} == {
            task["id"] for task in answers if task["owner"] == user
        }
    # They went in batches: fewer statements than rows.
    assert batched.rows == len(answers)
    assert batched.statements < batched.rows


def new_row(user: str, title: str) -> dict[str, Any]:
    """Every column of a new task, as the service makes them."""
    now = datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "user_id": user,
        "title": title,
        "description": None,
        "completed": False,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    return values | folded_columns(values)


async def test_a_row_the_database_refuses_fails_alone(client: httpx.AsyncClient) -> None:
    batched = batches_of(client)
    # Longer than the column's 500 characters: only the service's validation stops such a
    # title, so here the database refuses it.
    rows = [new_row(user, f"{user} fine") for user in reversed(USERS)]
    rows.insert(2, new_row("eve", "x" * 501))
    outcomes = await asyncio.gather(*(batched.insert(row) for row in rows), return_exceptions=True)
    refused = [outcome for outcome in outcomes if outcome is not None]
    assert len(refused) == 1
    assert isinstance(refused[0], asyncpg.StringDataRightTruncationError)
    assert outcomes[2] is refused[0]
    stored = {row["title"] for row in await stored_tasks(app_of(client))}
    assert stored == {f"{user} fine" for user in USERS}
    # One batch of them all, refused, then each row alone.
    assert (batched.statements, batched.rows) == (1 + len(rows), len(rows))
    # Sent ordered by user id, whatever order they came in: the order each statement locks
    # the users' event counters in, the same in every process, so batches never deadlock.
    events = await fetch_all(
        app_of(client),
        select(TaskEvent.user_id, TaskEvent.seq).order_by(TaskEvent.at),  # type: ignore[arg-type]
    )
    assert [tuple(event) for event in events] == [(user, 1) for user in sorted(USERS)]


async def test_a_caller_that_gave_up_is_not_sent(client: httpx.AsyncClient) -> None:
    batched = batches_of(client)
    kept = [asyncio.create_task(batched.insert(new_row(user, "kept"))) for user in USERS]
    gone = asyncio.create_task(batched.insert(new_row("gone", "given up")))
    # The loop runs callbacks in the order they were scheduled: this one after each task
    # above has queued its row and before the senders they started take any.
    asyncio.get_running_loop().call_soon(gone.cancel)
    await asyncio.gather(*kept)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert {(row["user_id"], row["title"]) for row in await stored_tasks(app_of(client))} == {
        (user, "kept") for user in USERS
    }
    assert batched.rows == len(USERS)


async def test_every_row_waiting_gets_the_error_when_no_connection_can_be_had(
    client: httpx.AsyncClient,
) -> None:
    batched = batches_of(client)
    store = app_of(client).state.store
    # A pool that can no longer open a connection: the server is not there.
    await store.engine.dispose()
    store.engine.sync_engine.pool._creator = _unreachable  # type: ignore[attr-defined]
    outcomes = await asyncio.gather(
        *(batched.insert(new_row(user, "lost")) for user in USERS), return_exceptions=True
    )
    assert all(isinstance(outcome, ConnectionRefusedError) for outcome in outcomes)
    assert (batched.statements, batched.rows) == (0, 0)


def _unreachable() -> Any:
    raise ConnectionRefusedError("no server here")
