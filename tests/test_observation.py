"""Seeing what the service does: request ids, log lines, metrics and traces, on both databases,
through the real app (REST, GraphQL's framework path and its compiled path)."""

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from api.observe import logs, metrics, tracing
from tests.apps import client_of
from tests.conftest import client_for, make_settings
from tests.factories import create_task, graphql
from tests.storage.test_database import free_port, joining_new_sqlite_worker_threads, running

METRICS_TOKEN = "metrics-token-for-the-tests"
NAMED_QUERY = "query Mine($u: String!) { tasks(userId: $u) { id title } }"
MISSING_TASK = "/api/alice/tasks/00000000-0000-0000-0000-000000000001"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(
        database_url, metrics_token=METRICS_TOKEN, access_log=True
    ) as observed_client:
        yield observed_client


class TestRequestIds:
    async def test_a_well_formed_id_is_echoed_in_the_header_and_the_problem_body(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get(MISSING_TASK, headers={"X-Request-ID": "edge-42.a:b/c"})

        assert response.status_code == 404
        assert response.headers["x-request-id"] == "edge-42.a:b/c"
        assert response.json()["request_id"] == "edge-42.a:b/c"

    @pytest.mark.parametrize(
        "sent",
        ["x" * 129, "two words", 'quote"d', "line\tbreak", ""],
        ids=["too-long", "space", "quote", "control", "empty"],
    )
    async def test_a_malformed_id_is_replaced_by_a_new_one(
        self, client: httpx.AsyncClient, sent: str
    ) -> None:
        response = await client.get(MISSING_TASK, headers={"X-Request-ID": sent})

        made = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        assert response.json()["request_id"] == made

    async def test_each_request_without_one_gets_its_own_on_every_face(
        self, client: httpx.AsyncClient
    ) -> None:
        answers = [
            await client.get("/api/alice/tasks"),
            await client.post("/graphql", json={"query": NAMED_QUERY, "variables": {"u": "a"}}),
            await client.post("/graphql", json={"query": NAMED_QUERY, "variables": {"u": "a"}}),
            await client.get("/health"),
            await client.post("/api/alice/tasks", content=b"{", headers={"Content-Type": "x"}),
        ]

        ids = [answer.headers["x-request-id"] for answer in answers]
        assert len(set(ids)) == len(ids)
        assert answers[-1].json()["request_id"] == ids[-1]

    async def test_off_by_setting(self, database_url: str) -> None:
        async with client_of(database_url, request_ids=False) as client:
            response = await client.get(MISSING_TASK, headers={"X-Request-ID": "given"})

        assert "x-request-id" not in response.headers
        assert "request_id" not in response.json()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log line, as the JSON setting writes them, for the length of the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def log_events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class TestLogLines:
    async def test_every_line_of_a_request_carries_its_id(
        self, database_url: str, json_log: io.StringIO, tmp_path: Path
    ) -> None:
        # A database that cannot be reached makes the service log inside the request, then the
        # edge logs the answer: both lines name the request.
        if database_url.startswith("sqlite"):
            unreachable = f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'tasks.db'}"
        else:
            unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/tasks"
        down = make_settings(unreachable, migrate_on_startup=False, access_log=True)
        async with (
            joining_new_sqlite_worker_threads(),
            running(create_app(down)) as client,
        ):
            response = await client.get("/api/alice/tasks", headers={"X-Request-ID": "follow-me"})

        assert response.status_code == 503
        assert response.json()["request_id"] == "follow-me"
        mine = [event for event in log_events(json_log) if event.get("request_id") == "follow-me"]
        assert {event["logger"] for event in mine} >= {"api.storage.failures", "api.access"}
        access = next(event for event in mine if event["logger"] == "api.access")
        assert access["message"] == "GET /api/{user_id}/tasks 503"
        assert access["duration_ms"] >= 0

    async def test_the_access_line_names_the_route_and_operation_never_the_query_text(
        self, client: httpx.AsyncClient, json_log: io.StringIO
    ) -> None:
        secret_title = "buy a present for Alice"
        await create_task(client, "alice", secret_title)
        query = 'query Secret { tasks(userId: "alice", search: "' + secret_title + '") { id } }'
        await client.get("/graphql", params={"query": query})

        access = [event for event in log_events(json_log) if event["logger"] == "api.access"]
        assert [event["message"] for event in access] == [
            "POST /api/{user_id}/tasks 201",
            "GET /graphql 200",
        ]
        assert access[1]["operation"] == "query Secret"
        assert secret_title not in json_log.getvalue()

    def test_uvicorns_access_line_loses_the_query_string(self) -> None:
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", "/graphql?query=secret+task+text", "1.1", 200),
            None,
        )

        assert logs.WithoutQueryStrings().filter(record)
        line = logs.TextFormatter().format(record)
        assert "secret" not in line
        assert '"GET /graphql?... HTTP/1.1" 200' in line

    def test_a_line_never_shows_a_password_or_token_and_stays_one_line(self) -> None:
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
        try:
            raise RuntimeError("connect postgresql://app:hunter2@db.example.com/tasks failed")
        except RuntimeError:
            record = logging.LogRecord(
                "api.x", logging.ERROR, __file__, 1, "token %s / Bearer %s", (jwt, "opaque"), None
            )
            record.exc_info = sys.exc_info()
        for formatter in (logs.TextFormatter(), logs.JsonFormatter()):
            line = formatter.format(record)
            assert "\n" not in line
            for secret in ("hunter2", jwt, "opaque"):
                assert secret not in line
            assert "db.example.com" in line
        assert json.loads(logs.JsonFormatter().format(record))["exception"].startswith("Traceback")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def requests_of(scraped: dict[Any, float], **labels: str) -> float:
    base = {"method": "GET", "operation": "", "code": "", "status": "200"}
    return value(scraped, "task_api_requests_total", **{**base, **labels})


