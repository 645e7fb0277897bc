"""Both faces share one service: what one writes, the other reads the same way."""

import httpx

from tests.factories import TASK_FIELDS, create_task, graphql

CREATE = f"""
mutation Create($userId: String!, $input: CreateTaskInput!) {{
  createTask(userId: $userId, input: $input) {{ {TASK_FIELDS} }}
}}"""
GET = f"""
query Get($userId: String!, $id: ID!) {{ task(userId: $userId, id: $id) {{ {TASK_FIELDS} }} }}"""


def as_rest(task: dict[str, object]) -> dict[str, object]:
    return {
        "id": task["id"],
        "user_id": task["userId"],
        "title": task["title"],
        "description": task["description"],
        "completed": task["completed"],
        "created_at": task["createdAt"],
        "updated_at": task["updatedAt"],
        "version": task["version"],
    }


async def test_created_in_graphql_is_read_in_rest(client: httpx.AsyncClient) -> None:
    body = await graphql(
        client, CREATE, userId="alice", input={"title": " Both ", "description": "faces"}
    )
    created = body["data"]["createTask"]
    response = await client.get(f"/api/alice/tasks/{created['id']}")
    assert response.json() == as_rest(created)
    assert (await client.get("/api/alice/tasks")).json() == [as_rest(created)]


async def test_created_in_rest_is_read_in_graphql(client: httpx.AsyncClient) -> None:
    task = await create_task(client, "alice", title="From REST", description="d")
    body = await graphql(client, GET, userId="alice", id=task["id"])
    assert as_rest(body["data"]["task"]) == task


async def test_changes_in_one_face_show_in_the_other(client: httpx.AsyncClient) -> None:
    task = await create_task(client, "alice")
    await client.patch(f"/api/alice/tasks/{task['id']}/complete")
    body = await graphql(client, GET, userId="alice", id=task["id"])
    assert body["data"]["task"]["completed"] is True
    await graphql(
        client,
        'mutation($id: ID!) { deleteTask(userId: "alice", id: $id) { id } }',
        id=task["id"],
    )
    assert (await client.get(f"/api/alice/tasks/{task['id']}")).status_code == 404
