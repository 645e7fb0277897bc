"""The REST routes' direct handlers answer exactly as the routes' own handlers do.

api.rest.routing lets an ordinary list or create skip FastAPI's parameter parsing and dependency
solving. These tests send the same requests to an app with the direct handlers and to one
without (`rest_direct=False`), over the same database, and compare the answers: status, headers
and body (a create's new id and timestamps aside). They also fail when an ordinary list or create
stops being answered directly, or in front of the routing (api.rest.endpoint), and when a
request that is not ordinary is.
"""

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.main import create_app
from api.rest.routing import DirectAnswers
from tests.apps import asgi_call
from tests.conftest import client_for, make_settings
from tests.factories import create_task

# Both faces get the same request id, which problem details echo.
REQUEST_ID = "direct-or-routed"
NEW_TASK_FIELDS = ("id", "created_at", "updated_at")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Faces:
    direct: httpx.AsyncClient
    routed: httpx.AsyncClient
    answers: DirectAnswers


@pytest.fixture
async def faces(database_url: str) -> AsyncIterator[Faces]:
    direct_app = create_app(make_settings(database_url))
    routed_app = create_app(make_settings(database_url, rest_direct=False))
    assert routed_app.state.rest_direct_answers is None
    async with (
        LifespanManager(direct_app),
        LifespanManager(routed_app),
        client_for(direct_app) as direct,
        client_for(routed_app) as routed,
    ):
        for client in (direct, routed):
            client.headers["x-request-id"] = REQUEST_ID
        for number in range(3):
            await create_task(routed, "alice", f"task {number}", description=f"about {number}")
        await create_task(routed, "bob", "not alice's")
        yield Faces(direct, routed, direct_app.state.rest_direct_answers)


def counts(faces: Faces) -> tuple[int, int]:
    """Requests answered by a direct handler, and requests answered before the routing."""
    return faces.answers.direct, faces.answers.before_routing


def plus(before: tuple[int, int], answered: int) -> tuple[int, int]:
    """`answered` more answered directly, all of them in front of the routing."""
    return before[0] + answered, before[1] + answered


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return response.headers.multi_items()


def assert_same(answer: httpx.Response, expected: httpx.Response, sent: object) -> None:
    assert (answer.status_code, _headers(answer), answer.content) == (
        expected.status_code,
        _headers(expected),
        expected.content,
    ), sent


@pytest.mark.parametrize("user_id", ["alice", "nobody-yet", "caf%C3%A9", "a%20b", ".hidden"])
async def test_a_list_answers_as_the_route_does(faces: Faces, user_id: str) -> None:
    before = counts(faces)
    answer = await faces.direct.get(f"/api/{user_id}/tasks")
    expected = await faces.routed.get(f"/api/{user_id}/tasks")
    assert_same(answer, expected, user_id)
    assert counts(faces) == plus(before, 1)


@pytest.mark.parametrize(
    "query", ["limit=1", "completed=true", "sort=-title", "limit=0", "cursor=x", "unknown=1"]
)
async def test_a_list_with_a_query_is_left_to_the_route(faces: Faces, query: str) -> None:
    before = counts(faces)
    answer = await faces.direct.get(f"/api/alice/tasks?{query}")
    expected = await faces.routed.get(f"/api/alice/tasks?{query}")
    assert_same(answer, expected, query)
    assert counts(faces) == before


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("POST", {"title": "t"})])
async def test_a_service_error_is_answered_as_the_route_answers_it(
    faces: Faces, method: str, body: Any
) -> None:
    """A user id the service refuses: the app's own exception handler answers, in front of the
    routing as behind it."""
    before = counts(faces)
    path = f"/api/{'x' * 256}/tasks"
    answer = await faces.direct.request(method, path, json=body)
    expected = await faces.routed.request(method, path, json=body)
    assert answer.status_code == 400
    assert_same(answer, expected, method)
    assert counts(faces) == (before[0], before[1] + 1)


async def test_a_head_of_the_list_answers_as_the_route_does(faces: Faces) -> None:
    answer = await faces.direct.head("/api/alice/tasks")
    expected = await faces.routed.head("/api/alice/tasks")
    assert_same(answer, expected, "HEAD")


def _without_new_task_values(response: httpx.Response) -> tuple[Any, ...]:
    """A create's answer with the new task's id and timestamps (which differ) taken out."""
    try:
        body: Any = response.json()
    except json.JSONDecodeError:
        body = response.content
    new_id = body.get("id") if response.status_code == 201 else None
    if isinstance(body, dict) and new_id is not None:
        body = {name: value for name, value in body.items() if name not in NEW_TASK_FIELDS}
    headers = [
        (name, value.replace(new_id, "<id>") if new_id else value)
        for name, value in _headers(response)
        if name != "content-length"
    ]
    return response.status_code, headers, body


