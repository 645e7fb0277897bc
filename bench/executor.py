"""What one GraphQL request costs in the process: compiled path, framework's path, Strawberry.

    .venv/bin/python bench/executor.py                    # PostgreSQL at BENCH_DATABASE_URL
    .venv/bin/python bench/executor.py --sqlite           # a temporary SQLite file instead
    .venv/bin/python bench/executor.py --requests 1000 --repeats 7
    .venv/bin/python bench/executor.py --uvloop           # on uvloop, as in production
    .venv/bin/python bench/executor.py --in-flight 16     # 16 requests in flight at once

No HTTP server and no load tool: the apps are called as ASGI callables (a scope, a receive, a
send) from this process, one request after another (or `--in-flight` at a time, as a worker has
them under load), after their lifespan has started. It prints, for each case, the microseconds of
CPU (time.process_time) and of wall time per request, and the garbage collector's CPU and young
collections per request (each repetition starts from a full collection, so no case collects what
another left), the median of `--repeats` repetitions of `--requests` requests each:

- the 20-task GraphQL list and a GraphQL create through the compiled path
  (`create_app(Settings(graphql_compiled=True))`, each document sent a few times first so that it
  is compiled; the script fails if a measured request was not answered by the compiled path
  and completed by its root-field plan),
- the same two through the framework's path (`graphql_compiled=False`: Strawberry's router),
- a bare Strawberry baseline: a minimal `strawberry.Schema` whose one async field returns 20
  static tasks with the same seven fields, run with `await schema.execute(...)` (no HTTP, no
  database): what Strawberry's own pipeline costs for that answer, with its defaults (it parses
  and validates the document on every request),
- on PostgreSQL, the floor's app (`../shared/floor/app.py` beside the repository, loaded from
  there; skipped if absent) answering the same two documents on the same database: the least a
  Python process spends on them. Its create names only the task's own columns, so the search
  column gets a default in the scratch database; the database's own work is not in these
  figures, which count this process's CPU.

The database is a scratch PostgreSQL database (BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres, names the server) that it creates, seeds with 20
tasks for one user and drops; creates write for another user, so the list stays at 20. The
figures are CPU per request in one process, so they separate the code's own cost from the
machine's noise (other processes, the network, the load tool); the wall time also holds the
waits for the database.
"""

import argparse
import asyncio
import gc
import importlib.util
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import strawberry
from asgi_lifespan import LifespanManager
from floor import FLOOR_APP, let_floor_create
from sqlalchemy.engine import make_url

from api.config import Settings
from api.main import create_app

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Its own name each run, so two runs at once do not drop each other's database.
DATABASE = f"task_api_bench_executor_{uuid.uuid4().hex[:10]}"
READER, WRITER = "bench-reader", "bench-writer"
TASKS = 20
FLOOR_PATH = "floor's app"
WARMUP = 5
FIELDS = "id userId title description completed createdAt updatedAt"
LIST = f"query TaskList($u: String!) {{ tasks(userId: $u) {{ {FIELDS} }} }}"
CREATE = (
    "mutation CreateTask($u: String!, $t: String!, $d: String) {"
    f" createTask(userId: $u, input: {{title: $t, description: $d}}) {{ {FIELDS} }} }}"
)
LIST_BODY = json.dumps({"query": LIST, "variables": {"u": READER}}).encode()
CREATE_BODY = json.dumps(
    {"query": CREATE, "variables": {"u": WRITER, "t": "Bench task", "d": "Created by the bench"}}
).encode()

ASGIApp = Callable[..., Awaitable[None]]


# --- the database -------------------------------------------------------------------------------


def postgres_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def create_postgres() -> str:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    return postgres_url(DATABASE)


async def drop_postgres() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


# --- driving an ASGI app ------------------------------------------------------------------------


