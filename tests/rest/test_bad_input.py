"""Malformed requests, written by hand: each gets a clear 4xx, never a 500, on both faces."""

import json
from typing import Any

import httpx
import pytest

from tests.factories import create_task, error_codes, graphql
from tests.rest.test_rest import assert_problem, field_names

DEEP = 100_000
HUGE_INT = "9" * 5_000  # longer than Python's default int parsing limit (4,300 digits)

MALFORMED_JSON_BODIES = {
    "not JSON": b"not json",
    "truncated": b'{"title": "x"',
    "invalid UTF-8": b'{"title": "caf\xe9"}',
    "stray continuation byte": b'{"title": "\x80"}',
    "deeply nested array": b"[" * DEEP + b"]" * DEEP,
    "deeply nested value": b'{"title": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "integer too long to parse": b'{"title": "x", "description": ' + HUGE_INT.encode() + b"}",
}
NOT_AN_OBJECT = [b"[]", b'[{"title": "x"}]', b'"title"', b"42", b"true", b"null"]


def assert_graphql_request_error(response: httpx.Response, status: int, code: str) -> str:
    """A GraphQL request error: this status, a JSON body with one error of this code, no data."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body: dict[str, Any] = response.json()
    assert "data" not in body, body
    assert error_codes(body) == [code], body
    message: str = body["errors"][0]["message"]
    assert message
    return message


async def send(
    client: httpx.AsyncClient, method: str, url: str, content: bytes, content_type: str | None
) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return await client.request(method, url, content=content, headers=headers)


class TestMalformedRestBodies:
    @pytest.mark.parametrize("name", MALFORMED_JSON_BODIES)
    async def test_create_is_400_malformed_json(self, client: httpx.AsyncClient, name: str) -> None:
        response = await send(
            client, "POST", "/api/alice/tasks", MALFORMED_JSON_BODIES[name], "application/json"
        )
        problem = assert_problem(response, 400, "ValidationError")
        assert field_names(problem) == {"body"}
        assert (await client.get("/api/alice/tasks")).json() == []

    @pytest.mark.parametrize("name", MALFORMED_JSON_BODIES)
    async def test_update_is_400_and_changes_nothing(
        self, client: httpx.AsyncClient, name: str
    ) -> None:
        task = await create_task(client)
        url = f"/api/alice/tasks/{task['id']}"
        response = await send(client, "PUT", url, MALFORMED_JSON_BODIES[name], "application/json")
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"body"}
        assert (await client.get(url)).json() == task

    @pytest.mark.parametrize("content", NOT_AN_OBJECT)
    async def test_json_that_is_not_an_object_is_400(
        self, client: httpx.AsyncClient, content: bytes
    ) -> None:
        response = await send(client, "POST", "/api/alice/tasks", content, "application/json")
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"body"}

    @pytest.mark.parametrize("content", [b"[]", b"42", b'"yes"', b"true"])
    async def test_complete_with_a_non_object_body_is_400(
        self, client: httpx.AsyncClient, content: bytes
    ) -> None:
        task = await create_task(client)
        url = f"/api/alice/tasks/{task['id']}/complete"
        problem = assert_problem(
            await send(client, "PATCH", url, content, "application/json"), 400, "ValidationError"
        )
        assert field_names(problem) == {"body"}
        assert (await client.get(f"/api/alice/tasks/{task['id']}")).json() == task

    @pytest.mark.parametrize(
        "value", ["1e400", "-1e400", HUGE_INT, "123456789012345678901234567890", "1.5", "0"]
    )
    async def test_numbers_where_strings_belong_are_400(
        self, client: httpx.AsyncClient, value: str
    ) -> None:
        body = f'{{"title": {value}}}'.encode()
        response = await send(client, "POST", "/api/alice/tasks", body, "application/json")
        # An integer too long to parse makes the whole body unreadable, not just the field.
        field = "body" if value == HUGE_INT else "title"
        assert field_names(assert_problem(response, 400, "ValidationError")) == {field}
        assert (await client.get("/api/alice/tasks")).json() == []

    @pytest.mark.parametrize("value", ["1", "0", "1e400", HUGE_INT, '"true"'])
    async def test_non_booleans_for_completed_are_400(
        self, client: httpx.AsyncClient, value: str
    ) -> None:
        task = await create_task(client)
        body = f'{{"completed": {value}}}'.encode()
        url = f"/api/alice/tasks/{task['id']}"
        response = await send(client, "PUT", url, body, "application/json")
        field = "body" if value == HUGE_INT else "completed"
        assert field_names(assert_problem(response, 400, "ValidationError")) == {field}
        assert (await client.get(url)).json() == task

    @pytest.mark.parametrize(
        ("field", "value"),
        [("title", "a\x00b"), ("title", "\x00"), ("description", "tail\x00")],
    )
    async def test_nul_in_a_string_is_400_not_500(
        self, client: httpx.AsyncClient, field: str, value: str
    ) -> None:
        body = {"title": "ok", field: value}
        response = await client.post("/api/alice/tasks", json=body)
        assert field_names(assert_problem(response, 400, "ValidationError")) == {field}

    async def test_lone_surrogate_is_400(self, client: httpx.AsyncClient) -> None:
        body = b'{"title": "\\ud800"}'
        response = await send(client, "POST", "/api/alice/tasks", body, "application/json")
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"title"}

    async def test_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        body = json.dumps({"title": "x", "description": "d" * 2_000_000}).encode()
        response = await send(client, "POST", "/api/alice/tasks", body, "application/json")
        assert_problem(response, 413, "PayloadTooLargeError")


class TestWrongContentTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            None,
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
        ],
    )
    async def test_json_sent_as_another_type_is_400_saying_so(
        self, client: httpx.AsyncClient, content_type: str | None
    ) -> None:
        response = await send(client, "POST", "/api/alice/tasks", b'{"title": "x"}', content_type)
        problem = assert_problem(response, 400, "ValidationError")
        assert "application/json" in problem["detail"]
        assert (await client.get("/api/alice/tasks")).json() == []

    @pytest.mark.parametrize(
        "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
    )
    async def test_json_media_types_with_parameters_are_accepted(
        self, client: httpx.AsyncClient, content_type: str
    ) -> None:
        response = await send(client, "POST", "/api/alice/tasks", b'{"title": "x"}', content_type)
        assert response.status_code == 201
        task = response.json()
        assert task["title"] == "x"
        assert task["user_id"] == "alice"
        assert task["version"] == 1
        assert (await client.get("/api/alice/tasks")).json() == [task]


class TestMalformedGraphQLRequests:
    @pytest.mark.parametrize("name", MALFORMED_JSON_BODIES)
    async def test_undecodable_body_is_400(self, client: httpx.AsyncClient, name: str) -> None:
        response = await send(
            client, "POST", "/graphql", MALFORMED_JSON_BODIES[name], "application/json"
        )
        assert response.status_code == 400
        assert "JSON" in assert_graphql_request_error(response, 400, "BAD_REQUEST")

    @pytest.mark.parametrize("content", [b'"query"', b"42", b"true", b"[]", b"[1, 2]"])
    async def test_body_that_is_not_an_object_is_400(
        self, client: httpx.AsyncClient, content: bytes
    ) -> None:
        response = await send(client, "POST", "/graphql", content, "application/json")
        assert response.status_code == 400
        assert "JSON object" in assert_graphql_request_error(response, 400, "BAD_REQUEST")

    @pytest.mark.parametrize(
        "body",
        [{"query": 42}, {"query": "{ __typename }", "variables": "x"}, {"query": ["{ a }"]}],
    )
    async def test_mistyped_request_fields_are_400(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        response = await client.post("/graphql", json=body)
        assert response.status_code == 400
        message = assert_graphql_request_error(response, 400, "BAD_REQUEST")
        assert message.startswith(next(iter(set(body) - {"query"}), "query")), message

    @pytest.mark.parametrize("content_type", [None, "text/plain", "application/graphql"])
    async def test_unsupported_content_type_is_415(
        self, client: httpx.AsyncClient, content_type: str | None
    ) -> None:
        # GraphQL over HTTP: a POST body that is not JSON is an unsupported media type.
        body = b'{"query": "{ __typename }"}'
        response = await send(client, "POST", "/graphql", body, content_type)
        assert response.status_code == 415
        message = assert_graphql_request_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert "application/json" in message

    async def test_variable_of_the_wrong_type_is_bad_user_input(
        self, client: httpx.AsyncClient
    ) -> None:
        query = 'mutation($t: String!) { createTask(userId: "a", input: {title: $t}) { id } }'
        nested: Any = []
        for _ in range(500):
            nested = [nested]
        for value in [42, {"a": 1}, nested, True]:
            body = await graphql(client, query, t=value)
            assert error_codes(body) == ["BAD_USER_INPUT"], body

    async def test_int_out_of_range_is_an_error_not_a_crash(
        self, client: httpx.AsyncClient
    ) -> None:
        task = await create_task(client)
        query = (
            "mutation($id: ID!, $v: Int) "
            '{ deleteTask(userId: "alice", id: $id, expectedVersion: $v) { id } }'
        )
        body = await graphql(client, query, id=task["id"], v=2**40)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body.get("data") is None
        response = await client.get(f"/api/alice/tasks/{task['id']}")
        assert response.status_code == 200
        assert response.json() == task

    @pytest.mark.parametrize("argument", ["userId", "title", "description"])
    async def test_nul_in_any_string_is_bad_user_input(
        self, client: httpx.AsyncClient, argument: str
    ) -> None:
        query = (
            "mutation($u: String!, $t: String!, $d: String) "
            "{ createTask(userId: $u, input: {title: $t, description: $d}) { id } }"
        )
        values = {"u": "alice", "t": "title", "d": "description"}
        values[{"userId": "u", "title": "t", "description": "d"}[argument]] += "\x00"
        body = await graphql(client, query, **values)
        assert error_codes(body) == ["BAD_USER_INPUT"]

    async def test_nul_in_an_id_is_not_found(self, client: httpx.AsyncClient) -> None:
        body = await graphql(
            client, 'mutation { deleteTask(userId: "alice", id: "a\\u0000b") { id } }'
        )
        assert error_codes(body) == ["NOT_FOUND"]

    async def test_deeply_nested_document_is_refused(self, client: httpx.AsyncClient) -> None:
        literal = "[" * 5_000 + "]" * 5_000
        body = await graphql(
            client, f'mutation {{ createTask(userId: "a", input: {{title: {literal}}}) {{ id }} }}'
        )
        assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]

    async def test_too_many_aliases_are_refused(self, client: httpx.AsyncClient) -> None:
        fields = " ".join(f'a{n}: tasks(userId: "a") {{ id }}' for n in range(51))
        body = await graphql(client, f"query {{ {fields} }}")
        assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]

    async def test_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        body = json.dumps({"query": "{ __typename }", "x": "y" * 2_000_000}).encode()
        response = await send(client, "POST", "/graphql", body, "application/json")
        assert response.status_code == 413
        problem = assert_problem(response, 413, "PayloadTooLargeError")
        assert "larger than the limit" in problem["detail"]


class TestLimits:
    async def test_streamed_body_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> Any:
            yield b'{"title": "x", "description": "'
            for _ in range(40):
                yield b"d" * 65_536
            yield b'"}'

        response = await client.post(
            "/api/alice/tasks", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "PayloadTooLargeError")
        assert (await client.get("/api/alice/tasks")).json() == []

    async def test_body_just_under_the_limit_is_read(self, client: httpx.AsyncClient) -> None:
        # Valid JSON, far over the task's own limits: refused by validation, not by size.
        body = json.dumps({"title": "x", "description": "d" * 1_000_000}).encode()
        response = await send(client, "POST", "/api/alice/tasks", body, "application/json")
        assert field_names(assert_problem(response, 400, "ValidationError")) == {"description"}


class TestWrongMethod:
    @pytest.mark.parametrize(
        ("path", "allowed"),
        [
            ("/api/alice/tasks", {"GET", "POST"}),
            (
                f"/api/alice/tasks/{'0' * 8}-0000-4000-8000-{'0' * 12}",
                {"GET", "PUT", "DELETE"},
            ),
            (f"/api/alice/tasks/{'0' * 8}-0000-4000-8000-{'0' * 12}/complete", {"PATCH"}),
        ],
    )
    async def test_405_lists_every_method_of_the_path(
        self, client: httpx.AsyncClient, path: str, allowed: set[str]
    ) -> None:
        response = await client.request("OPTIONS", path)
        assert_problem(response, 405, "MethodNotAllowedError")
        assert set(response.headers["allow"].split(", ")) == allowed
