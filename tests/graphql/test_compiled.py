"""Compiled operations (graphql_schema/endpoint.py) answer exactly as the framework's path does.

Two apps share one database: one serves documents it has seen before from compiled operations,
the other has them turned off (TASK_API_GRAPHQL_COMPILED=false), so every request takes
Strawberry's own path. Hypothesis writes documents over every root field (random fields,
aliases, inline and named fragments, @skip/@include with variables, __typename, wrong-typed and
missing variables, ids that do not exist, nulls forced into non-null fields); each runs on both,
and the answers must be equal to the byte, with their status and media type.
"""

import gc
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from graphql_schema.endpoint import AnswerCounts
from tests.apps import asgi_call, assert_same_bytes
from tests.conftest import client_for, make_settings
from tests.factories import TASK_FIELDS, create_task

FIELDS = ("id", "userId", "title", "description", "completed", "createdAt", "updatedAt")
ALL_FIELDS = (*FIELDS, "version", "__typename")
MISSING_ID = str(uuid.UUID(int=7))


@dataclass
class Faces:
    compiled: httpx.AsyncClient
    framework: httpx.AsyncClient
    task_ids: list[str]
    compiled_app: FastAPI

    @property
    def counts(self) -> AnswerCounts:
        counts: AnswerCounts = self.compiled_app.state.graphql_answers
        return counts


@pytest.fixture
async def faces(database_url: str) -> AsyncIterator[Faces]:
    compiled_app = create_app(make_settings(database_url))
    framework_app = create_app(make_settings(database_url, graphql_compiled=False))
    async with (
        LifespanManager(compiled_app),
        LifespanManager(framework_app),
        client_for(compiled_app) as compiled,
        client_for(framework_app) as framework,
    ):
        ids = [(await create_task(compiled, "alice", f"task {n}"))["id"] for n in range(3)]
        await create_task(compiled, "bob", "not alice's")
        yield Faces(compiled, framework, ids, compiled_app)


async def _post(client: httpx.AsyncClient, body: dict[str, Any], accept: str) -> httpx.Response:
    return await client.post("/graphql", json=body, headers={"accept": accept})


async def assert_same_answer(
    faces: Faces, body: dict[str, Any], accept: str = "application/json"
) -> httpx.Response:
    """Run `body` on the compiled face (once to be seen, once compiled) and on the framework's
    face in between, and compare the second compiled answer with the framework's."""
    await _post(faces.compiled, body, accept)
    expected = await _post(faces.framework, body, accept)
    answer = await _post(faces.compiled, body, accept)
    assert_same_bytes(answer, expected, body)
    return answer


# --- documents ------------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "first", "x_1"])


@st.composite
def selections(draw: st.DrawFn, fields: tuple[str, ...] = ALL_FIELDS) -> tuple[str, list[str]]:
    """A selection set over Task: (text, fragment definitions it needs)."""
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=6))
    parts: list[str] = []
    fragments: list[str] = []
    for index, field in enumerate(chosen):
        text = field
        if draw(st.booleans()):
            text = f"{draw(names)}{index}: {field}"
        directive = draw(st.sampled_from(["", "", " @skip(if: $flag)", " @include(if: $flag)"]))
        text += directive
        wrap = draw(st.sampled_from(["plain", "plain", "inline", "named"]))
        if wrap == "inline":
            text = f"... on Task {{ {text} }}" if draw(st.booleans()) else f"... {{ {text} }}"
        elif wrap == "named":
            name = f"F{len(fragments)}"
            fragments.append(f"fragment {name} on Task {{ {text} }}")
            text = f"...{name}"
        parts.append(text)
    return " ".join(parts), fragments


MUTATIONS = ("create", "update", "complete", "delete", "two")
ROOTS = ("tasks", "tasksLimited", "task", "connection", *MUTATIONS)
user_ids = st.sampled_from(["alice", "alice", "bob", "", "x" * 256])


