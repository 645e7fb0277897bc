"""Optimistic concurrency: versions, ETags, If-Match / If-None-Match and expectedVersion."""

from typing import Any

import httpx
import pytest

from tests.factories import TASK_FIELDS, create_task, error_codes, graphql
from tests.rest.test_rest import MISSING_ID, assert_problem

UPDATE = f"""
mutation Update($userId: String!, $id: ID!, $input: UpdateTaskInput!, $v: Int) {{
  updateTask(userId: $userId, id: $id, input: $input, expectedVersion: $v) {{ {TASK_FIELDS} }}
}}
"""
COMPLETE = f"""
mutation Complete($userId: String!, $id: ID!, $completed: Boolean! = true, $v: Int) {{
  completeTask(userId: $userId, id: $id, completed: $completed, expectedVersion: $v) {{
    {TASK_FIELDS}
  }}
}}
"""
DELETE = f"""
mutation Delete($userId: String!, $id: ID!, $v: Int) {{
  deleteTask(userId: $userId, id: $id, expectedVersion: $v) {{ {TASK_FIELDS} }}
}}
"""


def tag(task: dict[str, Any]) -> str:
    return f'"{task["id"]}.{task["version"]}"'


async def read(client: httpx.AsyncClient, task: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/api/{task['user_id']}/tasks/{task['id']}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestVersion:
    async def test_new_task_is_version_1(self, client: httpx.AsyncClient) -> None:
        assert (await create_task(client))["version"] == 1

    async def test_every_change_adds_one(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        url = f"/api/alice/tasks/{task['id']}"
        assert (await client.put(url, json={"title": "a"})).json()["version"] == 2
        assert (await client.patch(f"{url}/complete")).json()["version"] == 3
        assert (await client.put(url, json={"description": "d"})).json()["version"] == 4

    async def test_write_that_changes_nothing_keeps_the_version(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create_task(client, title="same")
        url = f"/api/alice/tasks/{task['id']}"
        first = (await client.patch(f"{url}/complete")).json()
        again = (await client.patch(f"{url}/complete")).json()
        same_title = (await client.put(url, json={"title": "same"})).json()
        assert first["version"] == again["version"] == same_title["version"] == 2
        assert again["updated_at"] == first["updated_at"]

    async def test_graphql_task_has_the_version(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        body = await graphql(client, COMPLETE, userId="alice", id=task["id"])
        assert body["data"]["completeTask"]["version"] == 2


class TestETag:
    @pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
    async def test_single_task_answers_carry_a_strong_etag(
        self, client: httpx.AsyncClient, method: str
    ) -> None:
        task = await create_task(client)
        suffix = "/complete" if method == "PATCH" else ""
        body = {"title": "changed"} if method == "PUT" else None
        response = await client.request(method, f"/api/alice/tasks/{task['id']}{suffix}", json=body)
        assert response.status_code == 200
        assert response.headers["etag"] == tag(response.json())
        assert not response.headers["etag"].startswith("W/")

    async def test_create_carries_the_etag(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/alice/tasks", json={"title": "x"})
        assert response.headers["etag"] == f'"{response.json()["id"]}.1"'
        assert response.status_code == 201
        assert response.json()["version"] == 1
        assert response.headers["etag"] == tag(response.json())

    async def test_etag_changes_with_the_task(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        before = (await client.get(f"/api/alice/tasks/{task['id']}")).headers["etag"]
        written = await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "new"})
        read_back = await client.get(f"/api/alice/tasks/{task['id']}")
        after = read_back.headers["etag"]
        assert before != after
        assert before == tag(task)
        assert read_back.json() == written.json()
        assert read_back.json()["version"] == task["version"] + 1
        assert read_back.json()["title"] == "new"
        assert after == written.headers["etag"] == f'"{task["id"]}.{read_back.json()["version"]}"'


class TestIfMatch:
    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [("PUT", "", {"title": "mine"}), ("PATCH", "/complete", None), ("DELETE", "", None)],
    )
    async def test_current_etag_lets_the_write_through(
        self, client: httpx.AsyncClient, method: str, suffix: str, body: dict[str, Any] | None
    ) -> None:
        task = await create_task(client)
        response = await client.request(
            method,
            f"/api/alice/tasks/{task['id']}{suffix}",
            json=body,
            headers={"If-Match": tag(task)},
        )
        assert response.status_code in {200, 204}, response.text
        if method == "DELETE":
            assert response.status_code == 204
            assert response.content == b""
            missing = await client.get(f"/api/alice/tasks/{task['id']}")
            assert_problem(missing, 404, "NotFoundError")
            return
        assert response.status_code == 200
        written = response.json()
        assert written["id"] == task["id"]
        assert written["version"] == task["version"] + 1
        assert written["title"] == (body or task)["title"]
        assert written["completed"] is (method == "PATCH")
        assert response.headers["etag"] != tag(task)
        assert response.headers["etag"] == f'"{task["id"]}.{written["version"]}"'
        assert await read(client, task) == written

    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [("PUT", "", {"title": "mine"}), ("PATCH", "/complete", None), ("DELETE", "", None)],
    )
    async def test_stale_etag_is_412_and_changes_nothing(
        self, client: httpx.AsyncClient, method: str, suffix: str, body: dict[str, Any] | None
    ) -> None:
        task = await create_task(client)
        stale = tag(task)
        current = await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "theirs"})
        response = await client.request(
            method,
            f"/api/alice/tasks/{task['id']}{suffix}",
            json=body,
            headers={"If-Match": stale},
        )
        assert_problem(response, 412, "PreconditionFailedError")
        assert await read(client, task) == current.json()

    async def test_star_matches_any_existing_task(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "v2"})
        response = await client.put(
            f"/api/alice/tasks/{task['id']}", json={"title": "v3"}, headers={"If-Match": "*"}
        )
        assert response.json()["version"] == 3

    async def test_any_listed_current_etag_matches(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        other = f'"{MISSING_ID}.1"'
        response = await client.put(
            f"/api/alice/tasks/{task['id']}",
            json={"title": "x"},
            headers={"If-Match": f"{other}, {tag(task)}"},
        )
        assert response.status_code == 200
        written = response.json()
        assert (written["id"], written["title"], written["version"]) == (task["id"], "x", 2)
        assert response.headers["etag"] == f'"{task["id"]}.2"' != tag(task)

    @pytest.mark.parametrize("header", ["W/{tag}", '"garbage"', "no-quotes", '""'])
    async def test_weak_or_foreign_tag_never_matches(
        self, client: httpx.AsyncClient, header: str
    ) -> None:
        task = await create_task(client)
        response = await client.put(
            f"/api/alice/tasks/{task['id']}",
            json={"title": "x"},
            headers={"If-Match": header.format(tag=tag(task))},
        )
        assert_problem(response, 412, "PreconditionFailedError")
        assert await read(client, task) == task

    async def test_etag_of_another_task_does_not_match(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        other = await create_task(client)
        response = await client.delete(
            f"/api/alice/tasks/{task['id']}", headers={"If-Match": tag(other)}
        )
        assert_problem(response, 412, "PreconditionFailedError")

    async def test_missing_task_is_404_not_412(self, client: httpx.AsyncClient) -> None:
        response = await client.put(
            f"/api/alice/tasks/{MISSING_ID}",
            json={"title": "x"},
            headers={"If-Match": f'"{MISSING_ID}.1"'},
        )
        assert_problem(response, 404, "NotFoundError")

    async def test_other_users_task_is_404_not_412(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, "alice")
        response = await client.delete(
            f"/api/mallory/tasks/{task['id']}", headers={"If-Match": '"stale.1"'}
        )
        assert_problem(response, 404, "NotFoundError")
        assert await read(client, task) == task

    async def test_without_if_match_the_last_write_wins(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "first"})
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "second"})
        assert response.json()["title"] == "second"


