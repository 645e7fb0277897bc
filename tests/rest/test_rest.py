"""The REST facade at /api/{user_id}/tasks, row by row of the contract, on both databases."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import create_task

TASK_KEYS = {
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "created_at",
    "updated_at",
    "version",
}
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def assert_problem(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error_type"] == error_type
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def field_names(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}


def utc(timestamp: str) -> datetime:
    parsed = datetime.fromisoformat(timestamp)
    assert parsed.utcoffset() == timedelta(0)
    return parsed


class TestCreate:
    async def test_returns_201_the_task_and_its_location(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/alice/tasks", json={"title": "Buy milk", "description": "2 litres"}
        )
        assert response.status_code == 201
        task = response.json()
        assert set(task) == TASK_KEYS
        assert response.headers["location"] == f"/api/alice/tasks/{task['id']}"
        assert uuid.UUID(task["id"])
        assert task["user_id"] == "alice"
        assert task["title"] == "Buy milk"
        assert task["description"] == "2 litres"
        assert task["completed"] is False
        assert utc(task["created_at"]) == utc(task["updated_at"])

    async def test_location_escapes_the_user_id(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/a%20b/tasks", json={"title": "x"})
        assert response.status_code == 201
        assert response.headers["location"] == f"/api/a%20b/tasks/{response.json()['id']}"
        assert (await client.get(response.headers["location"])).json()["user_id"] == "a b"

    async def test_title_is_stripped(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, title="  \t Buy milk \n ")
        assert task["title"] == "Buy milk"

    async def test_description_is_optional(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        assert task["description"] is None

    async def test_server_fields_in_the_body_are_ignored(self, client: httpx.AsyncClient) -> None:
        forged = {
            "id": MISSING_ID,
            "user_id": "mallory",
            "completed": True,
            "created_at": "2000-01-01T00:00:00+00:00",
            "updated_at": "2000-01-01T00:00:00+00:00",
        }
        response = await client.post("/api/alice/tasks", json={"title": "x", **forged})
        task = response.json()
        assert task["id"] != MISSING_ID
        assert task["user_id"] == "alice"
        assert task["completed"] is False
        assert utc(task["created_at"]).year > 2000
        assert (await client.get("/api/mallory/tasks")).json() == []

    @pytest.mark.parametrize(
        "text",
        [
            "'; DROP TABLE tasks; --",
            "Robert'); DELETE FROM tasks WHERE ('1'='1",
            "🚀 émoji ✓ 漢字",
            "<script>alert(1)</script>",
            "%_\\",
        ],
    )
    async def test_odd_input_is_stored_literally(
        self, client: httpx.AsyncClient, text: str
    ) -> None:
        task = await create_task(client, title=text, description=text)
        stored = (await client.get(f"/api/alice/tasks/{task['id']}")).json()
        assert stored["title"] == text
        assert stored["description"] == text


class TestList:
    async def test_empty_for_a_new_user(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/nobody/tasks")
        assert response.status_code == 200
        assert response.json() == []

    async def test_oldest_first(self, client: httpx.AsyncClient) -> None:
        created = [await create_task(client, title=f"task {n}") for n in range(5)]
        listed = (await client.get("/api/alice/tasks")).json()
        assert [task["id"] for task in listed] == [task["id"] for task in created]
        assert listed == created

    async def test_only_the_users_own_tasks(self, client: httpx.AsyncClient) -> None:
        mine = await create_task(client, "alice")
        await create_task(client, "bob")
        assert (await client.get("/api/alice/tasks")).json() == [mine]


class TestGet:
    async def test_returns_the_task(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.get(f"/api/alice/tasks/{task['id']}")
        assert response.status_code == 200
        assert response.json() == task

    @pytest.mark.parametrize("task_id", [MISSING_ID, "not-a-uuid", "1", "%00"])
    async def test_unknown_or_malformed_id_is_not_found(
        self, client: httpx.AsyncClient, task_id: str
    ) -> None:
        response = await client.get(f"/api/alice/tasks/{task_id}")
        body = assert_problem(response, 404, "NotFoundError")
        assert body["detail"] == "Task not found"


class TestUpdate:
    async def test_absent_field_is_kept(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, description="keep me")
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "New"})
        assert response.status_code == 200
        updated = response.json()
        assert updated["title"] == "New"
        assert updated["description"] == "keep me"
        assert updated["completed"] is False
        assert updated["created_at"] == task["created_at"]
        assert utc(updated["updated_at"]) > utc(task["updated_at"])

    async def test_whole_task_is_accepted(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        whole = {**task, "title": "Whole", "description": "all", "completed": True}
        updated = (await client.put(f"/api/alice/tasks/{task['id']}", json=whole)).json()
        assert (updated["title"], updated["description"], updated["completed"]) == (
            "Whole",
            "all",
            True,
        )
        assert updated["id"] == task["id"]
        assert updated["created_at"] == task["created_at"]

    async def test_null_description_clears_it(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, description="old")
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={"description": None})
        assert response.json()["description"] is None
        assert response.json()["title"] == task["title"]

    async def test_null_title_is_invalid(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={"title": None})
        body = assert_problem(response, 400, "ValidationError")
        assert field_names(body) == {"title"}
        assert (await client.get(f"/api/alice/tasks/{task['id']}")).json() == task

    async def test_completed_must_be_a_boolean(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={"completed": "yes"})
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"completed"}

    async def test_title_is_stripped(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={"title": "  x  "})
        assert response.json()["title"] == "x"

    async def test_empty_body_changes_nothing(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.put(f"/api/alice/tasks/{task['id']}", json={})
        assert response.status_code == 200
        assert response.json() == task

    async def test_server_fields_are_ignored(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        forged = {"id": MISSING_ID, "user_id": "mallory", "created_at": "2000-01-01T00:00:00Z"}
        updated = (await client.put(f"/api/alice/tasks/{task['id']}", json=forged)).json()
        assert updated == task

    async def test_unknown_task_is_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.put(f"/api/alice/tasks/{MISSING_ID}", json={"title": "x"})
        assert_problem(response, 404, "NotFoundError")


class TestComplete:
    async def test_no_body_marks_completed(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.patch(f"/api/alice/tasks/{task['id']}/complete")
        assert response.status_code == 200
        assert response.json()["completed"] is True
        assert utc(response.json()["updated_at"]) > utc(task["updated_at"])

    async def test_is_idempotent(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        first = await client.patch(f"/api/alice/tasks/{task['id']}/complete")
        second = await client.patch(f"/api/alice/tasks/{task['id']}/complete")
        assert second.status_code == 200
        assert second.json() == first.json()

    async def test_completed_false_reopens(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        await client.patch(f"/api/alice/tasks/{task['id']}/complete")
        response = await client.patch(
            f"/api/alice/tasks/{task['id']}/complete", json={"completed": False}
        )
        assert response.json()["completed"] is False

    async def test_empty_object_marks_completed(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.patch(f"/api/alice/tasks/{task['id']}/complete", json={})
        assert response.json()["completed"] is True

    async def test_wrongly_typed_completed_is_invalid(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.patch(
            f"/api/alice/tasks/{task['id']}/complete", json={"completed": "no"}
        )
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"completed"}
        assert (await client.get(f"/api/alice/tasks/{task['id']}")).json() == task

    async def test_unknown_task_is_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.patch(f"/api/alice/tasks/{MISSING_ID}/complete")
        assert_problem(response, 404, "NotFoundError")


class TestDelete:
    async def test_returns_204_with_an_empty_body(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.delete(f"/api/alice/tasks/{task['id']}")
        assert response.status_code == 204
        assert response.content == b""
        assert_problem(await client.get(f"/api/alice/tasks/{task['id']}"), 404, "NotFoundError")
        assert (await client.get("/api/alice/tasks")).json() == []

    async def test_second_delete_is_not_found(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        await client.delete(f"/api/alice/tasks/{task['id']}")
        response = await client.delete(f"/api/alice/tasks/{task['id']}")
        assert_problem(response, 404, "NotFoundError")


class TestUserIsolation:
    """Another user's task is answered exactly like a task that does not exist."""

    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [
            ("GET", "", None),
            ("PUT", "", {"title": "hijacked", "completed": True}),
            ("PATCH", "/complete", None),
            ("DELETE", "", None),
        ],
    )
    async def test_other_users_task_is_not_found_and_unchanged(
        self,
        client: httpx.AsyncClient,
        method: str,
        suffix: str,
        body: dict[str, Any] | None,
    ) -> None:
        task = await create_task(client, "alice")
        foreign = await client.request(
            method, f"/api/mallory/tasks/{task['id']}{suffix}", json=body
        )
        missing = await client.request(
            method, f"/api/mallory/tasks/{MISSING_ID}{suffix}", json=body
        )
        assert_problem(foreign, 404, "NotFoundError")
        # Alike but for each request's own id.
        assert foreign.json().pop("request_id") != missing.json().pop("request_id")
        assert without_request_id(foreign.json()) == without_request_id(missing.json())
        assert (await client.get(f"/api/alice/tasks/{task['id']}")).json() == task


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"title": ""}, "title"),
            ({"title": "   "}, "title"),
            ({"title": "x" * 501}, "title"),
            ({"title": "a\x00b"}, "title"),
            ({"title": "ok", "description": "x" * 10_001}, "description"),
            ({"title": "ok", "description": "nul\x00"}, "description"),
            ({"title": 42}, "title"),
            ({"title": ["x"]}, "title"),
            ({"description": "no title"}, "title"),
            ({"title": None}, "title"),
        ],
    )
    async def test_invalid_create_is_400_with_the_field(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        response = await client.post("/api/alice/tasks", json=body)
        problem = assert_problem(response, 400, "ValidationError")
        assert field in field_names(problem)
        assert (await client.get("/api/alice/tasks")).json() == []

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"title": ""}, "title"),
            ({"title": "x" * 501}, "title"),
            ({"description": "x" * 10_001}, "description"),
            ({"description": "\x00"}, "description"),
        ],
    )
    async def test_invalid_update_is_400_and_changes_nothing(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        task = await create_task(client)
        response = await client.put(f"/api/alice/tasks/{task['id']}", json=body)
        assert field in field_names(assert_problem(response, 400, "ValidationError"))
        assert (await client.get(f"/api/alice/tasks/{task['id']}")).json() == task

    async def test_boundary_lengths_are_accepted(self, client: httpx.AsyncClient) -> None:
        user_id = "u" * 255
        task = await create_task(client, user_id, title="t" * 500, description="d" * 10_000)
        stored = (await client.get(f"/api/{user_id}/tasks/{task['id']}")).json()
        assert len(stored["title"]) == 500
        assert len(stored["description"]) == 10_000
        assert stored["user_id"] == user_id

    async def test_emoji_count_as_one_character(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, title="🚀" * 500)
        assert task["title"] == "🚀" * 500

    @pytest.mark.parametrize("path", ["", "/" + MISSING_ID])
    async def test_too_long_user_id_is_400(self, client: httpx.AsyncClient, path: str) -> None:
        response = await client.get(f"/api/{'u' * 256}/tasks{path}")
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"user_id"}

    async def test_too_long_user_id_cannot_create(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"/api/{'u' * 256}/tasks", json={"title": "x"})
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"user_id"}

    async def test_nul_in_user_id_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/a%00b/tasks", json={"title": "x"})
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"user_id"}

    @pytest.mark.parametrize(
        "content", [b"{", b'{"title": "x",}', b"not json", b"\xff\xfe", b"[1, 2]", b'"title"']
    )
    async def test_malformed_body_is_400(self, client: httpx.AsyncClient, content: bytes) -> None:
        response = await client.post(
            "/api/alice/tasks", content=content, headers={"content-type": "application/json"}
        )
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"body"}
        assert (await client.get("/api/alice/tasks")).json() == []

    async def test_missing_body_is_400(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/api/alice/tasks"), 400, "ValidationError")

    async def test_no_422_ever(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client)
        response = await client.put(f"/api/alice/tasks/{task['id']}", content=b"[]")
        assert response.status_code == 400
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"body"}
        assert (await client.get(f"/api/alice/tasks/{task['id']}")).json() == task


class TestOtherErrors:
    async def test_unknown_route_under_api_is_a_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/alice/nothing"), 404, "NotFoundError")

    async def test_wrong_method_is_a_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"/api/alice/tasks/{MISSING_ID}", json={})
        assert_problem(response, 405, "MethodNotAllowedError")
        assert "allow" in response.headers


class TestHealth:
    async def test_ok_when_the_database_answers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "request_id"}