async def call(app: ASGIApp, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One request through `app`; its status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            # Nothing more comes; a handler that waits for a disconnect waits here.
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def check_graphql(status: int, body: bytes, field: str, expect: int) -> None:
    if status != 200:
        sys.exit(f"HTTP {status}: {body[:500]!r}")
    answer = json.loads(body)
    if answer.get("errors"):
        sys.exit(f"GraphQL errors: {answer['errors']}")
    found = answer["data"][field]
    count = len(found) if isinstance(found, list) else 1
    if count != expect or not all(set(FIELDS.split()) <= task.keys() for task in _as_list(found)):
        sys.exit(f"unexpected answer for {field}: {body[:500]!r}")


def _as_list(found: Any) -> list[dict[str, Any]]:
    return found if isinstance(found, list) else [found]


# --- measuring ----------------------------------------------------------------------------------


class CollectorClock:
    """CPU the garbage collector spends, and its young collections, counted from `gc.callbacks`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.young = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        self.seconds += time.process_time() - self._started
        self.young += info["generation"] == 0


COLLECTOR = CollectorClock()


class Case:
    """One kind of request on one path, measured in batches; per request of each batch: µs of
    CPU, of wall time and of the collector's CPU, and young collections."""

    def __init__(self, request: str, path: str, run_one: Callable[[], Awaitable[None]]) -> None:
        self.request, self.path, self.run_one = request, path, run_one
        self.cpu: list[float] = []
        self.wall: list[float] = []
        self.collector: list[float] = []
        self.young: list[float] = []

    async def batch(self, requests: int, in_flight: int = 1) -> None:
        """`requests` requests, `in_flight` at a time (each of that many loops sends its share
        one after another), as a worker has them in flight under load."""

        async def send(count: int) -> None:
            for _ in range(count):
                await self.run_one()

        shares = [requests // in_flight + (i < requests % in_flight) for i in range(in_flight)]
        # What earlier cases left for the collector is not this case's to collect.
        gc.collect()
        collected, young = COLLECTOR.seconds, COLLECTOR.young
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(send(share) for share in shares))
        self.cpu.append((time.process_time() - cpu_start) / requests * 1e6)
        self.wall.append((time.perf_counter() - wall_start) / requests * 1e6)
        self.collector.append((COLLECTOR.seconds - collected) / requests * 1e6)
        self.young.append((COLLECTOR.young - young) / requests)


def graphql_case(request: str, path: str, app: ASGIApp, body: bytes) -> Case:
    async def run_one() -> None:
        await call(app, "POST", "/graphql", body)

    return Case(request, path, run_one)


async def prepare_app(app: ASGIApp) -> None:
    """Seed the reader's tasks if they are not there; send each document a few times."""
    status, body = await call(app, "POST", "/graphql", LIST_BODY)
    check_graphql(status, body, "tasks", len(json.loads(body)["data"]["tasks"]))
    if not json.loads(body)["data"]["tasks"]:
        for number in range(TASKS):
            task = {"title": f"Task {number}", "description": f"Notes on task {number}"}
            status, answer = await call(
                app, "POST", f"/api/{READER}/tasks", json.dumps(task).encode()
            )
            if status != 201:
                sys.exit(f"seeding failed: HTTP {status}: {answer[:500]!r}")
    # A few times each: the compiled path compiles a document on its second request.
    for _ in range(WARMUP):
        for body, field, expect in ((LIST_BODY, "tasks", TASKS), (CREATE_BODY, "createTask", 1)):
            status, answer = await call(app, "POST", "/graphql", body)
            check_graphql(status, answer, field, expect)


def make_app(database_url: str, *, compiled: bool) -> Any:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, graphql_compiled=compiled
    )
    return create_app(settings)


# --- the bare Strawberry baseline ---------------------------------------------------------------


@strawberry.type
class BareTask:
    id: strawberry.ID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


START = datetime(2026, 1, 1, tzinfo=UTC)
BARE_TASKS = [
    BareTask(
        id=strawberry.ID(f"00000000-0000-4000-8000-{number:012d}"),
        user_id=READER,
        title=f"Task {number}",
        description=f"Notes on task {number}",
        completed=number % 4 == 0,
        created_at=START + timedelta(seconds=number),
        updated_at=START + timedelta(seconds=number),
    )
    for number in range(TASKS)
]