VALID_TASKS: list[Any] = [
    {"title": "Write the report"},
    {"title": "Write the report", "description": "by Friday"},
    {"title": "Write the report", "description": None},
    {"title": "  padded  ", "description": "tâche ✓"},
    {"title": "t", "extra": 1},
]
INVALID_BODIES: list[Any] = [
    {"title": ""},
    {"title": 5},
    {"description": "no title"},
    {"title": "x" * 10_000},
    [],
    "a string",
    None,
]


@pytest.mark.parametrize("task", VALID_TASKS)
async def test_a_create_answers_as_the_route_does(faces: Faces, task: dict[str, Any]) -> None:
    before = counts(faces)
    answer = await faces.direct.post("/api/carol/tasks", json=task)
    expected = await faces.routed.post("/api/carol/tasks", json=task)
    assert answer.status_code == 201, answer.text
    assert _without_new_task_values(answer) == _without_new_task_values(expected)
    assert counts(faces) == plus(before, 1)
    # What the direct create stored is what the route's create stored.
    listed = (await faces.routed.get("/api/carol/tasks")).json()
    assert [t for t in listed if t["id"] == answer.json()["id"]] == [answer.json()]


@pytest.mark.parametrize("body", INVALID_BODIES)
async def test_a_create_that_is_not_a_valid_task_is_left_to_the_route(
    faces: Faces, body: Any
) -> None:
    before = counts(faces)
    answer = await faces.direct.post("/api/carol/tasks", json=body)
    expected = await faces.routed.post("/api/carol/tasks", json=body)
    assert_same(answer, expected, body)
    assert counts(faces) == before
    assert (await faces.direct.get("/api/carol/tasks")).json() == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": "t"', "application/json"),
        (b'{"title": NaN}', "application/json"),
        (b'{"title": "\\ud800"}', "application/json"),
        (b'{"title": 123456789012345678901234567890}', "application/json"),
        (b'{"title": "t"}', "text/plain"),
        (b'{"title": "t"}', "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
async def test_a_body_that_is_not_plain_json_is_left_to_the_route(
    faces: Faces, content: bytes, content_type: str
) -> None:
    before = counts(faces)
    headers = {"content-type": content_type}
    answer = await faces.direct.post("/api/carol/tasks", content=content, headers=headers)
    expected = await faces.routed.post("/api/carol/tasks", content=content, headers=headers)
    assert _without_new_task_values(answer) == _without_new_task_values(expected), content
    assert counts(faces) == before


async def test_a_create_with_an_idempotency_key_is_left_to_the_route(faces: Faces) -> None:
    before = counts(faces)
    headers = {"Idempotency-Key": "key-1"}
    first = await faces.direct.post("/api/carol/tasks", json={"title": "t"}, headers=headers)
    again = await faces.direct.post("/api/carol/tasks", json={"title": "t"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert counts(faces) == before


async def test_a_json_media_type_with_parameters_or_a_suffix_is_answered_directly(
    faces: Faces,
) -> None:
    before = counts(faces)
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        answer = await faces.direct.post(
            "/api/carol/tasks", content=b'{"title": "t"}', headers={"content-type": content_type}
        )
        assert answer.status_code == 201
        assert UUID.fullmatch(answer.json()["id"])
    assert counts(faces) == plus(before, 2)


async def _create_from_a_client_gone(app: Any) -> tuple[int, bytes]:
    """A JSON create whose client disconnects before its body is read: (status, body) sent."""
    return await asgi_call(
        app,
        "POST",
        "/api/alice/tasks",
        headers=((b"content-type", b"application/json"), (b"x-request-id", REQUEST_ID.encode())),
        disconnected=True,
    )


async def test_a_client_gone_before_its_body_is_answered_as_the_route_does(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No error logged, nothing created: the route's own handler answers, as without the direct
    handlers."""
    answers = []
    for direct in (True, False):
        app = create_app(make_settings(database_url, rest_direct=direct))
        async with LifespanManager(app) as manager:
            caplog.clear()
            answers.append(await _create_from_a_client_gone(manager.app))
            assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
            async with client_for(app) as client:
                listed = await client.get("/api/alice/tasks")
            assert listed.json() == []
    assert answers[0] == answers[1]
    assert answers[0][0] == 400
