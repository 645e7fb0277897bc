"""The service behind a real transaction-mode PgBouncer, as hosted PostgreSQL (Neon) puts it.

A transaction-mode pooler may hand each transaction, and each statement outside one, to another
server connection. Here PgBouncer keeps two server connections for many client ones, so a
statement whose steps (asyncpg prepares, then executes) are split across two of them fails.
PostgreSQL only: a pooler is a PostgreSQL thing. Needs Debian's `pgbouncer` (`.ci/run` installs
it); without it these tests skip with the reason, and fail under CI=true.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from api.main import create_app
from tests.apps import app_of
from tests.conftest import IN_CI, client_for, make_settings, reset_postgres
from tests.factories import graphql

pytestmark = [pytest.mark.pooler, pytest.mark.slow]

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
START_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"pgbouncer exited at start:\n{output}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"pgbouncer did not listen on {port} within {START_TIMEOUT} s")


def _config(directory: Path, postgres_url: str, port: int) -> Path:
    target = make_url(postgres_url)
    users = directory / "users.txt"
    users.write_text(f'"{target.username}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
{target.database} = host={target.host} port={target.port or 5432} dbname={target.database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options,application_name
"""
    )
    return config


@pytest.fixture(scope="module")
def pooler_url(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test database through PgBouncer in transaction mode, as a pooler URL."""
    if not os.access(PGBOUNCER, os.X_OK):
        reason = "no pgbouncer to test behind a pooler (apt-get install pgbouncer)"
        if IN_CI:
            pytest.fail(f"{reason}; under CI=true the pooler tests must run")
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("pgbouncer")
    port = _free_port()
    command = [PGBOUNCER, str(_config(directory, postgres_url, port))]
    if os.geteuid() == 0:
        command[1:1] = ["--user", "postgres"]  # PgBouncer refuses to run as root
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(port, process)
        pooled = make_url(postgres_url).set(port=port).update_query_dict({"pgbouncer": "true"})
        yield pooled.render_as_string(hide_password=False)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
async def pooled_client(pooler_url: str, postgres_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await reset_postgres(postgres_url)
    # Migrations take the direct URL, as the README tells pooler users to set it.
    settings = make_settings(pooler_url, database_direct_url=postgres_url, db_pool_size=8)
    app = create_app(settings)
    async with LifespanManager(app), client_for(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


ROUNDS = 40
TASKS_QUERY = "query ($u: String!) { tasks(userId: $u) { id title completed version } }"


async def test_every_operation_works_through_the_pooler(
    pooled_client: httpx.AsyncClient,
) -> None:
    client = pooled_client
    assert app_of(client).state.store.behind_pooler is True

    created = await asyncio.gather(
        *(client.post("/api/alice/tasks", json={"title": f"task {n}"}) for n in range(ROUNDS))
    )
    assert [response.status_code for response in created] == [201] * ROUNDS
    ids = [response.json()["id"] for response in created]

    reads = await asyncio.gather(
        *(client.get("/api/alice/tasks") for _ in range(ROUNDS)),
        *(client.get(f"/api/alice/tasks/{task_id}") for task_id in ids),
        *(client.get("/api/alice/tasks", params={"limit": 5, "search": "task"}) for _ in ids),
    )
    assert [response.status_code for response in reads] == [200] * (3 * ROUNDS)
    assert all(len(response.json()) == ROUNDS for response in reads[:ROUNDS])

    answers = await asyncio.gather(
        *(graphql(client, TASKS_QUERY, u="alice") for _ in range(ROUNDS))
    )
    for body in answers:
        assert "errors" not in body, body
        assert len(body["data"]["tasks"]) == ROUNDS

    changed = await asyncio.gather(
        *(client.patch(f"/api/alice/tasks/{task_id}/complete") for task_id in ids[:10]),
        *(client.delete(f"/api/alice/tasks/{task_id}") for task_id in ids[10:20]),
    )
    assert [response.status_code for response in changed] == [200] * 10 + [204] * 10
    remaining = (await client.get("/api/alice/tasks")).json()
    assert len(remaining) == ROUNDS - 10
    assert sum(task["completed"] for task in remaining) == 10