@strawberry.type
class BareQuery:
    @strawberry.field
    async def tasks(self, user_id: str) -> list[BareTask]:
        return BARE_TASKS


def bare_case() -> Case:
    schema = strawberry.Schema(query=BareQuery)
    variables = {"u": READER}

    async def run_one() -> None:
        result = await schema.execute(LIST, variable_values=variables)
        if result.errors or result.data is None or len(result.data["tasks"]) != TASKS:
            sys.exit(f"bare Strawberry answered {result}")

    return Case("GraphQL list 20 tasks", "bare Strawberry", run_one)


# --- the floor's app ---------------------------------------------------------------------------


async def load_floor(database_url: str) -> ModuleType | None:
    """The floor's ASGI app on `database_url` (its create's search column defaulted there), or
    None when it is not beside the repository."""
    if not FLOOR_APP.is_file():
        print(f"no floor: {FLOOR_APP} is missing", file=sys.stderr)
        return None
    connection = await asyncpg.connect(database_url)
    try:
        await let_floor_create(connection)
    finally:
        await connection.close()
    # The floor reads its settings when it is loaded.
    os.environ["FLOOR_DSN"] = database_url
    os.environ["FLOOR_WITH_USER_ID"] = "1"
    spec = importlib.util.spec_from_file_location("floor_app", FLOOR_APP)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {FLOOR_APP}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def check_floor(app: ASGIApp) -> None:
    """The floor lists the reader's tasks with every field, and creates (answering the id)."""
    status, body = await call(app, "POST", "/graphql", LIST_BODY)
    check_graphql(status, body, "tasks", TASKS)
    status, body = await call(app, "POST", "/graphql", CREATE_BODY)
    if status != 200 or not json.loads(body)["data"]["createTask"].get("id"):
        sys.exit(f"the floor's create answered HTTP {status}: {body[:500]!r}")


