"""How a list page costs at depth: first page against a page 1,000 pages deep, per order.

Seeds one user with 100,000 tasks (plus other users' tasks around them) in a scratch PostgreSQL
database, starts the service under uvicorn on 127.0.0.1, and for every order prints the median
latency over HTTP of the first page and of a page 1,000 pages (of 50) deep, their ratio, and the
query plan of each page query; then the median latency of a searched first page (the search is
folded, as the stored columns are, and matched with LIKE: it reads the user's tasks). Run it
from the repository root:

    .venv/bin/python bench/list_pages.py            # BENCH_DATABASE_URL picks the server

Server, database and client share this machine's cores; the figures are for comparison, not
absolutes.
"""

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from api.config import Settings
from api.storage import statements
from api.storage.migrate import upgrade_database
from api.tasks.cursors import CursorCodec
from api.tasks.shapes import Boundary, OrderDirection, TaskListQuery, TaskOrder, TaskOrderField

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Its own name each run, so two runs at once do not drop each other's database.
DATABASE = f"task_api_bench_lists_{uuid.uuid4().hex[:10]}"
USER = "bench-user"
TASKS = 100_000
OTHER_USERS, OTHER_TASKS_EACH = 1_000, 50
PAGE = 50
DEPTH = 1_000
REPEATS = 25
# (search, how many of the user's tasks match): one in 1,000 descriptions, then no task at all,
# which reads every one of the user's tasks.
SEARCHES = [("ÄPFEL", TASKS // 1000), ("no such words", 0)]


def database_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def prepare() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    await admin.close()
    await upgrade_database(Settings(_env_file=None, database_url=database_url(DATABASE)))  # type: ignore[call-arg]
    connection = await asyncpg.connect(database_url(DATABASE))
    # Titles and most descriptions are lowercase ASCII, their own folded form; one task in 1,000
    # has a non-ASCII description, its folded form spelled out beside it.
    seed = """
        INSERT INTO tasks (id, user_id, title, description, title_folded, description_folded,
                           completed, created_at, updated_at)
        SELECT gen_random_uuid(), $1, 'task ' || md5(n::text),
               CASE WHEN n % 1000 = 0 THEN 'Äpfel kaufen ' || n ELSE 'note ' || n END,
               'task ' || md5(n::text),
               CASE WHEN n % 1000 = 0 THEN 'äpfel kaufen ' || n ELSE 'note ' || n END,
               n % 3 = 0,
               timestamptz '2026-01-01' + n * interval '1 second',
               timestamptz '2026-01-01' + ((n * 7919) % $2) * interval '1 second'
        FROM generate_series(1, $2) AS n
    """
    await connection.execute(seed, USER, TASKS)
    await connection.execute(
        """
        INSERT INTO tasks (id, user_id, title, description, title_folded, completed,
                           created_at, updated_at)
        SELECT gen_random_uuid(), 'other-' || (n % $1), 'other ' || n, NULL, 'other ' || n,
               false, now(), now()
        FROM generate_series(1, $2) AS n
        """,
        OTHER_USERS,
        OTHER_USERS * OTHER_TASKS_EACH,
    )
    await connection.execute("VACUUM ANALYZE tasks")
    await connection.close()


async def cursor_codec() -> CursorCodec:
    """The service's codec, with the key the migration stored (no session needed then)."""
    connection = await asyncpg.connect(database_url(DATABASE))
    key = await connection.fetchval("SELECT value FROM service_secrets WHERE name='cursor_key'")
    await connection.close()
    return CursorCodec(key)


async def deep_cursor(order: TaskOrder) -> str:
    """The cursor a client holds after reading DEPTH pages (found here with one OFFSET)."""
    columns = (
        ["title_folded", "title"] if order.field is TaskOrderField.TITLE else [order.field.value]
    )
    direction = "DESC" if order.direction is OrderDirection.DESC else "ASC"
    keys = ", ".join(f"{column} {direction}" for column in [*columns, "id"])
    connection = await asyncpg.connect(database_url(DATABASE))
    row = await connection.fetchrow(
        f"SELECT * FROM tasks WHERE user_id = $1 ORDER BY {keys} OFFSET $2 LIMIT 1",
        USER,
        DEPTH * PAGE - 1,
    )
    await connection.close()
    assert row is not None

    class Row:
        id = row["id"]
        created_at = row["created_at"]
        updated_at = row["updated_at"]
        title = row["title"]
        title_folded = row["title_folded"]

    codec = await cursor_codec()
    return await codec.encode(None, USER, order, Row)  # type: ignore[arg-type]


async def explain(order: TaskOrder, cursor: str | None) -> str:
    after: Boundary | None = None
    if cursor is not None:
        codec = await cursor_codec()
        after = await codec.decode(None, USER, order, cursor)  # type: ignore[arg-type]
    query = TaskListQuery(order=order, first=PAGE)
    statement, values = statements.list_statement(USER, query, after, None)
    compiled = statement.params(values).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    connection = await asyncpg.connect(database_url(DATABASE))
    rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {compiled}")
    await connection.close()
    return "\n".join("      " + row[0] for row in rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def median_ms(client: httpx.AsyncClient, url: str, size: int = PAGE) -> float:
    for _ in range(3):  # warm-up
        assert (await client.get(url)).status_code == 200
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = await client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        assert len(response.json()) == size
    return statistics.median(samples)


async def measure(port: int) -> None:
    orders = [
        TaskOrder(field=field, direction=direction)
        for field in TaskOrderField
        for direction in OrderDirection
    ]
    print(f"one user with {TASKS:,} tasks; page of {PAGE}; deep page = after {DEPTH:,} pages")
    print(f"{'order':<16}{'first page ms':>15}{'deep page ms':>15}{'deep/first':>12}")
    plans = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for order in orders:
            sort = ("-" if order.direction is OrderDirection.DESC else "") + order.field.value
            cursor = await deep_cursor(order)
            first = await median_ms(client, f"/api/{USER}/tasks?sort={sort}&limit={PAGE}")
            deep = await median_ms(
                client,
                str(
                    httpx.URL(
                        f"/api/{USER}/tasks", params={"sort": sort, "limit": PAGE, "cursor": cursor}
                    )
                ),
            )
            print(f"{sort:<16}{first:>15.2f}{deep:>15.2f}{deep / first:>12.2f}")
            plans.append((sort, await explain(order, None), await explain(order, cursor)))
        print(f"\nsearch over the same user's {TASKS:,} tasks (folded title and description)")
        print(f"{'search':<28}{'matches':>10}{'page ms':>12}")
        for search, matches in SEARCHES:
            page = min(matches, PAGE)
            url = str(httpx.URL(f"/api/{USER}/tasks", params={"search": search, "limit": PAGE}))
            ms = await median_ms(client, url, page)
            print(f"{search:<28}{matches:>10,}{ms:>12.2f}")
    for sort, first_plan, deep_plan in plans:
        print(f"\n{sort}: first page plan\n{first_plan}\n{sort}: deep page plan\n{deep_plan}")


def main() -> None:
    asyncio.run(prepare())
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(DATABASE)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        asyncio.run(measure(port))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
