"""The GraphQL face of the contract: every query, mutation and error code, on both databases."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import TASK_FIELDS, create_task, error_codes, graphql

CREATE = f"""
mutation Create($userId: String!, $input: CreateTaskInput!) {{
  createTask(userId: $userId, input: $input) {{ {TASK_FIELDS} }}
}}
"""
TASKS = f"""
query Tasks($userId: String!) {{
  tasks(userId: $userId) {{ {TASK_FIELDS} }}
}}
"""
TASK = f"""
query Task($userId: String!, $id: ID!) {{
  task(userId: $userId, id: $id) {{ {TASK_FIELDS} }}
}}
"""
UPDATE = f"""
mutation Update($userId: String!, $id: ID!, $input: UpdateTaskInput!) {{
  updateTask(userId: $userId, id: $id, input: $input) {{ {TASK_FIELDS} }}
}}
"""
COMPLETE_DEFAULT = f"""
mutation Complete($userId: String!, $id: ID!) {{
  completeTask(userId: $userId, id: $id) {{ {TASK_FIELDS} }}
}}
"""
COMPLETE = f"""
mutation Complete($userId: String!, $id: ID!, $completed: Boolean!) {{
  completeTask(userId: $userId, id: $id, completed: $completed) {{ {TASK_FIELDS} }}
}}
"""
DELETE = f"""
mutation Delete($userId: String!, $id: ID!) {{
  deleteTask(userId: $userId, id: $id) {{ {TASK_FIELDS} }}
}}
"""

NOT_A_UUID = "not-a-uuid"


# --- helpers -------------------------------------------------------------------------------


async def gql_create(
    client: httpx.AsyncClient, user_id: str = "alice", title: str = "Buy milk", **fields: Any
) -> dict[str, Any]:
    """Create a task through GraphQL and return it (GraphQL field names)."""
    body = await graphql(client, CREATE, userId=user_id, input={"title": title, **fields})
    assert "errors" not in body, body
    task: dict[str, Any] = body["data"]["createTask"]
    return task


async def gql_task(client: httpx.AsyncClient, user_id: str, task_id: str) -> dict[str, Any] | None:
    """The `task` query's answer, asserting it raised no error."""
    body = await graphql(client, TASK, userId=user_id, id=task_id)
    assert "errors" not in body, body
    task: dict[str, Any] | None = body["data"]["task"]
    return task