@st.composite
def documents(draw: st.DrawFn, task_ids: list[str]) -> dict[str, Any]:
    selection, fragments = draw(selections())
    task_id = draw(st.sampled_from([*task_ids, MISSING_ID, "not-a-uuid"]))
    user = draw(user_ids)
    root = draw(st.sampled_from(ROOTS))
    variables: dict[str, Any] = {"flag": draw(st.booleans())}
    mistake = draw(st.sampled_from(["none"] * 6 + ["wrong type", "missing"]))
    if mistake == "wrong type":
        variables["flag"] = draw(st.sampled_from(["yes", None, 1]))
    elif mistake == "missing":
        del variables["flag"]
    user_arg = "$user" if draw(st.booleans()) else f'"{user}"'
    if user_arg == "$user":
        variables["user"] = user
    key = draw(st.sampled_from(["key-1", "key-2"]))
    title = draw(st.sampled_from(["t", " ", "é"]))
    fields = {
        "tasks": f"tasks(userId: {user_arg}) {{ {selection} }}",
        "tasksLimited": f"tasks(userId: {user_arg}, limit: {draw(st.integers(-1, 3))}, "
        f'filter: {{search: "task"}}) {{ {selection} }}',
        "task": f'task(userId: {user_arg}, id: "{task_id}") {{ {selection} }}',
        "connection": f"tasksConnection(userId: {user_arg}, first: {draw(st.integers(0, 3))}) "
        f"{{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ "
        f"{selection} }} }} nodes {{ id }} }}",
        "create": f'createTask(userId: {user_arg}, input: {{title: "{title}"}}, '
        f'idempotencyKey: "{key}") {{ {selection} }}',
        "update": f'updateTask(userId: {user_arg}, id: "{task_id}", '
        f'input: {{description: "same"}}) {{ {selection} }}',
        "complete": f'completeTask(userId: {user_arg}, id: "{task_id}") {{ {selection} }}',
        "delete": f'deleteTask(userId: {user_arg}, id: "{MISSING_ID}") {{ {selection} }}',
        "two": f'first: completeTask(userId: {user_arg}, id: "{task_id}") {{ {selection} }} '
        f'second: deleteTask(userId: {user_arg}, id: "{MISSING_ID}") {{ id }} '
        f'third: completeTask(userId: {user_arg}, id: "{task_ids[0]}") {{ id }}',
    }
    # Each variable is declared where the document uses it, so most documents validate.
    used = fields[root] + " ".join(fragments)
    definitions = [
        f"{name}: {kind}"
        for name, kind in (("$flag", "Boolean!"), ("$user", "String!"))
        if name in used
    ]
    operation = "mutation" if root in MUTATIONS else "query"
    signature = f"({', '.join(definitions)})" if definitions else ""
    query = f"{operation} Op{signature} {{ {fields[root]} }} {' '.join(fragments)}"
    return {"query": query, "variables": variables, "operationName": "Op"}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_document_answers_as_the_framework_does(
    faces: Faces, data: st.DataObject
) -> None:
    body = data.draw(documents(faces.task_ids))
    accept = data.draw(st.sampled_from(["application/json", "application/graphql-response+json"]))
    before = faces.counts.compiled
    answer = (await assert_same_answer(faces, body, accept)).json()
    executed = answer.get("data") is not None or any("path" in e for e in answer.get("errors", []))
    # A document that validated and whose variables coerced ran compiled, nowhere else.
    assert (faces.counts.compiled > before) == executed, answer


# --- the common documents take the compiled path ------------------------------------------------

COMMON = {
    "list": f'{{ tasks(userId: "alice") {{ {TASK_FIELDS} }} }}',
    "get": 'query($id: ID!) { task(userId: "alice", id: $id) { id title version } }',
    "connection": '{ tasksConnection(userId: "alice", first: 2) { totalCount edges { cursor '
    "node { id title } } pageInfo { hasNextPage endCursor } } }",
    "create": 'mutation { createTask(userId: "alice", input: {title: "new"}) { id title } }',
    "update": 'mutation($id: ID!) { updateTask(userId: "alice", id: $id, '
    'input: {title: "renamed"}) { id title version } }',
    "complete": 'mutation($id: ID!) { completeTask(userId: "alice", id: $id) { id completed } }',
    "delete": 'mutation($id: ID!) { deleteTask(userId: "alice", id: $id) { id } }',
}


# The connection's selection has objects within objects: graphql-core's executor completes it.
PLANNED = set(COMMON) - {"connection"}


@pytest.mark.parametrize("name", list(COMMON))
async def test_a_common_document_is_compiled_on_its_second_request(faces: Faces, name: str) -> None:
    body = {"query": COMMON[name], "variables": {"id": faces.task_ids[-1]}}
    first = await faces.compiled.post("/graphql", json=body)
    before, planned_before = faces.counts.compiled, faces.counts.planned
    body["variables"] = {"id": faces.task_ids[0]}
    second = await faces.compiled.post("/graphql", json=body)
    assert faces.counts.compiled == before + 1
    # Its one root field ran by the operation's plan, without graphql-core's executor.
    assert faces.counts.planned == planned_before + (name in PLANNED)
    assert first.status_code == second.status_code == 200
    assert "errors" not in second.json()


