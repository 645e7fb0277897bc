"""Idempotent creates: one task per (user, Idempotency-Key) for 24 hours, on both faces."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select, update

from api.storage.columns import utcnow
from api.storage.tables import IdempotencyKey
from api.tasks.idempotency import PURGE_BATCH, TTL
from tests.factories import TASK_FIELDS, error_codes, execute, fetch_all, graphql
from tests.rest.test_rest import assert_problem

CREATE = f"""
mutation Create($userId: String!, $input: CreateTaskInput!, $key: String) {{
  createTask(userId: $userId, input: $input, idempotencyKey: $key) {{ {TASK_FIELDS} }}
}}
"""


async def keyed_create(
    client: httpx.AsyncClient, key: str, body: dict[str, Any] | None = None, user: str = "alice"
) -> httpx.Response:
    return await client.post(
        f"/api/{user}/tasks",
        json=body if body is not None else {"title": "Buy milk"},
        headers={"Idempotency-Key": key},
    )


async def task_count(client: httpx.AsyncClient, user: str = "alice") -> int:
    return len((await client.get(f"/api/{user}/tasks")).json())


async def age_keys(app: FastAPI, by: timedelta) -> None:
    """Make every stored key look `by` older than it is."""
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    # Computed here, not in SQL: SQLite has no timestamp arithmetic on this column.
    for user_id, key, created_at in await fetch_all(
        app, select(table.c.user_id, table.c.key, table.c.created_at)
    ):
        await execute(
            app,
            update(table)
            .where(table.c.user_id == user_id, table.c.key == key)
            .values(created_at=created_at - by),
        )


class TestRestIdempotencyKey:
    async def test_retry_returns_the_first_answer(self, client: httpx.AsyncClient) -> None:
        first = await keyed_create(client, "key-1")
        again = await keyed_create(client, "key-1")
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["etag"] == first.headers["etag"]
        assert await task_count(client) == 1

    async def test_different_keys_create_different_tasks(self, client: httpx.AsyncClient) -> None:
        first = await keyed_create(client, "key-1")
        second = await keyed_create(client, "key-2")
        assert first.json()["id"] != second.json()["id"]
        assert await task_count(client) == 2

    async def test_keys_are_per_user(self, client: httpx.AsyncClient) -> None:
        alice = await keyed_create(client, "shared", user="alice")
        bob = await keyed_create(client, "shared", user="bob")
        assert alice.json()["id"] != bob.json()["id"]
        assert bob.json()["user_id"] == "bob"

    async def test_same_key_with_another_body_is_400(self, client: httpx.AsyncClient) -> None:
        await keyed_create(client, "key-1", {"title": "Buy milk"})
        response = await keyed_create(client, "key-1", {"title": "Buy bread"})
        problem = assert_problem(response, 400, "ValidationError")
        assert "Idempotency-Key" in problem["detail"]
        assert "different request body" in problem["detail"]
        assert await task_count(client) == 1

    async def test_bodies_that_validate_alike_are_the_same_request(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await keyed_create(client, "key-1", {"title": "Buy milk"})
        # Stripped, and with a field that creates ignore: the same task would be created.
        again = await keyed_create(client, "key-1", {"title": "  Buy milk ", "completed": True})
        assert again.status_code == 201
        assert again.json() == first.json()

    async def test_replay_answers_as_created_even_after_changes(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await keyed_create(client, "key-1")
        task_url = first.headers["location"]
        await client.put(task_url, json={"title": "changed"})
        again = await keyed_create(client, "key-1")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert (await client.get(task_url)).json()["title"] == "changed"

    async def test_replay_after_delete_still_answers_and_creates_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        first = await keyed_create(client, "key-1")
        await client.delete(first.headers["location"])
        again = await keyed_create(client, "key-1")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert await task_count(client) == 0

    @pytest.mark.parametrize("key", ["", "k" * 256, "tab\tinside"])
    async def test_malformed_key_is_400(self, client: httpx.AsyncClient, key: str) -> None:
        response = await keyed_create(client, key)
        problem = assert_problem(response, 400, "ValidationError")
        assert {error["field"] for error in problem["errors"]} == {"idempotency_key"}
        assert await task_count(client) == 0

    async def test_longest_key_is_accepted(self, client: httpx.AsyncClient) -> None:
        response = await keyed_create(client, "k" * 255)
        assert response.status_code == 201
        task = response.json()
        assert (task["title"], task["user_id"], task["version"]) == ("Buy milk", "alice", 1)
        assert (await keyed_create(client, "k" * 255)).json() == task
        assert await task_count(client) == 1

    async def test_without_a_key_every_post_creates(self, client: httpx.AsyncClient) -> None:
        await client.post("/api/alice/tasks", json={"title": "x"})
        await client.post("/api/alice/tasks", json={"title": "x"})
        assert await task_count(client) == 2

    async def test_concurrent_requests_with_one_key_create_one_task(
        self, client: httpx.AsyncClient
    ) -> None:
        responses = await asyncio.gather(*(keyed_create(client, "burst") for _ in range(25)))
        assert {response.status_code for response in responses} == {201}
        assert len({response.json()["id"] for response in responses}) == 1
        assert await task_count(client) == 1


class TestGraphQLIdempotencyKey:
    async def test_retry_returns_the_first_task(self, client: httpx.AsyncClient) -> None:
        first = await graphql(client, CREATE, userId="alice", input={"title": "x"}, key="g-1")
        again = await graphql(client, CREATE, userId="alice", input={"title": "x"}, key="g-1")
        assert again["data"]["createTask"] == first["data"]["createTask"]
        assert await task_count(client) == 1

    async def test_same_key_with_another_input_is_bad_user_input(
        self, client: httpx.AsyncClient
    ) -> None:
        await graphql(client, CREATE, userId="alice", input={"title": "x"}, key="g-1")
        body = await graphql(client, CREATE, userId="alice", input={"title": "y"}, key="g-1")
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert await task_count(client) == 1

    @pytest.mark.parametrize("key", ["", "k" * 256, "ключ", "nul\x00", " padded", "padded "])
    async def test_malformed_key_is_bad_user_input(
        self, client: httpx.AsyncClient, key: str
    ) -> None:
        body = await graphql(client, CREATE, userId="alice", input={"title": "x"}, key=key)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert await task_count(client) == 0

    async def test_a_key_is_shared_by_both_faces(self, client: httpx.AsyncClient) -> None:
        rest = await keyed_create(client, "both", {"title": "x"})
        body = await graphql(client, CREATE, userId="alice", input={"title": "x"}, key="both")
        assert body["data"]["createTask"]["id"] == rest.json()["id"]

    async def test_concurrent_mutations_with_one_key_create_one_task(
        self, client: httpx.AsyncClient
    ) -> None:
        bodies = await asyncio.gather(
            *(
                graphql(client, CREATE, userId="alice", input={"title": "x"}, key="burst")
                for _ in range(25)
            )
        )
        assert all("errors" not in body for body in bodies), bodies
        assert len({body["data"]["createTask"]["id"] for body in bodies}) == 1
        assert await task_count(client) == 1


class TestExpiry:
    async def test_expired_key_creates_a_new_task(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        first = await keyed_create(client, "old")
        await age_keys(app, TTL)
        again = await keyed_create(client, "old", {"title": "another body is fine now"})
        assert again.status_code == 201
        assert again.json()["id"] != first.json()["id"]
        # ...and the key now answers with the new task.
        assert (await keyed_create(client, "old", {"title": "another body is fine now"})).json()[
            "id"
        ] == again.json()["id"]

    async def test_key_within_the_ttl_still_answers(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        first = await keyed_create(client, "recent")
        await age_keys(app, TTL - timedelta(minutes=5))
        assert (await keyed_create(client, "recent")).json()["id"] == first.json()["id"]

    async def test_keyed_create_purges_expired_keys_of_every_user(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        table = IdempotencyKey.__table__  # type: ignore[attr-defined]
        old = utcnow() - TTL - timedelta(hours=1)
        rows = [
            {
                "user_id": f"gone-{n}",
                "key": "k",
                "fingerprint": "0" * 64,
                "task_id": uuid.uuid4(),
                "response": "{}",
                "created_at": old,
            }
            for n in range(PURGE_BATCH + 5)
        ]
        await execute(app, insert(table).values(rows))
        await keyed_create(client, "fresh")
        remaining = await fetch_all(app, select(func.count()).select_from(table))
        # One bounded batch per keyed create: the rest goes with the next one.
        assert remaining[0][0] == 5 + 1
        await keyed_create(client, "fresh-2")
        assert (await fetch_all(app, select(table.c.key).order_by(table.c.key))) == [
            ("fresh",),
            ("fresh-2",),
        ]
