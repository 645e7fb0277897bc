"""Behaviour against real databases: persistence, migrations, masking and outages.

Every test talks to the app through its HTTP faces; the database is changed behind the app's back
only through a separate connection, and outages are real (a closed port, a missing directory, a
TCP proxy that is stopped and started again).
"""

import asyncio
import contextlib
import gc
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import make_url

from api.main import create_app
from api.storage.migrate import alembic_config, upgrade_database
from tests.conftest import client_for, make_settings, reset_postgres
from tests.factories import create_task, error_codes, graphql

PASSWORD = "s3cret-pw"
PROBLEM_JSON = "application/problem+json"
BOUND = 15  # seconds any one step may take before the test fails instead of hanging

TASKS_QUERY = "query ($userId: String!) { tasks(userId: $userId) { id title } }"
CREATE_MUTATION = """
mutation ($userId: String!, $title: String!) {
  createTask(userId: $userId, input: {title: $title}) { id title }
}
"""

# What must never reach a caller in an error body.
LEAKS = (
    "Traceback",
    "SELECT",
    "INSERT",
    "FROM ",
    "tasks",
    "sqlite",
    "postgres",
    "asyncpg",
    "relation",
    "no such table",
    "OperationalError",
    "ProgrammingError",
    "Exception",
    PASSWORD,
)
HEAD_REVISION = ScriptDirectory.from_config(alembic_config()).get_current_head()