# --- the run ------------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per repetition")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions; medians shown")
    parser.add_argument(
        "--sqlite", action="store_true", help="a temporary SQLite file instead of PostgreSQL"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=1,
        help="requests in flight at once in each repetition (default 1: one after another)",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run on uvloop, as the production command does (default: asyncio's own loop)",
    )
    return parser.parse_args()


async def run(arguments: argparse.Namespace, database_url: str) -> None:
    compiled_app = make_app(database_url, compiled=True)
    framework_app = make_app(database_url, compiled=False)
    if getattr(compiled_app.state, "graphql_answers", None) is None:
        sys.exit("graphql_compiled=True built no compiled path (no app.state.graphql_answers)")
    if getattr(framework_app.state, "graphql_answers", None) is not None:
        sys.exit("graphql_compiled=False still built the compiled path")
    async with (
        LifespanManager(compiled_app) as compiled,
        LifespanManager(framework_app) as framework,
        AsyncExitStack() as floor_lifespan,
    ):
        for manager in (compiled, framework):
            await prepare_app(manager.app)
        cases = [
            graphql_case("GraphQL list 20 tasks", "compiled path", compiled.app, LIST_BODY),
            graphql_case("GraphQL list 20 tasks", "framework's path", framework.app, LIST_BODY),
            bare_case(),
            graphql_case("GraphQL create", "compiled path", compiled.app, CREATE_BODY),
            graphql_case("GraphQL create", "framework's path", framework.app, CREATE_BODY),
        ]
        # After the service's start-up, which migrated the database the floor uses.
        floor_module = None if arguments.sqlite else await load_floor(database_url)
        if floor_module is not None:
            floor = await floor_lifespan.enter_async_context(LifespanManager(floor_module.app))
            await check_floor(floor.app)
            cases += [
                graphql_case("GraphQL list 20 tasks", FLOOR_PATH, floor.app, LIST_BODY),
                graphql_case("GraphQL create", FLOOR_PATH, floor.app, CREATE_BODY),
            ]
        counts = compiled_app.state.graphql_answers
        before, planned_before = counts.compiled, counts.planned
        # Repetitions interleave the cases, so drift in the machine's speed touches them alike.
        for _ in range(arguments.repeats):
            for case in cases:
                await case.batch(arguments.requests, arguments.in_flight)
        measured = 2 * arguments.requests * arguments.repeats
        if counts.compiled - before != measured:
            sys.exit(
                f"the compiled path answered {counts.compiled - before} of the {measured} "
                "requests measured on it: its figures would not be the compiled path's"
            )
        if counts.planned - planned_before != measured:
            sys.exit(
                f"the root-field plan completed {counts.planned - planned_before} of the "
                f"{measured} requests measured on the compiled path"
            )
        # The last answers are still right.
        for manager in (compiled, framework):
            for body, field, expect in (
                (LIST_BODY, "tasks", TASKS),
                (CREATE_BODY, "createTask", 1),
            ):
                status, answer = await call(manager.app, "POST", "/graphql", body)
                check_graphql(status, answer, field, expect)

    backend = "SQLite (temporary file)" if arguments.sqlite else "PostgreSQL"
    loop = "uvloop" if arguments.uvloop else "asyncio's loop"
    pace = "one at a time" if arguments.in_flight == 1 else f"{arguments.in_flight} in flight"
    print(
        f"One process, {backend}, {loop}; medians of {arguments.repeats} interleaved "
        f"repetitions of {arguments.requests} requests each, {pace}, called as ASGI "
        "(no HTTP); bare Strawberry: schema.execute on 20 static tasks, no database. Compiled "
        f"path checked: it answered all {measured} requests measured on it."
    )
    header = (
        f"{'request':<24}{'path':<20}{'CPU µs/req':>12}{'wall µs/req':>13}"
        f"{'collector µs/req':>18}{'young GCs/1k req':>18}"
    )
    print(header)
    print("-" * len(header))
    # The list's rows, then the create's, each in the order measured.
    for case in sorted(cases, key=lambda case: case.request != cases[0].request):
        cpu, wall = statistics.median(case.cpu), statistics.median(case.wall)
        collector, young = statistics.median(case.collector), statistics.median(case.young)
        print(
            f"{case.request:<24}{case.path:<20}{cpu:>12,.0f}{wall:>13,.0f}"
            f"{collector:>18,.1f}{young * 1000:>18,.0f}"
        )
    for index, name in ((0, "list"), (3, "create")):
        compiled_cpu = statistics.median(cases[index].cpu)
        framework_cpu = statistics.median(cases[index + 1].cpu)
        print(f"framework's path / compiled path, {name}: {framework_cpu / compiled_cpu:.2f}x CPU")
    floors = {case.request: case for case in cases if case.path == FLOOR_PATH}
    for index, name in ((0, "list"), (3, "create")):
        floor_case = floors.get(cases[index].request)
        if floor_case is not None:
            ratio = statistics.median(cases[index].cpu) / statistics.median(floor_case.cpu)
            print(f"compiled path / floor's app, {name}: {ratio:.2f}x CPU")


def main() -> None:
    arguments = parse_arguments()
    # The service's start-up messages (authentication off) are not what this measures.
    logging.disable(logging.WARNING)
    # The collector's share of each request (what a reference cycle per request costs).
    gc.callbacks.append(COLLECTOR)
    if arguments.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if arguments.sqlite:
        with tempfile.TemporaryDirectory(prefix="bench-executor-") as directory:
            database = Path(directory) / "tasks.db"
            asyncio.run(run(arguments, f"sqlite+aiosqlite:///{database}"))
        return
    url = asyncio.run(create_postgres())
    try:
        asyncio.run(run(arguments, url))
    finally:
        asyncio.run(drop_postgres())


if __name__ == "__main__":
    main()