async def test_a_planned_mutation_that_fails_runs_once_and_answers_as_the_framework(
    faces: Faces,
) -> None:
    """A one-field mutation's error is completed by graphql-core from the resolver's outcome."""
    body = {"query": COMMON["delete"], "variables": {"id": faces.task_ids[0]}}
    await faces.compiled.post("/graphql", json=body)  # seen once: deletes task 0
    planned = faces.counts.planned
    compiled = await faces.compiled.post("/graphql", json=body)  # compiled: NOT_FOUND
    expected = await faces.framework.post("/graphql", json=body)
    assert compiled.content == expected.content
    assert compiled.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert faces.counts.planned == planned  # the error was not the plan's to complete
    remaining = (await faces.compiled.get("/api/alice/tasks")).json()
    assert [task["id"] for task in remaining] == faces.task_ids[1:]


async def test_a_mutation_runs_once_even_when_it_fails(faces: Faces) -> None:
    body = {
        "query": f'mutation {{ a: deleteTask(userId: "alice", id: "{faces.task_ids[0]}") {{ id }} '
        f'b: deleteTask(userId: "alice", id: "{faces.task_ids[0]}") {{ id }} '
        f'c: deleteTask(userId: "alice", id: "{faces.task_ids[1]}") {{ id }} }}'
    }
    await faces.compiled.post("/graphql", json=body | {"operationName": None})
    answer = (await faces.compiled.get("/api/alice/tasks")).json()
    # The first run (framework) deleted task 0, then stopped at b's NOT_FOUND: c never ran.
    assert [task["id"] for task in answer] == faces.task_ids[1:]
    compiled = (await faces.compiled.post("/graphql", json=body)).json()
    assert compiled["data"] is None
    assert [error["extensions"]["code"] for error in compiled["errors"]] == ["NOT_FOUND"]
    assert [task["id"] for task in (await faces.compiled.get("/api/alice/tasks")).json()] == (
        faces.task_ids[1:]
    )


async def _asgi_post(app: FastAPI, body: dict[str, Any]) -> dict[str, Any]:
    """POST /graphql straight to the ASGI app: no client in between to make garbage of its own."""
    status, answer = await asgi_call(
        app,
        "POST",
        "/graphql",
        body=orjson.dumps(body),
        headers=((b"content-type", b"application/json"),),
    )
    assert status == 200
    decoded: dict[str, Any] = orjson.loads(answer)
    return decoded


@pytest.mark.parametrize("name", ["list", "get", "connection", "create", "not found"])
async def test_a_compiled_answer_leaves_no_reference_cycles(faces: Faces, name: str) -> None:
    """What a compiled read or create made is freed when it ends, not left for the collector.

    A cycle (an object that refers back to itself) holds everything it reaches until the
    collector runs: under load that was every request's executor, context and session, with
    collections every few requests walking every request in flight. This fails when a change
    brings one back, and names what the collector found. (Not asked of the writes to an
    existing task: their statements are SQLAlchemy expressions built per request, which hold
    small cycles of their own; nor of an error, whose traceback refers to its frames.)
    """
    document = COMMON.get(name, COMMON["get"])
    task_id = MISSING_ID if name == "not found" else faces.task_ids[0]
    body = {"query": document, "variables": {"id": task_id}}
    for _ in range(2):  # seen once, then compiled (validation makes cycles, once)
        await _asgi_post(faces.compiled_app, body)
    compiled_before = faces.counts.compiled
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        answers = [await _asgi_post(faces.compiled_app, body) for _ in range(3)]
        gc.collect()
        left = [type(found).__qualname__ for found in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert faces.counts.compiled == compiled_before + 3
    assert all("data" in answer for answer in answers), answers
    assert left == [], f"{len(left)} objects in cycles: {sorted(set(left))}"


MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'


@pytest.mark.parametrize("accept", [MULTIPART, "application/json"])
async def test_a_subscription_is_left_to_the_framework(faces: Faces, accept: str) -> None:
    """Subscriptions stream from Strawberry's own path, however often they are sent; an invalid
    resume point ends the stream at once with the framework's error."""
    body = {"query": 'subscription { taskEvents(userId: "alice", after: "x") { id } }'}
    before = (faces.counts.compiled, faces.counts.delegated)
    answers = [await _post(faces.compiled, body, accept) for _ in range(3)]
    assert (faces.counts.compiled, faces.counts.delegated) == (before[0], before[1] + 3)
    expected = await _post(faces.framework, body, accept)
    for answer in answers:
        assert answer.status_code == expected.status_code
        assert answer.headers["content-type"] == expected.headers["content-type"]
        assert answer.content == expected.content
    if accept == MULTIPART:
        assert answers[0].status_code == 200
        assert answers[0].headers["content-type"].startswith("multipart/mixed")
        assert b'"code":"BAD_USER_INPUT"' in answers[0].content
    else:
        # Without a streaming transport a subscription is a bad request, never a 500.
        assert answers[0].status_code == 400
        assert answers[0].json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