class TestMetrics:
    async def test_requests_are_counted_by_route_operation_status_and_code(
        self, client: httpx.AsyncClient
    ) -> None:
        before = await scrape(client)
        await client.get(MISSING_TASK)
        await client.get("/api/bob/tasks")
        # The first sighting takes the framework's path, the second the compiled one.
        for _ in range(2):
            await graphql(client, NAMED_QUERY, u="alice")
        await graphql(client, 'mutation { createTask(userId: "a", input: {title: ""}) { id } }')
        await client.get("/no/such/path")
        after = await scrape(client)

        def grew(**labels: str) -> float:
            return requests_of(after, **labels) - requests_of(before, **labels)

        assert grew(route="/api/{user_id}/tasks/{task_id}", status="404") == 1
        assert grew(route="/api/{user_id}/tasks") == 1
        assert grew(method="POST", route="/graphql", operation="query Mine") == 2
        assert (
            grew(method="POST", route="/graphql", operation="mutation", code="BAD_USER_INPUT") == 1
        )
        assert grew(route="unmatched", status="404") == 1
        latency = "task_api_request_duration_seconds_count"
        route = {"route": "/graphql", "operation": "query Mine"}
        assert value(after, latency, **route) - value(before, latency, **route) == 2

    async def test_requests_reach_the_metrics_without_a_scrape(
        self, client: httpx.AsyncClient
    ) -> None:
        """Requests are counted in memory and written out once a second by each process (and
        at each scrape), so another worker's scrape sees them within about a second."""

        def from_the_files() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            return samples(metrics.exposition()[0].decode())

        route = "/api/{user_id}/tasks"
        before = requests_of(from_the_files(), route=route)
        await client.get("/api/bob/tasks")
        after = before
        async with asyncio.timeout(10):
            while after == before:
                await asyncio.sleep(0.05)
                after = requests_of(from_the_files(), route=route)

        assert after - before == 1

    def test_a_burst_is_written_out_before_it_grows_past_the_bound(self) -> None:
        request_metrics = metrics.RequestMetrics()
        request_metrics.MAX_PENDING = 3
        labels = {"method": "GET", "route": "/bound-test", "operation": "", "status": "200"}
        before = samples(metrics.exposition()[0].decode())
        for _ in range(5):
            request_metrics.observe("GET", "/bound-test", "", 200, "", 0.001)
        after = samples(metrics.exposition()[0].decode())

        counted = requests_of(after, **labels) - requests_of(before, **labels)
        assert counted == 3  # the first three, at the bound; two wait for the next sample
        request_metrics.publish()
        assert requests_of(samples(metrics.exposition()[0].decode()), **labels) == (
            requests_of(before, **labels) + 5
        )

    async def test_the_pool_is_seen_in_use_waiting_and_timing_out(self, database_url: str) -> None:
        async with client_of(
            database_url, metrics_public=True, db_pool_size=1, db_pool_timeout=0.5
        ) as client:
            store = client.app.state.store  # type: ignore[attr-defined]
            before = await client.get("/metrics")
            async with store.session():  # holds the only slot
                held = samples((await client.get("/metrics")).text)
                waiting = asyncio.ensure_future(client.get("/api/alice/tasks"))
                async with asyncio.timeout(10):
                    while not waiting.done():
                        seen = samples((await client.get("/metrics")).text)
                        if value(seen, "task_api_db_pool_waiting") == 1:
                            break
                        await asyncio.sleep(0.01)
                response = await waiting
            after = samples((await client.get("/metrics")).text)

        first = samples(before.text)
        assert value(held, "task_api_db_pool_in_use") == value(first, "task_api_db_pool_in_use") + 1
        assert value(seen, "task_api_db_pool_waiting") == 1
        assert response.status_code == 503
        assert value(after, "task_api_db_pool_waiting") == 0
        assert value(after, "task_api_db_pool_in_use") == value(first, "task_api_db_pool_in_use")
        for name, labels in [
            ("task_api_db_pool_timeouts_total", {}),
            ("task_api_unavailable_total", {"cause": "pool_timeout"}),
        ]:
            assert value(after, name, **labels) == value(first, name, **labels) + 1

    async def test_idempotency_replays_are_counted(self, client: httpx.AsyncClient) -> None:
        before = await scrape(client)
        for _ in range(3):
            await client.post(
                "/api/alice/tasks", json={"title": "once"}, headers={"Idempotency-Key": "k-1"}
            )
        after = await scrape(client)

        name = "task_api_idempotency_replays_total"
        assert value(after, name) - value(before, name) == 2

    async def test_metrics_need_the_token(self, client: httpx.AsyncClient) -> None:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})

        assert missing.status_code == wrong.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"

    async def test_without_a_token_metrics_are_not_served_unless_public(
        self, database_url: str
    ) -> None:
        async with client_of(database_url) as client:
            hidden = await client.get("/metrics")
        async with client_of(database_url, metrics_public=True) as client:
            public = await client.get("/metrics")

        assert hidden.status_code == 404
        assert public.status_code == 200
        assert "task_api_requests_total" in public.text


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_client(
    database_url: str, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = create_app(make_settings(database_url), tracer_provider=provider)
    async with LifespanManager(app), client_for(app) as client:
        spans.clear()  # the start-up's statements
        yield client


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]


