"""GraphQL over HTTP (graphql/graphql-over-http): media types, status codes, GET, malformed input.

Each rule is checked for both response media types, `application/json` (legacy: 200 for every
well-formed request) and `application/graphql-response+json` (4xx for request errors), on both
databases.
"""

import json
from typing import Any

import httpx
import pytest

from tests.factories import create_task

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
MEDIA_TYPES = [JSON, GRAPHQL_RESPONSE_JSON]
TASKS = "query Tasks($userId: String!) { tasks(userId: $userId) { id title } }"
CREATE = 'mutation Create { createTask(userId: "alice", input: {title: "Buy milk"}) { id } }'


async def post(
    client: httpx.AsyncClient,
    body: object,
    accept: str | None = JSON,
    content_type: str | None = JSON,
) -> httpx.Response:
    """POST `body` (bytes as they are, anything else as JSON) with exactly these headers."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = client.build_request("POST", "/graphql", content=content)
    for name, value in (("Accept", accept), ("Content-Type", content_type)):
        if value is None:
            request.headers.pop(name, None)
        else:
            request.headers[name] = value
    return await client.send(request)


async def get(
    client: httpx.AsyncClient, params: dict[str, str], accept: str | None = JSON
) -> httpx.Response:
    request = client.build_request("GET", "/graphql", params=params)
    if accept is None:
        request.headers.pop("Accept", None)
    else:
        request.headers["Accept"] = accept
    return await client.send(request)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def assert_request_error(
    response: httpx.Response, status: int, code: str, answered_in: str
) -> None:
    """A GraphQL response with only errors (no `data` key), each with `code`."""
    assert response.status_code == status, response.text
    assert media_type(response) == answered_in, response.headers
    body: dict[str, Any] = response.json()
    assert "data" not in body, body
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["message"], str), body
        assert error["extensions"]["code"] == code, body


async def rest_titles(client: httpx.AsyncClient, user_id: str = "alice") -> list[str]:
    response = await client.get(f"/api/{user_id}/tasks")
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()]


# --- Accept: which media type the response uses -------------------------------------------------


class TestResponseMediaType:
    @pytest.mark.parametrize(
        ("accept", "expected"),
        [
            (JSON, JSON),
            (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
            # The spec's recommended client header, and GraphiQL's.
            (
                f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8, {JSON}; charset=utf-8",
                GRAPHQL_RESPONSE_JSON,
            ),
            (f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
            (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", JSON),
            (f"{GRAPHQL_RESPONSE_JSON};q=0.5, {JSON}", JSON),
            (f"text/html, {GRAPHQL_RESPONSE_JSON};q=0.8", GRAPHQL_RESPONSE_JSON),
            (f"*/*, {JSON};q=0", GRAPHQL_RESPONSE_JSON),
        ],
    )
    async def test_follows_the_accept_header(
        self, client: httpx.AsyncClient, accept: str, expected: str
    ) -> None:
        response = await post(client, {"query": "{ __typename }"}, accept=accept)
        assert response.status_code == 200, response.text
        assert media_type(response) == expected
        assert response.json() == {"data": {"__typename": "Query"}}

    @pytest.mark.parametrize("accept", ["*/*", "application/*", None, ""])
    async def test_wildcards_and_no_accept_header_keep_application_json(
        self, client: httpx.AsyncClient, accept: str | None
    ) -> None:
        response = await post(client, {"query": "{ __typename }"}, accept=accept)
        assert response.status_code == 200, response.text
        assert media_type(response) == JSON

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_response_names_its_charset(self, client: httpx.AsyncClient, accept: str) -> None:
        response = await post(client, {"query": "{ __typename }"}, accept=accept)
        assert response.headers["content-type"] == f"{accept}; charset=utf-8"

    @pytest.mark.parametrize(
        "accept",
        ["text/plain", "application/xml, text/html", f"{JSON};q=0, {GRAPHQL_RESPONSE_JSON};q=0"],
    )
    async def test_no_acceptable_media_type_is_406(
        self, client: httpx.AsyncClient, accept: str
    ) -> None:
        response = await post(client, {"query": CREATE}, accept=accept)
        assert_request_error(response, 406, "NOT_ACCEPTABLE", answered_in=JSON)
        assert await rest_titles(client) == []


# --- document errors: 200 for application/json, 400 without data for the new type --------------

# Variables that cannot be coerced are the caller's input at fault (BAD_USER_INPUT); every other
# error here is about the document itself.
VARIABLE_ERRORS = {"misses a variable", "has a variable of the wrong type"}


def document_error_code(body: dict[str, Any]) -> str:
    name = next(name for name, value in DOCUMENT_ERRORS.items() if value is body)
    return "BAD_USER_INPUT" if name in VARIABLE_ERRORS else "GRAPHQL_VALIDATION_FAILED"


DOCUMENT_ERRORS = {
    "does not parse": {"query": "{ tasks(userId: "},
    "is empty": {"query": ""},
    "does not validate": {"query": '{ tasks(userId: "alice") { id secret } }'},
    "misses a variable": {"query": TASKS},
    "has a variable of the wrong type": {"query": TASKS, "variables": {"userId": 42}},
    "names an operation it lacks": {"query": TASKS, "operationName": "Other"},
    "has two operations and names neither": {
        "query": "query A { __typename } query B { __typename }"
    },
}


class TestDocumentErrors:
    @pytest.mark.parametrize("body", DOCUMENT_ERRORS.values(), ids=DOCUMENT_ERRORS.keys())
    async def test_application_json_keeps_200_with_null_data(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        response = await post(client, body, accept=JSON)
        assert response.status_code == 200, response.text
        assert media_type(response) == JSON
        answer = response.json()
        assert answer["data"] is None, answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == [document_error_code(body)]

    @pytest.mark.parametrize("body", DOCUMENT_ERRORS.values(), ids=DOCUMENT_ERRORS.keys())
    async def test_graphql_response_json_is_400_without_data(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        response = await post(client, body, accept=GRAPHQL_RESPONSE_JSON)
        assert_request_error(
            response, 400, document_error_code(body), answered_in=GRAPHQL_RESPONSE_JSON
        )

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_nothing_runs(self, client: httpx.AsyncClient, accept: str) -> None:
        query = 'mutation { createTask(userId: "alice", input: {title: "x"}) { id nope } }'
        await post(client, {"query": query}, accept=accept)
        assert await rest_titles(client) == []


# --- field errors and success: always 200, data present -----------------------------------------


class TestExecutedRequests:
    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_success_is_200(self, client: httpx.AsyncClient, accept: str) -> None:
        await create_task(client, "alice", "Buy milk")
        response = await post(
            client, {"query": TASKS, "variables": {"userId": "alice"}}, accept=accept
        )
        assert response.status_code == 200, response.text
        assert [task["title"] for task in response.json()["data"]["tasks"]] == ["Buy milk"]

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_field_error_is_200_with_data_present(
        self, client: httpx.AsyncClient, accept: str
    ) -> None:
        # The operation ran, and its non-null root field failed: `data` is null, not absent.
        query = 'mutation { createTask(userId: "alice", input: {title: "   "}) { id } }'
        response = await post(client, {"query": query}, accept=accept)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "data" in body, body
        assert body["data"] is None, body
        assert body["errors"][0]["path"] == ["createTask"], body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


# --- encoding: JSON in UTF-8, whatever the text ---------------------------------------------------

UNICODE_TITLE = "Ünïcødé ✓ 日本"
CREATE_TITLED = (
    'mutation Create($title: String!) { createTask(userId: "alice", input: {title: $title}) '
    "{ title } }"
)


class TestEncoding:
    async def test_every_answer_states_its_own_length_once(self, client: httpx.AsyncClient) -> None:
        # A server sends exactly Content-Length bytes: a second, smaller length cuts the answer.
        answers = [
            await post(client, {"query": CREATE}),
            await post(client, {"query": TASKS, "variables": {"userId": "alice"}}),
            await get(client, {"query": TASKS, "variables": '{"userId": "alice"}'}),
            await post(client, {"query": "{ tasks(userId: "}),
        ]
        for response in answers:
            assert response.headers.get_list("content-length") == [str(len(response.content))]
            assert response.json()

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_non_ascii_text_round_trips_exactly(
        self, client: httpx.AsyncClient, accept: str
    ) -> None:
        created = await post(
            client, {"query": CREATE_TITLED, "variables": {"title": UNICODE_TITLE}}, accept=accept
        )
        listed = await post(
            client, {"query": TASKS, "variables": {"userId": "alice"}}, accept=accept
        )
        for response in (created, listed):
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == f"{accept}; charset=utf-8"
            # The text itself in UTF-8, not \u escapes (which take up to twice the bytes).
            assert UNICODE_TITLE.encode() in response.content
        assert created.json() == {"data": {"createTask": {"title": UNICODE_TITLE}}}
        assert [task["title"] for task in listed.json()["data"]["tasks"]] == [UNICODE_TITLE]
        assert await rest_titles(client) == [UNICODE_TITLE]

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_a_lone_surrogate_echoed_in_an_error_is_escaped(
        self, client: httpx.AsyncClient, accept: str
    ) -> None:
        # UTF-8 cannot carry a lone surrogate, so it stays a JSON escape, as the caller sent it.
        body = b'{"query": "query A { __typename }", "operationName": "\\ud800"}'
        response = await post(client, body, accept=accept)
        if accept == JSON:
            assert response.status_code == 200, response.text
            assert media_type(response) == JSON
        else:
            assert_request_error(
                response, 400, "GRAPHQL_VALIDATION_FAILED", answered_in=GRAPHQL_RESPONSE_JSON
            )
        errors = response.json()["errors"]
        assert [error["message"] for error in errors] == ['Unknown operation named "\ud800".']
        assert [error["extensions"]["code"] for error in errors] == ["GRAPHQL_VALIDATION_FAILED"]


# --- GET: queries only ---------------------------------------------------------------------------


class TestGet:
    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_query_with_variables_runs(self, client: httpx.AsyncClient, accept: str) -> None:
        await create_task(client, "alice", "Buy milk")
        params = {"query": TASKS, "variables": json.dumps({"userId": "alice"})}
        response = await get(client, params, accept=accept)
        assert response.status_code == 200, response.text
        assert media_type(response) == accept
        assert [task["title"] for task in response.json()["data"]["tasks"]] == ["Buy milk"]

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_mutation_is_405_with_allow_post_and_not_run(
        self, client: httpx.AsyncClient, accept: str
    ) -> None:
        response = await get(client, {"query": CREATE}, accept=accept)
        assert_request_error(response, 405, "METHOD_NOT_ALLOWED", answered_in=accept)
        assert response.headers["allow"] == "POST"
        assert await rest_titles(client) == []

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    async def test_mutation_chosen_by_operation_name_is_405(
        self, client: httpx.AsyncClient, accept: str
    ) -> None:
        document = f"query Read {{ __typename }} {CREATE}"
        refused = await get(client, {"query": document, "operationName": "Create"}, accept=accept)
        assert_request_error(refused, 405, "METHOD_NOT_ALLOWED", answered_in=accept)
        allowed = await get(client, {"query": document, "operationName": "Read"}, accept=accept)
        assert allowed.json() == {"data": {"__typename": "Query"}}
        assert await rest_titles(client) == []

    async def test_empty_operation_name_means_none(self, client: httpx.AsyncClient) -> None:
        response = await get(client, {"query": "{ __typename }", "operationName": ""})
        assert response.json() == {"data": {"__typename": "Query"}}

    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    @pytest.mark.parametrize(
        "params",
        [
            {"query": TASKS, "variables": "{not json"},
            {"query": TASKS, "variables": "[1]"},
            {"query": "{ __typename }", "extensions": "nope"},
            {"variables": "{}"},
        ],
        ids=["variables-not-json", "variables-not-object", "extensions-not-json", "no-query"],
    )
    async def test_malformed_parameters_are_400(
        self, client: httpx.AsyncClient, accept: str, params: dict[str, str]
    ) -> None:
        response = await get(client, params, accept=accept)
        assert_request_error(response, 400, "BAD_REQUEST", answered_in=accept)

    async def test_api_client_without_a_query_gets_400_not_the_ide(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await get(client, {}, accept="*/*")
        assert_request_error(response, 400, "BAD_REQUEST", answered_in=JSON)


# --- POST: malformed requests are 400 with a GraphQL error body, never 500 ----------------------

MALFORMED_BODIES: dict[str, object] = {
    "invalid JSON": b'{"query":',
    "not JSON": b"NONSENSE",
    "empty body": b"",
    "invalid UTF-8": b'{"query": "\xff\xfe"}',
    "absurdly nested JSON": b"[" * 100_000,
    "a batch": [{"query": "{ __typename }"}],
    "a number": 42,
    "null": None,
    "a string": "{ __typename }",
    "no query": {"qeury": "{ __typename }"},
    "null query": {"query": None},
    "query not a string": {"query": 42},
    "query a list": {"query": ["{ __typename }"]},
    "variables a list": {"query": TASKS, "variables": [7]},
    "variables a string": {"query": TASKS, "variables": '{"userId": "alice"}'},
    "operationName not a string": {"query": TASKS, "operationName": 5},
    "extensions not an object": {"query": "{ __typename }", "extensions": "x"},
}


class TestMalformedRequests:
    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    @pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
    async def test_is_400_with_a_graphql_error_body(
        self, client: httpx.AsyncClient, accept: str, body: object
    ) -> None:
        response = await post(client, body, accept=accept)
        assert_request_error(response, 400, "BAD_REQUEST", answered_in=accept)

    async def test_app_still_answers_afterwards(self, client: httpx.AsyncClient) -> None:
        for body in MALFORMED_BODIES.values():
            await post(client, body)
        response = await post(client, {"query": "{ __typename }"})
        assert response.json() == {"data": {"__typename": "Query"}}


# --- POST: the body must be application/json -----------------------------------------------------


class TestContentType:
    @pytest.mark.parametrize("accept", MEDIA_TYPES)
    @pytest.mark.parametrize(
        "content_type",
        [
            None,
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/graphql",
            "application/json; charset=latin-1",
        ],
    )
    async def test_anything_but_utf8_json_is_415_and_runs_nothing(
        self, client: httpx.AsyncClient, accept: str, content_type: str | None
    ) -> None:
        # text/plain and forms are what a cross-site page can send without a preflight.
        response = await post(client, {"query": CREATE}, accept=accept, content_type=content_type)
        assert_request_error(response, 415, "UNSUPPORTED_MEDIA_TYPE", answered_in=accept)
        assert await rest_titles(client) == []

    @pytest.mark.parametrize(
        "content_type", ["application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"']
    )
    async def test_json_with_a_utf8_charset_is_accepted(
        self, client: httpx.AsyncClient, content_type: str
    ) -> None:
        response = await post(client, {"query": CREATE}, content_type=content_type)
        assert response.status_code == 200, response.text
        assert await rest_titles(client) == ["Buy milk"]


# --- methods other than GET and POST -------------------------------------------------------------


class TestOtherMethods:
    @pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
    async def test_is_405_allowing_get_and_post(
        self, client: httpx.AsyncClient, method: str
    ) -> None:
        response = await client.request(method, "/graphql", json={"query": CREATE})
        assert_request_error(response, 405, "METHOD_NOT_ALLOWED", answered_in=JSON)
        assert response.headers["allow"] == "GET, POST"
        assert await rest_titles(client) == []

    async def test_head_is_405_without_a_body(self, client: httpx.AsyncClient) -> None:
        response = await client.head("/graphql")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.content == b""