async def gql_tasks(client: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    body = await graphql(client, TASKS, userId=user_id)
    assert "errors" not in body, body
    tasks: list[dict[str, Any]] = body["data"]["tasks"]
    return tasks


def utc_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp and check that it carries a UTC offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def assert_single_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    """Exactly one error, with `code`; returns it."""
    assert error_codes(body) == [code], body
    error: dict[str, Any] = body["errors"][0]
    return error


def assert_failed_with(body: dict[str, Any], code: str) -> dict[str, Any]:
    """A failed mutation: one error with `code` and no data (mutations return `Task!`)."""
    error = assert_single_error(body, code)
    assert body["data"] is None, body
    return error


# --- createTask ----------------------------------------------------------------------------


class TestCreateTask:
    async def test_returns_all_seven_fields(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, "alice", "Buy milk", description="Two litres")
        assert set(task) == set(TASK_FIELDS.split())
        assert uuid.UUID(task["id"])
        assert task["userId"] == "alice"
        assert task["title"] == "Buy milk"
        assert task["description"] == "Two litres"

    async def test_title_is_stripped(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, title="  \t Buy milk \n ")
        assert task["title"] == "Buy milk"

    async def test_new_task_is_not_completed(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        assert task["completed"] is False

    async def test_created_at_equals_updated_at(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        assert task["createdAt"] == task["updatedAt"]

    async def test_timestamps_are_iso_8601_with_utc_offset(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        utc_timestamp(task["createdAt"])
        utc_timestamp(task["updatedAt"])

    async def test_created_task_is_stored(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, description="Two litres")
        assert await gql_task(client, "alice", task["id"]) == task

    async def test_description_is_optional(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        assert task["description"] is None

    async def test_whitespace_only_title_is_rejected(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, CREATE, userId="alice", input={"title": "  \t\n  "})
        assert_failed_with(body, "BAD_USER_INPUT")
        assert await gql_tasks(client, "alice") == []

    async def test_title_of_500_characters_is_accepted(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, title="t" * 500)
        assert task["title"] == "t" * 500

    async def test_title_of_501_characters_is_rejected(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, CREATE, userId="alice", input={"title": "t" * 501})
        assert_failed_with(body, "BAD_USER_INPUT")
        assert await gql_tasks(client, "alice") == []

    async def test_description_of_10000_characters_is_accepted(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await gql_create(client, description="d" * 10_000)
        assert task["description"] == "d" * 10_000

    async def test_description_of_10001_characters_is_rejected(
        self, client: httpx.AsyncClient
    ) -> None:
        body = await graphql(
            client, CREATE, userId="alice", input={"title": "Buy milk", "description": "d" * 10_001}
        )
        assert_failed_with(body, "BAD_USER_INPUT")
        assert await gql_tasks(client, "alice") == []

    async def test_user_id_of_255_characters_is_accepted(self, client: httpx.AsyncClient) -> None:
        user_id = "u" * 255
        task = await gql_create(client, user_id)
        assert task["userId"] == user_id
        assert await gql_tasks(client, user_id) == [task]

    async def test_user_id_of_256_characters_is_rejected(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, CREATE, userId="u" * 256, input={"title": "Buy milk"})
        assert_failed_with(body, "BAD_USER_INPUT")

    @pytest.mark.parametrize("field", ["title", "description", "userId"])
    async def test_nul_character_is_rejected(self, client: httpx.AsyncClient, field: str) -> None:
        values = {"userId": "alice", "title": "Buy milk", "description": "Two litres"}
        values[field] = "before\x00after"
        body = await graphql(
            client,
            CREATE,
            userId=values["userId"],
            input={"title": values["title"], "description": values["description"]},
        )
        assert_failed_with(body, "BAD_USER_INPUT")
        assert await gql_tasks(client, "alice") == []

    async def test_sql_fragments_are_stored_literally(self, client: httpx.AsyncClient) -> None:
        user_id = "bob' OR '1'='1"
        title = "Robert'); DROP TABLE tasks;--"
        description = "1; DELETE FROM tasks WHERE '' = ''; -- \" % _ \\"
        other = await gql_create(client, "alice")
        task = await gql_create(client, user_id, title, description=description)
        assert (task["userId"], task["title"], task["description"]) == (
            user_id,
            title,
            description,
        )
        assert await gql_tasks(client, user_id) == [task]
        assert await gql_tasks(client, "alice") == [other]

    async def test_emoji_are_stored_literally(self, client: httpx.AsyncClient) -> None:
        user_id = "użytkownik-🦊"
        title = "🚀 Launch 👩🏽‍💻 ünïcödé"
        description = "🎉" * 100
        task = await gql_create(client, user_id, title, description=description)
        assert (task["userId"], task["title"], task["description"]) == (
            user_id,
            title,
            description,
        )
        assert await gql_task(client, user_id, task["id"]) == task


# --- tasks(userId) -------------------------------------------------------------------------


class TestTasksQuery:
    async def test_oldest_first(self, client: httpx.AsyncClient) -> None:
        created = [await gql_create(client, title=f"Task {number}") for number in range(5)]
        tasks = await gql_tasks(client, "alice")
        assert [task["id"] for task in tasks] == [task["id"] for task in created]
        keys = [(utc_timestamp(task["createdAt"]), uuid.UUID(task["id"])) for task in tasks]
        assert keys == sorted(keys)

    async def test_only_that_users_tasks(self, client: httpx.AsyncClient) -> None:
        mine = await gql_create(client, "alice", "Mine")
        await gql_create(client, "bob", "Bob's")
        await gql_create(client, "alice2", "Prefix lookalike")
        assert await gql_tasks(client, "alice") == [mine]

    async def test_unknown_user_gets_empty_list(self, client: httpx.AsyncClient) -> None:
        await gql_create(client, "alice")
        assert await gql_tasks(client, "nobody") == []

    async def test_several_query_fields_in_one_operation(self, client: httpx.AsyncClient) -> None:
        # GraphQL resolves query fields concurrently; each must still get its answer.
        alice = await gql_create(client, "alice", "Alice's")
        bob = await gql_create(client, "bob", "Bob's")
        query = """
        query Several($alice: String!, $bob: String!, $id: ID!) {
          mine: tasks(userId: $alice) { id }
          theirs: tasks(userId: $bob) { id }
          one: task(userId: $alice, id: $id) { id }
        }
        """
        body = await graphql(client, query, alice="alice", bob="bob", id=alice["id"])
        assert "errors" not in body, body
        assert body["data"] == {
            "mine": [{"id": alice["id"]}],
            "theirs": [{"id": bob["id"]}],
            "one": {"id": alice["id"]},
        }


# --- task(userId, id) ----------------------------------------------------------------------


class TestTaskQuery:
    async def test_found(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, description="Two litres")
        assert await gql_task(client, "alice", task["id"]) == task

    async def test_task_created_through_rest_is_found(self, client: httpx.AsyncClient) -> None:
        rest = await create_task(client, "alice", "Buy milk", description="Two litres")
        task = await gql_task(client, "alice", rest["id"])
        assert task is not None
        assert task["title"] == "Buy milk"
        assert task["description"] == "Two litres"
        assert utc_timestamp(task["createdAt"]) == utc_timestamp(rest["created_at"])

    async def test_another_users_task_is_null(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, "alice")
        assert await gql_task(client, "bob", task["id"]) is None

    async def test_nonexistent_uuid_is_null(self, client: httpx.AsyncClient) -> None:
        await gql_create(client, "alice")
        assert await gql_task(client, "alice", str(uuid.uuid4())) is None

    async def test_non_uuid_id_is_null(self, client: httpx.AsyncClient) -> None:
        await gql_create(client, "alice")
        assert await gql_task(client, "alice", NOT_A_UUID) is None


# --- updateTask ----------------------------------------------------------------------------


class TestUpdateTask:
    async def test_absent_field_is_kept(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, title="Buy milk", description="Two litres")
        body = await graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": "Tea"})
        assert "errors" not in body, body
        updated = body["data"]["updateTask"]
        assert updated["title"] == "Tea"
        assert updated["description"] == "Two litres"
        assert updated["completed"] is False
        assert await gql_task(client, "alice", task["id"]) == updated

    async def test_description_null_clears_it(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, description="Two litres")
        body = await graphql(
            client, UPDATE, userId="alice", id=task["id"], input={"description": None}
        )
        assert "errors" not in body, body
        updated = body["data"]["updateTask"]
        assert updated["description"] is None
        assert updated["title"] == task["title"]
        assert await gql_task(client, "alice", task["id"]) == updated

    async def test_title_null_is_rejected(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": None})
        assert_failed_with(body, "BAD_USER_INPUT")
        assert await gql_task(client, "alice", task["id"]) == task

    async def test_title_out_of_range_is_rejected(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        for title in ["   ", "t" * 501, "nul\x00"]:
            body = await graphql(
                client, UPDATE, userId="alice", id=task["id"], input={"title": title}
            )
            assert_failed_with(body, "BAD_USER_INPUT")
        assert await gql_task(client, "alice", task["id"]) == task

    async def test_title_is_stripped(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(
            client, UPDATE, userId="alice", id=task["id"], input={"title": "  Tea  "}
        )
        assert "errors" not in body, body
        assert body["data"]["updateTask"]["title"] == "Tea"

    async def test_completed_can_be_set(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(
            client, UPDATE, userId="alice", id=task["id"], input={"completed": True}
        )
        assert "errors" not in body, body
        updated = body["data"]["updateTask"]
        assert updated["completed"] is True
        assert updated["title"] == task["title"]
        assert await gql_task(client, "alice", task["id"]) == updated

    async def test_all_fields_at_once(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        changes = {"title": "Tea", "description": "Green", "completed": True}
        body = await graphql(client, UPDATE, userId="alice", id=task["id"], input=changes)
        assert "errors" not in body, body
        updated = body["data"]["updateTask"]
        assert {name: updated[name] for name in changes} == changes
        assert (updated["id"], updated["userId"]) == (task["id"], "alice")

    async def test_real_change_advances_updated_at(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": "Tea"})
        assert "errors" not in body, body
        updated = body["data"]["updateTask"]
        assert utc_timestamp(updated["updatedAt"]) > utc_timestamp(task["updatedAt"])

    async def test_created_at_is_unchanged(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": "Tea"})
        assert "errors" not in body, body
        assert body["data"]["updateTask"]["createdAt"] == task["createdAt"]

    async def test_another_users_task_is_not_found_and_unchanged(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await gql_create(client, "alice", description="Two litres")
        body = await graphql(
            client,
            UPDATE,
            userId="bob",
            id=task["id"],
            input={"title": "Hijacked", "description": None, "completed": True},
        )
        assert_failed_with(body, "NOT_FOUND")
        assert await gql_task(client, "alice", task["id"]) == task
        response = await client.get(f"/api/alice/tasks/{task['id']}")
        assert response.status_code == 200
        assert response.json()["title"] == task["title"]

    async def test_nonexistent_uuid_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await graphql(
            client, UPDATE, userId="alice", id=str(uuid.uuid4()), input={"title": "Tea"}
        )
        assert_failed_with(body, "NOT_FOUND")

    async def test_non_uuid_id_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, UPDATE, userId="alice", id=NOT_A_UUID, input={"title": "Tea"})
        assert_failed_with(body, "NOT_FOUND")


# --- completeTask --------------------------------------------------------------------------


class TestCompleteTask:
    async def test_completes_by_default(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(client, COMPLETE_DEFAULT, userId="alice", id=task["id"])
        assert "errors" not in body, body
        completed = body["data"]["completeTask"]
        assert completed["completed"] is True
        assert utc_timestamp(completed["updatedAt"]) > utc_timestamp(task["updatedAt"])
        assert completed["createdAt"] == task["createdAt"]
        assert await gql_task(client, "alice", task["id"]) == completed

    async def test_is_idempotent(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        first = await graphql(client, COMPLETE_DEFAULT, userId="alice", id=task["id"])
        second = await graphql(client, COMPLETE_DEFAULT, userId="alice", id=task["id"])
        assert "errors" not in first, first
        assert "errors" not in second, second
        assert second["data"]["completeTask"] == first["data"]["completeTask"]
        assert await gql_task(client, "alice", task["id"]) == first["data"]["completeTask"]

    async def test_completed_false_reopens(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        done = await graphql(client, COMPLETE, userId="alice", id=task["id"], completed=True)
        assert done["data"]["completeTask"]["completed"] is True, done
        body = await graphql(client, COMPLETE, userId="alice", id=task["id"], completed=False)
        assert "errors" not in body, body
        reopened = body["data"]["completeTask"]
        assert reopened["completed"] is False
        assert await gql_task(client, "alice", task["id"]) == reopened

    async def test_another_users_task_is_not_found_and_unchanged(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await gql_create(client, "alice")
        body = await graphql(client, COMPLETE_DEFAULT, userId="bob", id=task["id"])
        assert_failed_with(body, "NOT_FOUND")
        assert await gql_task(client, "alice", task["id"]) == task

    async def test_nonexistent_uuid_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, COMPLETE_DEFAULT, userId="alice", id=str(uuid.uuid4()))
        assert_failed_with(body, "NOT_FOUND")

    async def test_non_uuid_id_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, COMPLETE_DEFAULT, userId="alice", id=NOT_A_UUID)
        assert_failed_with(body, "NOT_FOUND")


# --- deleteTask ----------------------------------------------------------------------------


class TestDeleteTask:
    async def test_returns_the_task_as_it_was(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, description="Two litres")
        body = await graphql(client, DELETE, userId="alice", id=task["id"])
        assert "errors" not in body, body
        assert body["data"]["deleteTask"] == task

    async def test_deleted_task_is_gone(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        body = await graphql(client, DELETE, userId="alice", id=task["id"])
        assert "errors" not in body, body
        assert await gql_task(client, "alice", task["id"]) is None
        assert await gql_tasks(client, "alice") == []

    async def test_second_delete_is_not_found(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client)
        first = await graphql(client, DELETE, userId="alice", id=task["id"])
        assert "errors" not in first, first
        second = await graphql(client, DELETE, userId="alice", id=task["id"])
        assert_failed_with(second, "NOT_FOUND")

    async def test_another_users_task_is_not_found_and_kept(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await gql_create(client, "alice")
        body = await graphql(client, DELETE, userId="bob", id=task["id"])
        assert_failed_with(body, "NOT_FOUND")
        assert await gql_task(client, "alice", task["id"]) == task
        assert await gql_tasks(client, "alice") == [task]

    async def test_non_uuid_id_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await graphql(client, DELETE, userId="alice", id=NOT_A_UUID)
        assert_failed_with(body, "NOT_FOUND")


# --- errors --------------------------------------------------------------------------------


class TestErrors:
    async def test_every_error_has_a_code(self, client: httpx.AsyncClient) -> None:
        task = await gql_create(client, "alice")
        missing = str(uuid.uuid4())
        bodies = [
            await graphql(client, CREATE, userId="alice", input={"title": ""}),
            await graphql(client, CREATE, userId="", input={"title": "Buy milk"}),
            await graphql(client, UPDATE, userId="alice", id=task["id"], input={"title": None}),
            await graphql(client, UPDATE, userId="bob", id=task["id"], input={"title": "x"}),
            await graphql(client, COMPLETE_DEFAULT, userId="alice", id=missing),
            await graphql(client, DELETE, userId="alice", id=NOT_A_UUID),
            await graphql(client, "{ tasks(userId: "),  # parse error
            await graphql(client, "{ nope }"),  # unknown field
            await graphql(client, TASKS),  # missing required variable
            await graphql(client, TASKS, userId=42),  # wrongly typed variable
        ]
        for body in bodies:
            assert body.get("errors"), body
            for error in body["errors"]:
                code = error.get("extensions", {}).get("code")
                assert isinstance(code, str), body
                assert code, body

    async def test_not_found_does_not_reveal_another_users_task(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await gql_create(client, "alice")
        for query, variables in [
            (UPDATE, {"input": {"title": "Hijacked"}}),
            (COMPLETE_DEFAULT, {}),
            (DELETE, {}),
        ]:
            answers = []
            for task_id in [task["id"], str(uuid.uuid4()), NOT_A_UUID]:
                body = await graphql(client, query, userId="bob", id=task_id, **variables)
                error = assert_failed_with(body, "NOT_FOUND")
                answers.append((error["message"], error["extensions"]))
            assert answers[0] == answers[1] == answers[2], answers
        assert await gql_task(client, "alice", task["id"]) == task

    async def test_failed_non_null_mutation_stops_the_rest_of_the_operation(
        self, client: httpx.AsyncClient
    ) -> None:
        # Mutations return `Task!`: by the GraphQL spec an error nulls the whole `data`, and
        # graphql-core runs no later field, so no write happens whose result would be lost.
        query = """
        mutation Both($userId: String!, $missing: ID!, $input: CreateTaskInput!) {
          first: completeTask(userId: $userId, id: $missing) { id }
          second: createTask(userId: $userId, input: $input) { id title }
        }
        """
        body = await graphql(
            client, query, userId="alice", missing=str(uuid.uuid4()), input={"title": "Second"}
        )
        assert error_codes(body) == ["NOT_FOUND"], body
        assert body["errors"][0]["path"] == ["first"], body
        assert body["data"] is None, body
        assert await gql_tasks(client, "alice") == []

    async def test_parse_error_does_not_crash(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/graphql", json={"query": "{ tasks(userId: "})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["errors"], body
        assert body.get("data") is None, body

    async def test_unknown_field_does_not_crash(self, client: httpx.AsyncClient) -> None:
        query = "query Q($userId: String!) { tasks(userId: $userId) { id secret } }"
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"userId": "a"}}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["errors"], body
        assert body.get("data") is None, body
        assert "secret" in body["errors"][0]["message"]

    async def test_app_still_answers_after_errors(self, client: httpx.AsyncClient) -> None:
        await graphql(client, "{ tasks(userId: ")
        await graphql(client, "{ nope }")
        task = await gql_create(client)
        assert await gql_tasks(client, "alice") == [task]


# --- GraphiQL ------------------------------------------------------------------------------


class TestGraphiQL:
    async def test_browser_get_opens_graphiql(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "graphiql" in response.text.lower()
