"""Database faults on PostgreSQL: killed connections cost only the requests in flight.

(And a write that meets a connection killed within `db_ping_after_idle` of its last use: see
TestPingAfterIdle.)

Connections are killed with pg_terminate_backend from a separate connection to the scratch
database, which is what a database restart or failover does to a pool. The app runs in-process
(httpx ASGITransport) and is never restarted between a fault and the requests after it.
"""

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from api.main import create_app
from api.storage.events import LISTENER_NAME
from api.tasks import errors
from api.tasks.service import TaskService
from api.tasks.shapes import TaskCreate
from tests.conftest import _asyncpg_dsn, client_for, make_settings, reset_postgres
from tests.factories import create_task, error_codes, graphql
from tests.rest.test_rest import assert_problem

pytestmark = pytest.mark.slow

# The pool's connections: not the process's LISTEN connection for live updates (its loss is
# tested in tests/test_live_updates.py).
KILL_APP_CONNECTIONS = f"""
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND NOT (pid = ANY($1::int[]))
  AND application_name <> '{LISTENER_NAME}'
"""
WAITING_ON_A_LOCK = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""
# Every request is answered within this many seconds, or the test fails: no hangs.
ANSWER_WITHIN = 30


@pytest.fixture
async def pg_app(postgres_url: str) -> AsyncIterator[FastAPI]:
    await reset_postgres(postgres_url)
    application = create_app(make_settings(postgres_url))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def pg_client(pg_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(pg_app) as http_client:
        yield http_client


async def _connect(postgres_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_asyncpg_dsn(postgres_url), timeout=5)


@pytest.fixture
async def admin(postgres_url: str, pg_app: FastAPI) -> AsyncIterator[asyncpg.Connection]:
    """A connection outside the app's pool, which kills the app's connections and counts rows."""
    connection = await _connect(postgres_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def locker(postgres_url: str, pg_app: FastAPI) -> AsyncIterator[asyncpg.Connection]:
    """Another outside connection, which holds locks so that a request waits in flight."""
    connection = await _connect(postgres_url)
    try:
        yield connection
    finally:
        await connection.close()


async def kill_app_connections(admin: asyncpg.Connection, *spared: asyncpg.Connection) -> int:
    """Terminate every connection to the database except the admin's and the `spared` ones."""
    keep = [connection.get_server_pid() for connection in spared]
    killed: int = await admin.fetchval(KILL_APP_CONNECTIONS, keep)
    return killed


async def wait_until_a_request_waits_on_a_lock(admin: asyncpg.Connection) -> None:
    """Return once an app connection waits on a lock: the request is then in flight."""
    for _ in range(1_000):
        if await admin.fetch(WAITING_ON_A_LOCK):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no request ever waited on the lock")


async def answered(request: Any) -> httpx.Response:
    response: httpx.Response = await asyncio.wait_for(request, ANSWER_WITHIN)
    return response


def assert_unavailable(response: httpx.Response) -> None:
    assert_problem(response, 503, "DatabaseError")
    assert int(response.headers["retry-after"]) > 0


class TestKilledIdleConnections:
    async def test_next_requests_succeed_without_a_restart(
        self, pg_client: httpx.AsyncClient, admin: asyncpg.Connection
    ) -> None:
        # Several requests at once, so the pool holds several connections to lose.
        await asyncio.gather(*(create_task(pg_client, title=f"t{n}") for n in range(10)))
        assert await kill_app_connections(admin) > 0
        assert (await pg_client.get("/api/alice/tasks")).status_code == 200
        body = await graphql(pg_client, 'query { tasks(userId: "alice") { id } }')
        assert "errors" not in body
        assert len(body["data"]["tasks"]) == 10
        assert (await pg_client.post("/api/alice/tasks", json={"title": "x"})).status_code == 201

    async def test_health_recovers(
        self, pg_client: httpx.AsyncClient, admin: asyncpg.Connection
    ) -> None:
        assert (await pg_client.get("/health")).status_code == 200
        await kill_app_connections(admin)
        assert (await pg_client.get("/health")).json() == {"status": "ok"}


class TestReadRetry:
    async def test_read_on_a_connection_that_died_is_retried_once(
        self, pg_app: FastAPI, pg_client: httpx.AsyncClient, admin: asyncpg.Connection
    ) -> None:
        task = await create_task(pg_client)
        tasks: TaskService = pg_app.state.tasks
        async with tasks.session() as db:
            # The pool's one connection was used moments ago, so its next checkout is not pinged.
            await tasks.ping(db)
            assert await kill_app_connections(admin) == 1
            listed = await tasks.list_tasks(db, "alice")
            assert [str(found.id) for found in listed.tasks] == [task["id"]]

    async def test_write_on_a_connection_that_died_is_not_retried(
        self, pg_app: FastAPI, pg_client: httpx.AsyncClient, admin: asyncpg.Connection
    ) -> None:
        tasks: TaskService = pg_app.state.tasks
        async with tasks.session() as db:
            await tasks.ping(db)
            assert await kill_app_connections(admin) == 1
            with pytest.raises(errors.DatabaseError):
                await tasks.create_task(db, "alice", TaskCreate(title="once"))
            # The same session works again for the caller's own, deliberate retry.
            await tasks.create_task(db, "alice", TaskCreate(title="twice"))
        titles = [task["title"] for task in (await pg_client.get("/api/alice/tasks")).json()]
        assert titles == ["twice"]

    async def test_read_killed_in_flight_is_answered_from_a_fresh_connection(
        self,
        pg_client: httpx.AsyncClient,
        admin: asyncpg.Connection,
        locker: asyncpg.Connection,
    ) -> None:
        task = await create_task(pg_client)
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
        read = asyncio.ensure_future(answered(pg_client.get(f"/api/alice/tasks/{task['id']}")))
        await wait_until_a_request_waits_on_a_lock(admin)
        assert await kill_app_connections(admin, locker) == 1
        await transaction.rollback()
        response = await read
        assert response.status_code == 200
        assert response.json() == task


@contextlib.asynccontextmanager
async def app_client(postgres_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app on a fresh schema, with the given settings."""
    await reset_postgres(postgres_url)
    application = create_app(make_settings(postgres_url, **overrides))
    async with LifespanManager(application), client_for(application) as client:
        yield client


@pytest.fixture
async def outsider(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection outside any app's pool, which kills the app's connections."""
    connection = await _connect(postgres_url)
    try:
        yield connection
    finally:
        await connection.close()


class TestPingAfterIdle:
    """A pooled connection is pinged on checkout only after `db_ping_after_idle` seconds idle.

    Writes are never retried, so whether a write after a kill succeeds shows whether the pool
    checked the idle connection before handing it out.
    """

    async def test_connection_killed_while_idle_is_replaced_on_the_next_request(
        self, postgres_url: str, outsider: asyncpg.Connection
    ) -> None:
        async with app_client(postgres_url, db_ping_after_idle=0) as client:
            await create_task(client, title="before")
            assert await kill_app_connections(outsider) == 1

            response = await client.post("/api/alice/tasks", json={"title": "after"})

            assert response.status_code == 201, response.text
            listing = await client.get("/api/alice/tasks")
        assert [task["title"] for task in listing.json()] == ["before", "after"]

    async def test_recently_used_connection_is_not_pinged(
        self, postgres_url: str, outsider: asyncpg.Connection
    ) -> None:
        # The saved round trip has this price: a connection killed moments after its last use
        # fails the write that meets it; the pool is then renewed and the next write succeeds.
        async with app_client(postgres_url, db_ping_after_idle=3600) as client:
            await create_task(client, title="before")
            assert await kill_app_connections(outsider) == 1

            assert_unavailable(await client.post("/api/alice/tasks", json={"title": "lost"}))
            response = await client.post("/api/alice/tasks", json={"title": "after"})

            assert response.status_code == 201, response.text
            listing = await client.get("/api/alice/tasks")
        assert [task["title"] for task in listing.json()] == ["before", "after"]


class TestWriteKilledInFlight:
    async def test_rest_write_is_503_and_not_applied(
        self,
        pg_client: httpx.AsyncClient,
        admin: asyncpg.Connection,
        locker: asyncpg.Connection,
    ) -> None:
        task = await create_task(pg_client)
        url = f"/api/alice/tasks/{task['id']}"
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task["id"])
        write = asyncio.ensure_future(answered(pg_client.put(url, json={"title": "lost"})))
        await wait_until_a_request_waits_on_a_lock(admin)
        assert await kill_app_connections(admin, locker) == 1
        assert_unavailable(await write)
        await transaction.rollback()
        assert (await pg_client.get(url)).json() == task
        assert (await pg_client.put(url, json={"title": "kept"})).json()["title"] == "kept"

    async def test_graphql_write_is_service_unavailable_and_not_applied(
        self,
        pg_client: httpx.AsyncClient,
        admin: asyncpg.Connection,
        locker: asyncpg.Connection,
    ) -> None:
        task = await create_task(pg_client)
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task["id"])
        mutation = 'mutation($id: ID!) { completeTask(userId: "alice", id: $id) { id } }'
        write = asyncio.ensure_future(
            asyncio.wait_for(graphql(pg_client, mutation, id=task["id"]), ANSWER_WITHIN)
        )
        await wait_until_a_request_waits_on_a_lock(admin)
        assert await kill_app_connections(admin, locker) == 1
        assert error_codes(await write) == ["SERVICE_UNAVAILABLE"]
        await transaction.rollback()
        assert (await pg_client.get(f"/api/alice/tasks/{task['id']}")).json() == task


@dataclass
class BurstResult:
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    acknowledged: dict[str, str] = field(default_factory=dict)  # request name -> task id
    failed: list[str] = field(default_factory=list)  # names of requests answered 503
    killed: list[int] = field(default_factory=list)  # connections killed at each fault


async def create_burst(
    client: httpx.AsyncClient,
    admin: asyncpg.Connection,
    *,
    workers: int = 12,
    per_worker: int = 30,
    faults: int = 3,
    keyed: bool = False,
) -> BurstResult:
    """Concurrent creates; every (total / (faults + 1))-th answer kills the app's connections.

    The worker whose answer reaches a threshold does the kill itself, while the other workers'
    requests are in flight: deterministic, with no timing involved.
    """
    result = BurstResult()
    total = workers * per_worker
    thresholds = {total * (n + 1) // (faults + 1) for n in range(faults)}
    answers = 0

    async def create(name: str) -> None:
        nonlocal answers
        headers = {"Idempotency-Key": name} if keyed else {}
        response = await answered(
            client.post("/api/burst/tasks", json={"title": name}, headers=headers)
        )
        result.statuses[response.status_code] += 1
        if response.status_code == 201:
            result.acknowledged[name] = response.json()["id"]
        else:
            assert_unavailable(response)
            result.failed.append(name)
        answers += 1
        if answers in thresholds:
            result.killed.append(await kill_app_connections(admin))

    async def worker(number: int) -> None:
        for n in range(per_worker):
            await create(f"w{number}-{n}")

    await asyncio.gather(*(worker(number) for number in range(workers)))
    return result


class TestKillsUnderLoad:
    async def test_every_acknowledged_create_survives(
        self,
        pg_client: httpx.AsyncClient,
        admin: asyncpg.Connection,
        record_property: Any,
    ) -> None:
        burst = await create_burst(pg_client, admin)
        stored = {
            str(row["id"]): row["title"]
            for row in await admin.fetch("SELECT id, title FROM tasks WHERE user_id = 'burst'")
        }
        unanswered = set(stored) - set(burst.acknowledged.values())
        report = {
            "requests": sum(burst.statuses.values()),
            "statuses": dict(burst.statuses),
            "connections_killed": burst.killed,
            "failed_in_flight": len(burst.failed),
            "stored_without_an_acknowledgement": len(unanswered),
        }
        record_property("fault_report", report)
        print(f"\nkills under load: {report}")
        assert set(burst.statuses) <= {201, 503}
        assert sum(burst.killed) > 0
        # Every 201 is stored, as acknowledged...
        assert {task_id: stored.get(task_id) for task_id in burst.acknowledged.values()} == {
            task_id: name for name, task_id in burst.acknowledged.items()
        }
        # ...and the only tasks nobody got a 201 for are ones whose requests failed in flight
        # (committed just before the connection died, answered 503).
        assert {stored[task_id] for task_id in unanswered} <= set(burst.failed)
        assert (await pg_client.get("/api/burst/tasks")).status_code == 200
        assert (
            await pg_client.post("/api/burst/tasks", json={"title": "after"})
        ).status_code == 201

    async def test_keyed_creates_retried_after_faults_exist_exactly_once(
        self, pg_client: httpx.AsyncClient, admin: asyncpg.Connection
    ) -> None:
        burst = await create_burst(pg_client, admin, keyed=True)
        assert set(burst.statuses) <= {201, 503}
        retried: dict[str, str] = {}
        for name in burst.failed:
            response = await answered(
                pg_client.post(
                    "/api/burst/tasks", json={"title": name}, headers={"Idempotency-Key": name}
                )
            )
            assert response.status_code == 201, response.text
            retried[name] = response.json()["id"]
        rows = await admin.fetch("SELECT id, title FROM tasks WHERE user_id = 'burst'")
        titles = sorted(row["title"] for row in rows)
        assert titles == sorted({**burst.acknowledged, **retried})
        assert {str(row["id"]) for row in rows} == set(burst.acknowledged.values()) | set(
            retried.values()
        )


class TestPoolExhausted:
    @pytest.fixture
    async def one_connection_client(self, postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
        await reset_postgres(postgres_url)
        settings = make_settings(postgres_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=1)
        application = create_app(settings)
        async with LifespanManager(application), client_for(application) as client:
            yield client

    async def test_waiting_for_a_connection_is_bounded_then_503(
        self,
        one_connection_client: httpx.AsyncClient,
        postgres_url: str,
    ) -> None:
        client = one_connection_client
        task = await create_task(client)
        locker = await _connect(postgres_url)
        admin = await _connect(postgres_url)
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task["id"])
            # Holds the only connection until the lock is released.
            blocked = asyncio.ensure_future(
                answered(client.put(f"/api/alice/tasks/{task['id']}", json={"title": "later"}))
            )
            await wait_until_a_request_waits_on_a_lock(admin)
            assert_unavailable(await answered(client.get("/api/alice/tasks")))
            body = await asyncio.wait_for(
                graphql(client, 'query { tasks(userId: "alice") { id } }'), ANSWER_WITHIN
            )
            assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
            await transaction.rollback()
            assert (await blocked).json()["title"] == "later"
        finally:
            await locker.close()
            await admin.close()
        assert (await client.get("/api/alice/tasks")).status_code == 200
