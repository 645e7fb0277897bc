"""Hostile requests: GraphQL documents past the limits, oversized bodies, CORS, and headers."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from graphql import get_introspection_query

from tests.apps import app_of, client_of, running, sql_statements, stored_tasks
from tests.tokens import SECRET, bearer, hmac_token

LIMIT_CODE = "GRAPHQL_VALIDATION_FAILED"
ORIGIN = "https://app.example.com"


async def post_graphql(
    client: httpx.AsyncClient, query: str, **payload: Any
) -> tuple[int, dict[str, Any]]:
    response = await client.post("/graphql", json={"query": query, **payload})
    body: dict[str, Any] = response.json()
    return response.status_code, body


def limit_messages(body: dict[str, Any]) -> list[str]:
    """The messages of a refused document; asserts nothing ran and every error has the code."""
    assert body.get("data") is None, body
    assert body["errors"], body
    assert {error["extensions"]["code"] for error in body["errors"]} == {LIMIT_CODE}, body
    return [error["message"] for error in body["errors"]]


def aliased_creates(count: int) -> str:
    fields = " ".join(
        f'c{n}: createTask(userId: "alice", input: {{title: "flood {n}"}}) {{ id }}'
        for n in range(count)
    )
    return f"mutation {{ {fields} }}"


def fragment_fan_out(levels: int) -> str:
    """Each fragment spreads the next twice: 2**levels aliases once expanded, in ~40 bytes/level."""
    fragments = [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ a: __typename }}")
    return "query { ...F0 }\n" + "\n".join(fragments)


@pytest.fixture
async def small_limits(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = {"graphql_max_depth": 1, "graphql_max_aliases": 2, "max_body_bytes": 4096}
    async with client_of(database_url, **settings) as client:
        yield client


class TestGraphQLDepth:
    async def test_depth_bomb_is_rejected(self, client: httpx.AsyncClient) -> None:
        query = "{" + 'tasks(userId: "alice") {' * 12 + "id" + "}" * 12 + "}"
        status, body = await post_graphql(client, query)
        assert status == 200
        assert "The operation is 13 levels deep; the limit is 10" in limit_messages(body)

    async def test_a_valid_query_deeper_than_the_setting_runs_no_sql(
        self, small_limits: httpx.AsyncClient
    ) -> None:
        with sql_statements(app_of(small_limits)) as statements:
            _, body = await post_graphql(small_limits, '{ tasks(userId: "alice") { id } }')
        assert limit_messages(body) == ["The operation is 2 levels deep; the limit is 1"]
        assert statements == []

    async def test_depth_through_fragments_is_counted(
        self, small_limits: httpx.AsyncClient
    ) -> None:
        query = """
        query Nested { ...Outer }
        fragment Outer on Query { ... on Query { ...Inner } }
        fragment Inner on Query { tasks(userId: "alice") { id } }
        """
        _, body = await post_graphql(small_limits, query)
        assert limit_messages(body) == ["'Nested' is 2 levels deep; the limit is 1"]

    async def test_a_query_within_the_depth_runs(self, small_limits: httpx.AsyncClient) -> None:
        _, body = await post_graphql(small_limits, "{ __typename }")
        assert body == {"data": {"__typename": "Query"}}

    async def test_graphiqls_introspection_query_passes_the_default_limits(
        self, client: httpx.AsyncClient
    ) -> None:
        query = get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        )
        _, body = await post_graphql(client, query)
        assert "errors" not in body
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"


class TestGraphQLAliases:
    async def test_alias_flood_is_rejected_and_writes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        with sql_statements(app) as statements:
            _, body = await post_graphql(client, aliased_creates(16))
        assert limit_messages(body) == [
            "The document uses 16 aliases (counting each fragment spread); the limit is 15"
        ]
        assert statements == []
        assert await stored_tasks(app) == []

    async def test_aliases_up_to_the_limit_run(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        _, body = await post_graphql(client, aliased_creates(15))
        assert "errors" not in body, body
        assert len(await stored_tasks(app)) == 15

    async def test_fragment_fan_out_is_counted_and_refused_quickly(
        self, client: httpx.AsyncClient
    ) -> None:
        # 2**40 aliases once expanded: a limiter that walked each spread would never finish (and,
        # running on the event loop, could not be timed out), let alone report this count.
        _, body = await post_graphql(client, fragment_fan_out(40))
        assert limit_messages(body) == [
            f"The document uses {2**40} aliases (counting each fragment spread); the limit is 15"
        ]

    async def test_aliases_of_every_operation_in_the_document_add_up(
        self, small_limits: httpx.AsyncClient
    ) -> None:
        document = """
        query One { a: __typename }
        query Two { b: __typename }
        query Three { c: __typename }
        """
        _, body = await post_graphql(small_limits, document, operationName="One")
        assert limit_messages(body) == [
            "The document uses 3 aliases (counting each fragment spread); the limit is 2"
        ]


class TestGraphQLSize:
    async def test_token_flood_is_rejected(self, client: httpx.AsyncClient) -> None:
        _, body = await post_graphql(client, "{" + " __typename" * 500 + "}")
        assert limit_messages(body) == [
            "Syntax Error: Document contains more than 500 tokens. Parsing aborted."
        ]

    async def test_token_flood_in_several_operations_is_rejected_by_the_token_limit(
        self, client: httpx.AsyncClient
    ) -> None:
        # Counting the operations (for a request without operationName) stops at the same limit.
        flood = "query A {" + " __typename" * 500 + "} query B { __typename }"
        _, body = await post_graphql(client, flood)
        assert limit_messages(body) == [
            "Syntax Error: Document contains more than 500 tokens. Parsing aborted."
        ]

    async def test_oversized_query_text_is_rejected_before_parsing(
        self, client: httpx.AsyncClient
    ) -> None:
        # Not even valid GraphQL: only a check made before parsing answers with the length.
        _, body = await post_graphql(client, "{" * 70_000)
        assert limit_messages(body) == [
            "The query text is 70000 characters long; the limit is 65536"
        ]

    async def test_a_long_inline_description_fits_the_default_limits(
        self, client: httpx.AsyncClient
    ) -> None:
        description = "é" * 10_000
        query = (
            'mutation { createTask(userId: "alice", input: '
            f'{{title: "long", description: "{description}"}}) {{ id description }} }}'
        )
        _, body = await post_graphql(client, query)
        assert body["data"]["createTask"]["description"] == description


class TestGraphQLBatching:
    async def test_a_batch_of_operations_is_refused_and_runs_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        batch = [{"query": aliased_creates(15)} for _ in range(3)]
        response = await client.post("/graphql", json=batch)
        assert response.status_code == 400
        assert await stored_tasks(app) == []

    async def test_only_the_named_operation_of_a_document_runs(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        document = """
        mutation First { createTask(userId: "alice", input: {title: "first"}) { id } }
        mutation Second { createTask(userId: "alice", input: {title: "second"}) { id } }
        """
        _, body = await post_graphql(client, document, operationName="Second")
        assert "errors" not in body, body
        assert [task["title"] for task in await stored_tasks(app)] == ["second"]

    async def test_limits_apply_to_queries_sent_with_get(self, client: httpx.AsyncClient) -> None:
        query = "{" + " ".join(f"a{n}: __typename" for n in range(16)) + "}"
        response = await client.get("/graphql", params={"query": query})
        assert limit_messages(response.json()) == [
            "The document uses 16 aliases (counting each fragment spread); the limit is 15"
        ]


class TestGraphQLDocumentCache:
    """Parsed documents are cached; every send must still be answered and limited as the first."""

    async def test_a_syntax_error_is_coded_on_every_send(self, client: httpx.AsyncClient) -> None:
        headers = {"Accept": "application/graphql-response+json"}
        for _ in range(2):
            response = await client.post("/graphql", json={"query": "{ tasks("}, headers=headers)
            # The status comes from the error's code, so a lost code would also lose the 400.
            assert response.status_code == 400, response.text
            assert limit_messages(response.json()) == ["Syntax Error: Expected Name, found <EOF>."]

    async def test_a_valid_document_runs_afresh_on_every_send(
        self, client: httpx.AsyncClient
    ) -> None:
        create = 'mutation { createTask(userId: "alice", input: {title: "again"}) { title } }'
        listing = '{ tasks(userId: "alice") { title } }'
        for count in (1, 2):
            _, created = await post_graphql(client, create)
            assert created == {"data": {"createTask": {"title": "again"}}}
            _, listed = await post_graphql(client, listing)
            assert listed == {"data": {"tasks": [{"title": "again"}] * count}}

    async def test_limits_refuse_the_same_document_on_every_send(
        self, client: httpx.AsyncClient
    ) -> None:
        too_deep = "{" + 'tasks(userId: "alice") {' * 12 + "id" + "}" * 12 + "}"
        refusals = {
            too_deep: "The operation is 13 levels deep; the limit is 10",
            aliased_creates(16): (
                "The document uses 16 aliases (counting each fragment spread); the limit is 15"
            ),
            "{" + " __typename" * 500 + "}": (
                "Syntax Error: Document contains more than 500 tokens. Parsing aborted."
            ),
            "{" * 70_000: "The query text is 70000 characters long; the limit is 65536",
        }
        for document, message in refusals.items():
            for _ in range(2):
                _, body = await post_graphql(client, document)
                assert message in limit_messages(body)

    async def test_a_document_parsed_under_a_larger_token_limit_is_refused_under_a_smaller(
        self, client: httpx.AsyncClient, database_url: str
    ) -> None:
        document = "{ a: __typename b: __typename c: __typename }"
        _, body = await post_graphql(client, document)
        assert body == {"data": {"a": "Query", "b": "Query", "c": "Query"}}
        async with client_of(database_url, graphql_max_tokens=5) as strict:
            _, body = await post_graphql(strict, document)
        assert limit_messages(body) == [
            "Syntax Error: Document contains more than 5 tokens. Parsing aborted."
        ]


class TestIntrospectionSwitch:
    async def test_introspection_and_graphiql_are_on_by_default(
        self, client: httpx.AsyncClient
    ) -> None:
        _, body = await post_graphql(client, "{ __schema { queryType { name } } }")
        assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200

    async def test_the_switch_turns_both_off(self, database_url: str) -> None:
        async with client_of(database_url, graphql_introspection=False) as client:
            _, schema = await post_graphql(client, "{ __schema { queryType { name } } }")
            _, type_ = await post_graphql(client, '{ __type(name: "Task") { name } }')
            page = await client.get("/graphql", headers={"Accept": "text/html"})
            _, typename = await post_graphql(client, "{ __typename }")
            _, tasks = await post_graphql(client, '{ tasks(userId: "alice") { id } }')
        assert "introspection" in limit_messages(schema)[0].lower()
        assert "introspection" in limit_messages(type_)[0].lower()
        # Without the IDE, a client that accepts only HTML gets no page it can take.
        assert page.status_code == 406
        assert "graphiql" not in page.text.lower()
        assert typename == {"data": {"__typename": "Query"}}
        assert tasks == {"data": {"tasks": []}}


def websocket_scope(path: str, protocol: str) -> dict[str, Any]:
    """A WebSocket handshake, as ASGI servers hand it to the app."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"sec-websocket-protocol", protocol.encode())],
        "subprotocols": [protocol],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def handshake(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """What `app` sends to a client that connects and then goes away."""
    incoming = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


class TestWebSocketProtocols:
    async def test_only_graphql_transport_ws_is_spoken(self, database_url: str) -> None:
        """The legacy `graphql-ws` (subscriptions-transport-ws) protocol is refused with 4406;
        subscriptions speak `graphql-transport-ws` (tests/test_live_updates.py)."""
        async with running(database_url) as app:
            sent = await handshake(app, websocket_scope("/graphql", "graphql-ws"))
        assert [message["type"] for message in sent] == ["websocket.accept", "websocket.close"]
        assert sent[0].get("subprotocol") is None
        assert sent[1]["code"] == 4406

    async def test_graphql_sockets_are_served_in_front_of_the_routing(
        self, database_url: str
    ) -> None:
        """GraphQL's WebSocket is handed to its handler before any middleware or route
        (api.web.edge.WebSocketRoutes), which keeps an idle subscription smaller; the app's
        routing has no WebSocket route of its own, and a socket anywhere else is refused."""
        async with running(database_url) as app:
            served = await handshake(app, websocket_scope("/graphql", "graphql-transport-ws"))
            routed = await handshake(
                app.router, websocket_scope("/graphql", "graphql-transport-ws")
            )
            elsewhere = await handshake(
                app, websocket_scope("/api/alice/tasks", "graphql-transport-ws")
            )
        assert served[0] == {
            "type": "websocket.accept",
            "subprotocol": "graphql-transport-ws",
            "headers": [],
        }
        assert [message["type"] for message in routed] == ["websocket.close"]
        assert [message["type"] for message in elsewhere] == ["websocket.close"]


class TestBodyLimit:
    async def test_a_declared_oversized_body_is_413_without_reading_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        chunks_read = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal chunks_read
            for _ in range(32):
                chunks_read += 1
                yield b" " * 65_536

        response = await client.post(
            "/api/alice/tasks",
            content=body(),
            headers={"content-type": "application/json", "content-length": str(32 * 65_536)},
        )
        assert_413(response, 1_048_576)
        assert chunks_read == 0
        assert await stored_tasks(app) == []

    @pytest.mark.parametrize("path", ["/api/alice/tasks", "/graphql"])
    async def test_a_streamed_oversized_body_is_cut_off(
        self, client: httpx.AsyncClient, app: FastAPI, path: str
    ) -> None:
        chunks_read = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal chunks_read
            yield b'{"title": "x", "description": "'
            for _ in range(64):
                chunks_read += 1
                yield b"x" * 65_536
            yield b'"}'

        response = await client.post(
            path, content=body(), headers={"content-type": "application/json"}
        )
        assert_413(response, 1_048_576)
        # 1 MiB is 16 chunks; the one that passes the limit is the last one read.
        assert chunks_read <= 17
        assert await stored_tasks(app) == []

    async def test_a_body_at_the_limit_is_accepted(self, small_limits: httpx.AsyncClient) -> None:
        payload = json.dumps({"title": "fits"}).encode()
        exact = payload[:-1] + b" " * (4096 - len(payload)) + b"}"
        assert len(exact) == 4096
        response = await small_limits.post(
            "/api/alice/tasks", content=exact, headers={"content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
        over = await small_limits.post(
            "/api/alice/tasks", content=exact + b" ", headers={"content-type": "application/json"}
        )
        assert_413(over, 4096)

    async def test_the_limit_comes_before_authentication(self, database_url: str) -> None:
        async with client_of(database_url, auth_jwt_secret=SECRET) as client:
            response = await client.post("/graphql", content=b"x" * 1_048_577)
        assert_413(response, 1_048_576)


def assert_413(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["connection"] == "close"
    # The request's id, as every problem+json body carries it (api.web.observation).
    assert response.json().pop("request_id") == response.headers["x-request-id"]
    assert {key: value for key, value in response.json().items() if key != "request_id"} == {
        "title": "Content Too Large",
        "status": 413,
        "detail": f"The request body is larger than the limit of {limit} bytes",
        "error_type": "PayloadTooLargeError",
    }


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def preflight(method: str = "PUT", origin: str = ORIGIN) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@pytest.fixture
async def cors_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = {"cors_allowed_origins": [ORIGIN], "auth_jwt_secret": SECRET}
    async with client_of(database_url, **settings) as client:
        yield client


class TestCors:
    @pytest.mark.parametrize(
        ("path", "method"), [("/api/alice/tasks/x", "PUT"), ("/graphql", "POST")]
    )
    async def test_preflight_from_an_allowed_origin_is_granted_without_a_token(
        self, cors_client: httpx.AsyncClient, path: str, method: str
    ) -> None:
        response = await cors_client.options(path, headers=preflight(method))
        assert response.status_code == 200
        headers = cors_headers(response)
        assert headers["access-control-allow-origin"] == ORIGIN
        assert method in headers["access-control-allow-methods"]
        allowed = headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed
        assert "content-type" in allowed

    async def test_preflight_from_another_origin_gets_no_cors_headers(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        response = await cors_client.options(
            "/api/alice/tasks", headers=preflight(origin="https://evil.example")
        )
        assert response.status_code == 400
        assert cors_headers(response) == {}

    async def test_an_allowed_origin_may_read_the_answer_and_its_location(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        response = await cors_client.post(
            "/api/alice/tasks",
            json={"title": "x"},
            headers={"Origin": ORIGIN, **bearer(hmac_token(secret=SECRET, iss=None, aud=None))},
        )
        assert response.status_code == 201
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "Location" in response.headers["access-control-expose-headers"]

    async def test_another_origin_gets_no_cors_headers(
        self, cors_client: httpx.AsyncClient
    ) -> None:
        response = await cors_client.get(
            "/api/alice/tasks",
            headers={
                "Origin": "https://evil.example",
                **bearer(hmac_token(secret=SECRET, iss=None, aud=None)),
            },
        )
        assert response.status_code == 200
        assert cors_headers(response) == {}

    async def test_no_origin_is_allowed_by_default(self, client: httpx.AsyncClient) -> None:
        response = await client.options("/api/alice/tasks", headers=preflight())
        assert cors_headers(response) == {}
        simple = await client.get("/api/alice/tasks", headers={"Origin": ORIGIN})
        assert cors_headers(simple) == {}


class TestResponseHeaders:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/health", 200),
            ("GET", "/docs", 200),
            ("GET", "/openapi.json", 200),
            ("GET", "/nowhere", 404),
            ("GET", "/api/alice/tasks", 200),
            ("GET", "/api/alice/tasks/nope", 404),
            ("POST", "/graphql", 200),
        ],
    )
    async def test_nosniff_everywhere(
        self, client: httpx.AsyncClient, method: str, path: str, status: int
    ) -> None:
        body = {"query": "{ __typename }"} if path == "/graphql" else None
        response = await client.request(method, path, json=body)
        assert response.status_code == status
        assert response.headers["x-content-type-options"] == "nosniff"

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/api/alice/tasks", 200),
            ("POST", "/api/alice/tasks", 201),
            ("GET", "/api/alice/tasks/nope", 404),
            ("POST", "/graphql", 200),
            ("GET", "/graphql?query={__typename}", 200),
        ],
    )
    async def test_task_data_is_never_stored_by_caches(
        self, client: httpx.AsyncClient, method: str, path: str, status: int
    ) -> None:
        body = (
            {"query": "{ __typename }"}
            if path == "/graphql"
            else ({"title": "x"} if method == "POST" else None)
        )
        response = await client.request(method, path, json=body)
        assert response.status_code == status
        assert response.headers["cache-control"] == "no-store"

    async def test_refusals_are_not_stored_by_caches_either(self, database_url: str) -> None:
        async with client_of(database_url, auth_jwt_secret=SECRET) as client:
            rest = await client.get("/api/alice/tasks")
            graphql = await client.post("/graphql", json={"query": "{ __typename }"})
        for response in (rest, graphql):
            assert response.status_code == 401
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-content-type-options"] == "nosniff"