class TestIfNoneMatch:
    async def test_current_etag_is_304_without_a_body(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.get(
            f"/api/alice/tasks/{task['id']}", headers={"If-None-Match": tag(task)}
        )
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == tag(task)

    async def test_weak_form_of_the_current_etag_is_304(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.get(
            f"/api/alice/tasks/{task['id']}", headers={"If-None-Match": f'"x", W/{tag(task)}'}
        )
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == tag(task)

    async def test_changed_task_is_200(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        await client.patch(f"/api/alice/tasks/{task['id']}/complete")
        response = await client.get(
            f"/api/alice/tasks/{task['id']}", headers={"If-None-Match": tag(task)}
        )
        assert response.status_code == 200
        assert response.json()["completed"] is True
        assert response.json()["version"] == 2
        assert response.headers["etag"] == f'"{task["id"]}.2"' != tag(task)

    async def test_missing_task_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            f"/api/alice/tasks/{MISSING_ID}", headers={"If-None-Match": "*"}
        )
        assert_problem(response, 404, "NotFoundError")


class TestExpectedVersion:
    async def test_current_version_lets_the_update_through(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        body = await graphql(
            client, UPDATE, userId="alice", id=task["id"], input={"title": "new"}, v=1
        )
        assert body["data"]["updateTask"]["title"] == "new"
        assert body["data"]["updateTask"]["version"] == 2

    @pytest.mark.parametrize(
        ("mutation", "variables"),
        [
            (UPDATE, {"input": {"title": "mine"}}),
            (COMPLETE, {}),
            (DELETE, {}),
        ],
    )
    async def test_stale_version_is_conflict_and_changes_nothing(
        self, client: httpx.AsyncClient, mutation: str, variables: dict[str, Any]
    ) -> None:
        task = await create_task(client)
        current = (
            await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "theirs"})
        ).json()
        body = await graphql(client, mutation, userId="alice", id=task["id"], v=1, **variables)
        assert error_codes(body) == ["CONFLICT"]
        assert body["data"] is None
        assert await read(client, task) == current

    async def test_stale_version_of_a_missing_task_is_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        body = await graphql(client, DELETE, userId="alice", id=MISSING_ID, v=1)
        assert error_codes(body) == ["NOT_FOUND"]

    async def test_complete_without_change_at_current_version_succeeds(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create_task(client)
        first = await graphql(client, COMPLETE, userId="alice", id=task["id"], v=1)
        again = await graphql(client, COMPLETE, userId="alice", id=task["id"], v=2)
        assert first["data"]["completeTask"] == again["data"]["completeTask"]

    async def test_delete_at_current_version(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        body = await graphql(client, DELETE, userId="alice", id=task["id"], v=1)
        assert body["data"]["deleteTask"]["id"] == task["id"]
        gone = await client.get(f"/api/alice/tasks/{task['id']}")
        assert gone.status_code == 404
        assert assert_problem(gone, 404, "NotFoundError")["detail"] == "Task not found"