def children(spans: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in spans.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


class TestTraces:
    async def test_one_span_per_request_with_the_operation_and_database_spans(
        self, traced_client: httpx.AsyncClient, spans: InMemorySpanExporter
    ) -> None:
        await create_task(traced_client, "alice", "traced")
        for _ in range(2):  # the framework's path, then the compiled one
            await graphql(traced_client, NAMED_QUERY, u="alice")

        rest, *graphql_spans = server_spans(spans)
        assert rest.name == "POST /api/{user_id}/tasks"
        assert rest.attributes is not None
        assert rest.attributes["http.response.status_code"] == 201
        assert len(graphql_spans) == 2
        for span in graphql_spans:
            assert span.name == "POST /graphql"
            assert span.attributes is not None
            assert span.attributes["graphql.operation.type"] == "query"
            assert span.attributes["graphql.operation.name"] == "Mine"
            assert re.fullmatch(r"[0-9a-f]{32}", str(span.attributes["task_api.request_id"]))
            database = children(spans, span)
            assert database, "no database span under the request's"
            assert all(child.kind is SpanKind.CLIENT for child in database)
            assert any(
                "SELECT" in str((child.attributes or {}).get("db.query.text")) for child in database
            )
        assert children(spans, rest)
        everything = json.dumps([str(span.attributes) for span in spans.get_finished_spans()])
        assert "traced" not in everything  # the task's text is a value, never sent

    async def test_creates_at_once_each_have_their_insert_under_their_request(
        self, traced_client: httpx.AsyncClient, spans: InMemorySpanExporter
    ) -> None:
        # On PostgreSQL they may go to the database in one batch (api/storage/batched.py); each
        # request's trace still shows its INSERT.
        users = [f"user-{number}" for number in range(8)]
        await asyncio.gather(*(create_task(traced_client, user, "traced") for user in users))
        requests = server_spans(spans)
        assert len(requests) == len(users)
        for request in requests:
            inserts = [
                child
                for child in children(spans, request)
                if "INSERT" in str((child.attributes or {}).get("db.query.text"))
            ]
            assert len(inserts) == 1, [child.attributes for child in children(spans, request)]
            assert inserts[0].kind is SpanKind.CLIENT

    async def test_a_callers_trace_is_continued(
        self, traced_client: httpx.AsyncClient, spans: InMemorySpanExporter
    ) -> None:
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        await traced_client.get(
            "/api/alice/tasks", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
        )

        (span,) = server_spans(spans)
        assert format(span.context.trace_id, "032x") == trace_id  # type: ignore[union-attr]
        assert span.parent is not None
        assert span.parent.span_id == 0x00F067AA0BA902B7


GLOBAL_PROVIDER_SCRIPT = """
import asyncio, sys
import httpx
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from api.config import Settings
from api.main import create_app

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)

async def main() -> None:
    app = create_app(Settings(_env_file=None, database_url=sys.argv[1]))
    transport = httpx.ASGITransport(app=app)
    async with LifespanManager(app), httpx.AsyncClient(
        transport=transport, base_url="http://test"
    ) as client:
        listed = await client.get("/api/alice/tasks")
        query = {"query": "query Mine { tasks(userId: \\"alice\\") { id } }"}
        answered = [(await client.post("/graphql", json=query)).status_code for _ in range(2)]
    print(listed.status_code, *answered, len(spans.get_finished_spans()))

asyncio.run(main())
"""


class TestGlobalProvider:
    def test_a_global_provider_gets_no_span_of_the_framework(self, database_url: str) -> None:
        """Traces come from the service's own provider only (none here): a provider set as
        OpenTelemetry's global one (by an agent, say) gets no second span per request."""
        finished = subprocess.run(
            [sys.executable, "-c", GLOBAL_PROVIDER_SCRIPT, database_url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "OTEL_SDK_DISABLED": "", "OTEL_TRACES_EXPORTER": "none"},
        )
        assert finished.returncode == 0, finished.stderr
        assert finished.stdout.split() == ["200", "200", "200", "0"]


class TestTracingSettings:
    def test_nothing_asked_means_no_provider(self) -> None:
        assert tracing.provider_from_environment({}) is None
        assert tracing.provider_from_environment({"OTEL_TRACES_EXPORTER": "none"}) is None
        disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
        assert tracing.provider_from_environment(disabled) is None

    @pytest.mark.parametrize(
        "environment",
        [
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
            {"OTEL_TRACES_EXPORTER": "console"},
        ],
        ids=["otlp-endpoint", "console"],
    )
    def test_the_standard_settings_turn_it_on(self, environment: dict[str, str]) -> None:
        provider = tracing.provider_from_environment(environment)

        assert isinstance(provider, TracerProvider)
        provider.shutdown()

    @pytest.mark.parametrize(
        ("environment", "named"),
        [
            ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
            (
                {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
        ],
    )
    def test_what_it_cannot_do_is_refused_by_name(
        self, environment: dict[str, str], named: str
    ) -> None:
        with pytest.raises(tracing.TracingSettingsError, match=named):
            tracing.provider_from_environment(environment)
