"""Concurrent writers on one task, and many creates at once, on both databases."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.factories import TASK_FIELDS, create_task, error_codes, graphql
from tests.tasks.test_versions import COMPLETE, UPDATE

pytestmark = pytest.mark.slow

CREATE = f"""
mutation Create($userId: String!, $input: CreateTaskInput!) {{
  createTask(userId: $userId, input: $input) {{ {TASK_FIELDS} }}
}}
"""
WRITERS = 50


async def stored(client: httpx.AsyncClient, task: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/alice/tasks/{task['id']}")).json()
    return body


class TestConcurrentWritesToOneTask:
    async def test_concurrent_completes_all_succeed_and_change_it_once(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create_task(client)
        bodies = await asyncio.gather(
            *(graphql(client, COMPLETE, userId="alice", id=task["id"]) for _ in range(WRITERS))
        )
        assert [error_codes(body) for body in bodies] == [[]] * WRITERS
        final = await stored(client, task)
        assert final["completed"] is True
        assert final["version"] == 2
        assert {body["data"]["completeTask"]["version"] for body in bodies} == {2}

    async def test_concurrent_updates_all_succeed_one_after_another(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create_task(client)
        titles = [f"title {n}" for n in range(WRITERS)]
        bodies = await asyncio.gather(
            *(
                graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": title})
                for title in titles
            )
        )
        assert [error_codes(body) for body in bodies] == [[]] * WRITERS
        answers = [body["data"]["updateTask"] for body in bodies]
        # Every write was applied on its own: each got its own version, none was lost.
        assert sorted(answer["version"] for answer in answers) == list(range(2, WRITERS + 2))
        final = await stored(client, task)
        assert final["version"] == WRITERS + 1
        last = next(answer for answer in answers if answer["version"] == WRITERS + 1)
        assert final["title"] == last["title"]

    async def test_concurrent_mixed_writes_leave_a_consistent_task(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create_task(client)
        calls = [
            graphql(client, COMPLETE, userId="alice", id=task["id"], completed=n % 4 == 0)
            if n % 2
            else graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": f"t{n}"})
            for n in range(WRITERS)
        ]
        bodies = await asyncio.gather(*calls)
        assert [error_codes(body) for body in bodies] == [[]] * WRITERS
        answers = [next(iter(body["data"].values())) for body in bodies]
        final = await stored(client, task)
        # The stored task is the answer of the write with the highest version, field for field.
        newest = max(answers, key=lambda answer: answer["version"])
        assert (final["title"], final["completed"], final["version"]) == (
            newest["title"],
            newest["completed"],
            newest["version"],
        )
        # Two answers with one version are the same state (a write that changed nothing).
        by_version: dict[int, tuple[str, bool]] = {}
        for answer in answers:
            state = (answer["title"], answer["completed"])
            assert by_version.setdefault(answer["version"], state) == state


class TestConcurrentWritersHoldingOneVersion:
    async def test_exactly_one_graphql_writer_wins(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        bodies = await asyncio.gather(
            *(
                graphql(
                    client, UPDATE, userId="alice", id=task["id"], input={"title": f"w{n}"}, v=1
                )
                for n in range(20)
            )
        )
        winners = [body for body in bodies if "errors" not in body]
        assert len(winners) == 1
        assert sorted(code for body in bodies for code in error_codes(body)) == ["CONFLICT"] * 19
        final = await stored(client, task)
        assert final["title"] == winners[0]["data"]["updateTask"]["title"]
        assert final["version"] == 2

    async def test_exactly_one_rest_writer_wins(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        etag = f'"{task["id"]}.1"'
        responses = await asyncio.gather(
            *(
                client.put(
                    f"/api/alice/tasks/{task['id']}",
                    json={"title": f"w{n}"},
                    headers={"If-Match": etag},
                )
                for n in range(20)
            )
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [412] * 19
        winner = next(response for response in responses if response.status_code == 200)
        assert await stored(client, task) == winner.json()

    async def test_exactly_one_completer_wins(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        bodies = await asyncio.gather(
            *(
                graphql(client, COMPLETE, userId="alice", id=task["id"], completed=n % 2 == 0, v=1)
                for n in range(20)
            )
        )
        # A writer that would change nothing at version 1 (completed=false) also "wins": it is
        # answered with the unchanged task, as long as it ran before the one real change.
        changed = [
            body
            for body in bodies
            if "errors" not in body and body["data"]["completeTask"]["version"] == 2
        ]
        assert len(changed) == 1
        assert all(error_codes(body) in ([], ["CONFLICT"]) for body in bodies)
        assert (await stored(client, task))["completed"] is True


class TestConcurrentCreates:
    async def test_200_concurrent_creates_all_appear_once(self, client: httpx.AsyncClient) -> None:
        async def rest(n: int) -> str:
            response = await client.post("/api/crowd/tasks", json={"title": f"rest {n}"})
            assert response.status_code == 201, response.text
            task_id: str = response.json()["id"]
            return task_id

        async def gql(n: int) -> str:
            body = await graphql(client, CREATE, userId="crowd", input={"title": f"gql {n}"})
            assert "errors" not in body, body
            task_id: str = body["data"]["createTask"]["id"]
            return task_id

        ids = await asyncio.gather(*(rest(n) if n % 2 else gql(n) for n in range(200)))
        assert len(set(ids)) == 200
        listed = [task["id"] for task in (await client.get("/api/crowd/tasks")).json()]
        assert sorted(listed) == sorted(ids)
