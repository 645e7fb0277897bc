"""BAD_USER_INPUT names each offending value as the GraphQL caller wrote it.

`extensions.errors[].field` and the message say `userId`, `input.title`, `idempotencyKey`,
`filter.search`, `after`: never the service's Python names (`user_id`, `idempotency_key`) nor a
REST name (`body`, `cursor`, the `Idempotency-Key` header). Every case runs on the compiled path
and on the framework's path, which must answer byte for byte alike (tests/graphql/test_compiled.py).
"""

import re
from typing import Any

from tests.graphql.test_compiled import Faces, assert_same_answer, faces  # noqa: F401

CREATE = (
    "mutation($user: String!, $input: CreateTaskInput!, $key: String) "
    "{ createTask(userId: $user, input: $input, idempotencyKey: $key) { id } }"
)
UPDATE = (
    "mutation($user: String!, $id: ID!, $input: UpdateTaskInput!) "
    "{ updateTask(userId: $user, id: $id, input: $input) { id } }"
)
COMPLETE = "mutation($user: String!, $id: ID!) { completeTask(userId: $user, id: $id) { id } }"
DELETE = "mutation($user: String!, $id: ID!) { deleteTask(userId: $user, id: $id) { id } }"
CONNECTION = (
    "query($user: String!, $first: Int, $last: Int, $after: String, $before: String) "
    "{ tasksConnection(userId: $user, first: $first, last: $last, after: $after, "
    "before: $before) { totalCount } }"
)
TASKS = (
    "query($user: String!, $limit: Int, $filter: TaskFilter) "
    "{ tasks(userId: $user, limit: $limit, filter: $filter) { id } }"
)
TASK_ID = "existing"  # replaced by one of alice's tasks

# (document, variables, the fields named)
CASES: dict[str, tuple[str, dict[str, Any], set[str]]] = {
    "create: empty userId": (CREATE, {"user": "", "input": {"title": "t"}}, {"userId"}),
    "create: long userId": (CREATE, {"user": "u" * 256, "input": {"title": "t"}}, {"userId"}),
    "create: blank title": (CREATE, {"user": "alice", "input": {"title": "  "}}, {"input.title"}),
    "create: long title": (
        CREATE,
        {"user": "alice", "input": {"title": "t" * 501}},
        {"input.title"},
    ),
    "create: NUL in description": (
        CREATE,
        {"user": "alice", "input": {"title": "t", "description": "a\x00b"}},
        {"input.description"},
    ),
    "create: long description": (
        CREATE,
        {"user": "alice", "input": {"title": "t", "description": "d" * 10_001}},
        {"input.description"},
    ),
    "create: bad idempotencyKey": (
        CREATE,
        {"user": "alice", "input": {"title": "t"}, "key": "caf\u00e9"},
        {"idempotencyKey"},
    ),
    "create: idempotencyKey reused": (
        CREATE,
        {"user": "alice", "input": {"title": "another"}, "key": "used-once"},
        {"idempotencyKey"},
    ),
    "update: empty userId": (UPDATE, {"user": "", "id": TASK_ID, "input": {}}, {"userId"}),
    "update: null title": (
        UPDATE,
        {"user": "alice", "id": TASK_ID, "input": {"title": None}},
        {"input.title"},
    ),
    "update: blank title": (
        UPDATE,
        {"user": "alice", "id": TASK_ID, "input": {"title": ""}},
        {"input.title"},
    ),
    "update: null completed": (
        UPDATE,
        {"user": "alice", "id": TASK_ID, "input": {"completed": None}},
        {"input.completed"},
    ),
    "update: long description": (
        UPDATE,
        {"user": "alice", "id": TASK_ID, "input": {"description": "d" * 10_001}},
        {"input.description"},
    ),
    "complete: empty userId": (COMPLETE, {"user": "", "id": TASK_ID}, {"userId"}),
    "delete: long userId": (DELETE, {"user": "u" * 256, "id": TASK_ID}, {"userId"}),
    "tasks: NUL in search": (
        TASKS,
        {"user": "alice", "filter": {"search": "\x00"}},
        {"filter.search"},
    ),
    "tasks: limit 0": (TASKS, {"user": "alice", "limit": 0}, {"limit"}),
    "connection: bad after": (CONNECTION, {"user": "alice", "after": "nope"}, {"after"}),
    "connection: bad before": (CONNECTION, {"user": "alice", "before": "nope"}, {"before"}),
    "connection: first and last": (CONNECTION, {"user": "alice", "first": 1, "last": 1}, {"last"}),
    "connection: first too big": (CONNECTION, {"user": "alice", "first": 101}, {"first"}),
}

# What a GraphQL answer must never say: a Python name, or a REST face's own name.
FOREIGN_NAMES = re.compile(r'user_id|idempotency_key|expected_version|Idempotency-Key|"body"')


async def test_bad_input_names_fields_as_the_caller_wrote_them(faces: Faces) -> None:  # noqa: F811
    first = {"user": "alice", "input": {"title": "first"}, "key": "used-once"}
    await faces.compiled.post("/graphql", json={"query": CREATE, "variables": first})
    for case, (document, variables, expected) in CASES.items():
        if variables.get("id") == TASK_ID:
            variables = {**variables, "id": faces.task_ids[0]}
        before = faces.counts.compiled
        accept = "application/graphql-response+json" if len(case) % 2 else "application/json"
        answer = await assert_same_answer(
            faces, {"query": document, "variables": variables}, accept
        )
        [error] = answer.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (case, error)
        assert {item["field"] for item in error["extensions"]["errors"]} == expected, (case, error)
        assert error["message"].split(":")[0] in expected, (case, error)
        assert not FOREIGN_NAMES.search(answer.text), (case, answer.text)
        # The compiled face answered its second sighting itself.
        assert faces.counts.compiled > before, case


async def test_rest_keeps_its_own_names(faces: Faces) -> None:  # noqa: F811
    response = await faces.compiled.get("/api/alice/tasks", params={"limit": 1, "cursor": "nope"})
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["cursor"]
    response = await faces.compiled.post(
        "/api/alice/tasks", json={"title": "t"}, headers={"Idempotency-Key": "x" * 256}
    )
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["idempotency_key"]