# --- helpers -------------------------------------------------------------------------------


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run_sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own (not the app's) and return its rows."""
    if _is_sqlite(url):
        database = make_url(url).database
        assert database
        async with aiosqlite.connect(database) as connection:
            cursor = await connection.execute(sql)
            rows = [tuple(row) for row in await cursor.fetchall()]
            await connection.commit()
            return rows
    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        return [tuple(record) for record in await connection.fetch(sql)]
    finally:
        await connection.close()


async def table_names(url: str) -> set[str]:
    if _is_sqlite(url):
        rows = await run_sql(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = await run_sql(
            url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    return {str(row[0]) for row in rows}


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and hand out a client for it."""
    async with LifespanManager(app), client_for(app) as client:
        yield client


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def joining_new_sqlite_worker_threads() -> AsyncIterator[None]:
    """On exit, wait (bounded) for aiosqlite worker threads started inside the block.

    When `aiosqlite.connect()` fails, aiosqlite queues its worker thread's stop without awaiting
    it; if the test's event loop closes first, the thread dies with "Event loop is closed"
    (omnilib/aiosqlite#241). Joining while the loop still runs lets those threads end cleanly.
    """
    before = set(threading.enumerate())
    try:
        yield
    finally:
        for thread in set(threading.enumerate()) - before:
            if "_connection_worker_thread" in thread.name:
                await asyncio.to_thread(thread.join, BOUND)


def assert_masked_500(response: httpx.Response, url: str) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["error_type"] == "InternalError"
    assert body["status"] == 500
    assert_no_leaks(response.text, url)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["error_type"] == "DatabaseError"
    assert body["status"] == 503
    assert int(response.headers["retry-after"]) >= 1
    assert_no_leaks(response.text, "")
    assert PASSWORD not in str(response.headers)


def assert_no_leaks(text: str, url: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into {text!r}"
    if url:
        assert url not in text
        database = make_url(url).database
        if database:
            assert database not in text


# --- tests ---------------------------------------------------------------------------------


class TestDataSurvivesRestart:
    async def test_task_created_before_a_restart_is_there_after_it(self, database_url: str) -> None:
        settings = make_settings(database_url)
        async with asyncio.timeout(BOUND), running(create_app(settings)) as client:
            task = await create_task(client, "alice", "Survive the restart", description="d")

        async with asyncio.timeout(BOUND), running(create_app(settings)) as client:
            response = await client.get(f"/api/alice/tasks/{task['id']}")
            listing = await client.get("/api/alice/tasks")

        assert response.status_code == 200, response.text
        assert response.json() == task
        assert listing.json() == [task]


class TestMigrateOnStartupOff:
    async def test_app_starts_without_creating_tables(self, database_url: str) -> None:
        settings = make_settings(database_url, migrate_on_startup=False)

        async with asyncio.timeout(BOUND), running(create_app(settings)):
            pass

        assert "tasks" not in await table_names(database_url)
        assert "alembic_version" not in await table_names(database_url)

    async def test_requests_fail_masked_until_migrated_then_work(self, database_url: str) -> None:
        settings = make_settings(database_url, migrate_on_startup=False)

        async with asyncio.timeout(BOUND), running(create_app(settings)) as client:
            before = await client.get("/api/alice/tasks")
            assert_masked_500(before, database_url)

            await upgrade_database(settings)

            task = await create_task(client, "alice", "After the migration")
            listing = await client.get("/api/alice/tasks")

        assert listing.status_code == 200, listing.text
        assert listing.json() == [task]


class TestConcurrentMigrations:
    async def test_four_upgrades_at_once_leave_one_migrated_schema(self, database_url: str) -> None:
        settings = make_settings(database_url)

        async with asyncio.timeout(BOUND * 2):
            await asyncio.gather(*(upgrade_database(settings) for _ in range(4)))

        assert await run_sql(database_url, "SELECT version_num FROM alembic_version") == [
            (HEAD_REVISION,)
        ]
        assert {"tasks", "alembic_version"} <= await table_names(database_url)

        # And the schema is the app's: it serves requests without migrating again.
        app = create_app(make_settings(database_url, migrate_on_startup=False))
        async with asyncio.timeout(BOUND), running(app) as client:
            task = await create_task(client)
            listing = await client.get("/api/alice/tasks")
        assert listing.json() == [task]

    async def test_upgrade_is_idempotent(self, database_url: str) -> None:
        settings = make_settings(database_url)

        async with asyncio.timeout(BOUND):
            await upgrade_database(settings)
            await upgrade_database(settings)

        assert await run_sql(database_url, "SELECT version_num FROM alembic_version") == [
            (HEAD_REVISION,)
        ]


class TestUnexpectedErrorsAreMasked:
    async def test_dropped_table_gives_a_generic_500_and_internal_error(
        self, database_url: str
    ) -> None:
        settings = make_settings(database_url)

        async with asyncio.timeout(BOUND), running(create_app(settings)) as client:
            # A request first, so the app holds a pooled connection when the table goes.
            await create_task(client)
            await run_sql(database_url, "DROP TABLE tasks")

            rest = await client.get("/api/alice/tasks")
            created = await client.post("/api/alice/tasks", json={"title": "Lost"})
            body = await graphql(client, TASKS_QUERY, userId="alice")

        assert_masked_500(rest, database_url)
        assert_masked_500(created, database_url)

        assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
        (error,) = body["errors"]
        assert error["message"] == "Internal server error"
        # `path` names the GraphQL field (`tasks`); the message and extensions hold nothing more.
        assert_no_leaks(error["message"], database_url)
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


@pytest.fixture(params=["postgresql-closed-port", "sqlite-missing-directory"])
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL that cannot be connected to."""
    if request.param == "sqlite-missing-directory":
        return f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'tasks.db'}"
    return f"postgresql://tasks:{PASSWORD}@127.0.0.1:{free_port()}/tasks"


class TestDatabaseDown:
    @pytest.fixture
    async def down_client(self, unreachable_url: str) -> AsyncIterator[httpx.AsyncClient]:
        settings = make_settings(unreachable_url, migrate_on_startup=False, db_connect_timeout=1.0)
        async with joining_new_sqlite_worker_threads(), running(create_app(settings)) as client:
            yield client

    async def test_rest_list_answers_503(self, down_client: httpx.AsyncClient) -> None:
        async with asyncio.timeout(BOUND):
            response = await down_client.get("/api/alice/tasks")

        assert_unavailable(response)

    async def test_rest_create_answers_503(self, down_client: httpx.AsyncClient) -> None:
        async with asyncio.timeout(BOUND):
            response = await down_client.post(
                "/api/alice/tasks", json={"title": "Nowhere to go", "description": "x"}
            )

        assert_unavailable(response)

    async def test_rest_get_answers_503(self, down_client: httpx.AsyncClient) -> None:
        async with asyncio.timeout(BOUND):
            response = await down_client.get(
                "/api/alice/tasks/00000000-0000-0000-0000-000000000001"
            )

        assert_unavailable(response)

    async def test_graphql_answers_service_unavailable(
        self, down_client: httpx.AsyncClient
    ) -> None:
        async with asyncio.timeout(BOUND):
            query = await graphql(down_client, TASKS_QUERY, userId="alice")
            mutation = await graphql(down_client, CREATE_MUTATION, userId="alice", title="t")

        assert error_codes(query) == ["SERVICE_UNAVAILABLE"]
        assert error_codes(mutation) == ["SERVICE_UNAVAILABLE"]
        assert PASSWORD not in str(query)
        assert PASSWORD not in str(mutation)

    async def test_a_persisted_query_hash_answers_service_unavailable(
        self, down_client: httpx.AsyncClient
    ) -> None:
        persisted = {"version": 1, "sha256Hash": "0" * 64}
        async with asyncio.timeout(BOUND):
            response = await down_client.post(
                "/graphql", json={"extensions": {"persistedQuery": persisted}}
            )

        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert error_codes(response.json()) == ["SERVICE_UNAVAILABLE"]
        assert PASSWORD not in response.text

    async def test_health_answers_503(self, down_client: httpx.AsyncClient) -> None:
        async with asyncio.timeout(BOUND):
            response = await down_client.get("/health")

        assert response.status_code == 503, response.text
        assert response.json() == {"status": "unavailable"}
        assert PASSWORD not in response.text


class TcpProxy:
    """A TCP forwarder that can be stopped (every live connection cut) and started again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on the same port as before (any free port the first time)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every connection, as a database that went away would."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        except OSError:
            pass
        finally:
            for each in (writer, upstream_writer):
                if each is not None:
                    self._writers.discard(each)
                    each.transport.abort()
            self._handlers.discard(handler)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()


class TestRecovery:
    @pytest.fixture
    async def proxy(self, postgres_url: str) -> AsyncIterator[TcpProxy]:
        await reset_postgres(postgres_url)
        target = make_url(postgres_url)
        tcp_proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        await tcp_proxy.start()
        try:
            yield tcp_proxy
        finally:
            await tcp_proxy.stop()

    async def test_outage_gives_503_and_service_resumes_without_restart(
        self, postgres_url: str, proxy: TcpProxy
    ) -> None:
        proxied_url = (
            make_url(postgres_url)
            .set(host="127.0.0.1", port=proxy.port)
            .render_as_string(hide_password=False)
        )
        settings = make_settings(proxied_url, db_connect_timeout=1.0)

        async with running(create_app(settings)) as client:
            async with asyncio.timeout(BOUND):
                task = await create_task(client, "alice", "Before the outage")

            await proxy.stop()

            async with asyncio.timeout(BOUND):
                assert_unavailable(await client.get("/api/alice/tasks"))
                assert_unavailable(await client.get(f"/api/alice/tasks/{task['id']}"))
                assert_unavailable(await client.post("/api/alice/tasks", json={"title": "x"}))
                assert error_codes(await graphql(client, TASKS_QUERY, userId="alice")) == [
                    "SERVICE_UNAVAILABLE"
                ]
                health = await client.get("/health")
                assert health.status_code == 503, health.text

            await proxy.start()

            async with asyncio.timeout(BOUND):
                # Poll with real requests until the app is back; meanwhile only 503 is allowed.
                while (response := await client.get("/health")).status_code != 200:
                    assert response.status_code == 503, response.text
                assert response.json() == {"status": "ok"}

                listing = await client.get("/api/alice/tasks")
                after = await create_task(client, "alice", "After the outage")
                fetched = await client.get(f"/api/alice/tasks/{task['id']}")
                body = await graphql(client, TASKS_QUERY, userId="alice")

        assert listing.status_code == 200, listing.text
        assert listing.json() == [task]
        assert fetched.json() == task
        assert "errors" not in body
        assert [item["id"] for item in body["data"]["tasks"]] == [task["id"], after["id"]]


class TestHealth:
    async def test_health_is_ok_when_the_database_answers(self, client: httpx.AsyncClient) -> None:
        async with asyncio.timeout(BOUND):
            response = await client.get("/health")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


class TestPingAfterIdle:
    async def test_live_connection_is_pinged_and_kept(self, database_url: str) -> None:
        app = create_app(make_settings(database_url, db_ping_after_idle=0))
        opened: list[object] = []

        async with running(app) as client:
            task = await create_task(client, "alice", "first")
            # From here on the pool reuses its connection: a failed ping would open another.
            event.listen(
                app.state.store.engine.sync_engine, "connect", lambda *args: opened.append(args)
            )
            async with asyncio.timeout(BOUND):
                listing = await client.get("/api/alice/tasks")
                second = await create_task(client, "alice", "second")
                body = await graphql(client, TASKS_QUERY, userId="alice")
                health = await client.get("/health")

        assert listing.json() == [task]
        assert [item["id"] for item in body["data"]["tasks"]] == [task["id"], second["id"]]
        assert health.json() == {"status": "ok"}
        assert opened == []


class TestServingCollector:
    async def test_start_up_objects_are_frozen_while_serving_and_thawed_after(
        self, database_url: str
    ) -> None:
        async with running(create_app(make_settings(database_url))) as client:
            assert gc.get_freeze_count() > 0
            assert (await client.get("/api/alice/tasks")).status_code == 200
        assert gc.get_freeze_count() == 0
