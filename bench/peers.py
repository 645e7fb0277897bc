"""The service against PostGraphile and the floor on the same machine, data and run.

    .venv/bin/python bench/peers.py                  # about 15 minutes with the defaults
    .venv/bin/python bench/peers.py --help           # durations, rounds, targets, data size

What it does, from the repository root, with a PostgreSQL at BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres):

1. Makes three scratch databases: one migrated by the service and seeded with generate_series
   (10,000 users x 20 tasks), and a copy of it (same rows) for PostGraphile and the floor,
   with the `tasks` table alone: without the service's own tables, its search columns (and
   their index) and the trigger that writes each change's event into its live updates'
   outbox, and with defaults for the columns the service fills in itself, as a PostGraphile
   schema needs.
   So a create costs the database more for the service (the task, the user's event counter
   and the event) than for the other two (the task). The third is a copy of the service's for
   floor-outbox, below.
2. Measures the database's own ceiling for the same statements with pgbench: the service's
   list and create on its database, and the create the floor sends on the copy.
3. Starts the targets (`--targets`, all by default), all on 127.0.0.1:
   - service: exactly as the README's production command says (its workers, server and
     settings; only the host and port differ);
   - service-1: the same command with `--workers 1`, the per-process cost against
     PostGraphile's one Node process;
   - PostGraphile 5 from bench/postgraphile (installed with `npm ci` on first use; never a
     dependency of the service);
   - the floor: ../shared/floor/app.py beside the repository, run from there as its README
     says (uvicorn, 2 workers, uvloop, httptools, no access log) on PostGraphile's copy.
     It answers the GraphQL list and create only, and is skipped, saying so, if it is missing;
   - floor-outbox: the same floor creating on a third copy, the service's own table with its
     outbox trigger (its search column filled by a default): how much of the floor's create
     rate the service's database work takes. Information only; the targets use the floor.
4. Checks one answer of every workload on each target (shape, fields, no errors), then runs
   every workload against each target in alternating order, round after round, each measured
   run after its own warm-up, with wrk (one thread) and bench/load.lua. Every round starts from
   the same data: before it, the rows earlier creates added are deleted from every database
   (the seed is all `user-N`, creates are all `w-N`) and the table is vacuumed and analysed.
5. Prints one table of medians over the rounds, each also as a share of the floor's req/s for
   the same kind of work, the service / PostGraphile ratios (2 workers and 1), and the targets:
   every list and create workload at least 60% of the floor's req/s (aim 80%), the GraphQL list
   at least 1.0x PostGraphile's req/s, every p99 no worse than 1.5x PostGraphile's. It tears
   down every process it started and the databases, also when something fails.

Lists read users `user-1` .. `user-N`; creates write for other users (`w-1` .. `w-N`), so every
list holds exactly the seeded tasks in every round. Errors are non-2xx answers, answers that carry
GraphQL `errors` or lack the expected tasks, socket errors, and requests never answered.
Server, database and load tool share the machine's cores: compare the ratios, not the absolutes.
"""

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from floor import FLOOR_APP, FLOOR_APP_DIR, let_floor_create
from sqlalchemy.engine import make_url

from api.config import Settings
from api.storage.migrate import upgrade_database

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEER_DIR = BENCH / "postgraphile"
LOAD_SCRIPT = BENCH / "load.lua"
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SERVICE_DB = "task_api_bench_service"
PEER_DB = "task_api_bench_postgraphile"
# The service's database again, where the floor writes as the service does (outbox trigger).
OUTBOX_DB = "task_api_bench_floor_outbox"
DATABASES = (SERVICE_DB, PEER_DB, OUTBOX_DB)
SERVICE, SERVICE_1, PEER, FLOOR = "service", "service-1", "PostGraphile", "floor"
# The floor's create on a copy of the service's own table: what the database's share of the
# service's create (the trigger that writes each change's event) costs the floor. Information
# only: the targets are judged against the floor.
FLOOR_OUTBOX = "floor-outbox"
FLOORS = {FLOOR: PEER_DB, FLOOR_OUTBOX: OUTBOX_DB}
# The service as the README runs it, but blind (no metrics, no request ids), and with the
# app's access log on: what seeing costs, measured against its defaults in the same rounds.
SERVICE_BLIND, SERVICE_LOGGED = "service-blind", "service-logged"
SERVICE_SETTINGS = {
    SERVICE: {},
    SERVICE_1: {},
    SERVICE_BLIND: {"TASK_API_METRICS_ENABLED": "false", "TASK_API_REQUEST_IDS": "false"},
    SERVICE_LOGGED: {"TASK_API_ACCESS_LOG": "true"},
}
# --targets names, in the order the targets are started and reported.
TARGETS = {
    "service": SERVICE,
    "service-1": SERVICE_1,
    "service-blind": SERVICE_BLIND,
    "service-logged": SERVICE_LOGGED,
    "postgraphile": PEER,
    "floor": FLOOR,
    "floor-outbox": FLOOR_OUTBOX,
}
FLOOR_WORKERS = 2
# Shares of the floor's req/s the targets ask of every list and create workload.
FLOOR_SHARE_TARGET, FLOOR_SHARE_AIM = 0.60, 0.80
PEER_P99_LIMIT = 1.5

# The sync FastAPI + SQLModel design (psycopg2 sessions), measured on a machine like this one
# with the same data and load; quoted, not run. Keyed by uvicorn workers; the top of each range.
SYNC_REFERENCE = {
    1: {"list": 240, "create": 190},
    2: {"list": 545, "create": 250},
}
SYNC_GRAPHQL_REFERENCE = {"list": 100, "create": 85}

TASK_FIELDS = ("user_id", "title", "description", "completed", "created_at", "updated_at")
GRAPHQL_FIELDS = "userId title description completed createdAt updatedAt"

INSTALL_HINTS = {
    "wrk": "apt-get install -y wrk",
    "pgbench": "apt-get install -y postgresql   (pgbench comes with the server package)",
    "npm": "apt-get install -y npm   (any Node with npm; PostGraphile runs on the Node 22 the "
    "package.json pins)",
}


# --- workloads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One kind of request; `@USER@` and `@N@` are filled in per request by bench/load.lua."""

    method: str
    path: str
    body: str | None
    # Where the tasks are in the answer's JSON, and how many a correct answer holds.
    tasks_at: tuple[str, ...]
    expect: int
    id_field: str
    fields: tuple[str, ...]
    weight: int = 1
    # How many times "title" occurs in a correct answer (what bench/load.lua checks), when that
    # is not `expect` (the floor's create answers with the id alone).
    titles: int | None = None

    @property
    def title_count(self) -> int:
        return self.expect if self.titles is None else self.titles


@dataclass(frozen=True)
class Workload:
    name: str
    operation: str  # "list", "create" or "mix"
    face: str  # "REST" or "GraphQL"
    requests: dict[str, tuple[Request, ...]]


def _graphql(query: str, variables: dict[str, str]) -> str:
    return json.dumps({"query": query, "variables": variables})


def workloads(tasks_per_user: int) -> list[Workload]:
    new_task = {"u": "w-@USER@", "t": "Bench task @N@", "d": "Created by the benchmark"}
    rest_list = Request(
        "GET", "/api/user-@USER@/tasks", None, (), tasks_per_user, "id", TASK_FIELDS
    )
    rest_create = Request(
        "POST",
        "/api/w-@USER@/tasks",
        json.dumps({"title": new_task["t"], "description": new_task["d"]}),
        (),
        1,
        "id",
        TASK_FIELDS,
    )
    camel = tuple(GRAPHQL_FIELDS.split())
    service_list = Request(
        "POST",
        "/graphql",
        _graphql(
            f"query TaskList($u: String!) {{ tasks(userId: $u) {{ id {GRAPHQL_FIELDS} }} }}",
            {"u": "user-@USER@"},
        ),
        ("data", "tasks"),
        tasks_per_user,
        "id",
        camel,
    )
    service_create = Request(
        "POST",
        "/graphql",
        _graphql(
            "mutation CreateTask($u: String!, $t: String!, $d: String) {"
            " createTask(userId: $u, input: {title: $t, description: $d})"
            f" {{ id {GRAPHQL_FIELDS} }} }}",
            new_task,
        ),
        ("data", "createTask"),
        1,
        "id",
        camel,
    )
    # PostGraphile's Amber preset names the UUID column `rowId` (`id` is its global node id).
    peer_list = Request(
        "POST",
        "/graphql",
        _graphql(
            "query TaskList($u: String!) { allTasks(condition: {userId: $u},"
            " orderBy: [CREATED_AT_ASC, ROW_ID_ASC])"
            f" {{ nodes {{ rowId {GRAPHQL_FIELDS} }} }} }}",
            {"u": "user-@USER@"},
        ),
        ("data", "allTasks", "nodes"),
        tasks_per_user,
        "rowId",
        camel,
    )
    peer_create = Request(
        "POST",
        "/graphql",
        _graphql(
            "mutation CreateTask($u: String!, $t: String!, $d: String) {"
            " createTask(input: {task: {userId: $u, title: $t, description: $d}})"
            f" {{ task {{ rowId {GRAPHQL_FIELDS} }} }} }}",
            new_task,
        ),
        ("data", "createTask", "task"),
        1,
        "rowId",
        camel,
    )

    def mix(list_request: Request, create_request: Request) -> tuple[Request, ...]:
        return (
            Request(**{**list_request.__dict__, "weight": 4}),
            Request(**{**create_request.__dict__, "weight": 1}),
        )

    # The floor answers the service's documents (a `query` lists, anything else creates, the
    # user is `variables.u`) in the service's shape, but a create with the new task's id alone.
    floor_create = Request(**{**service_create.__dict__, "fields": (), "titles": 0})

    def services(*requests: Request) -> dict[str, tuple[Request, ...]]:
        return {target: requests for target in SERVICE_SETTINGS}

    return [
        Workload("REST list", "list", "REST", services(rest_list)),
        Workload("REST create", "create", "REST", services(rest_create)),
        Workload(
            "GraphQL list",
            "list",
            "GraphQL",
            {**services(service_list), PEER: (peer_list,), FLOOR: (service_list,)},
        ),
        Workload(
            "GraphQL create",
            "create",
            "GraphQL",
            {
                **services(service_create),
                PEER: (peer_create,),
                FLOOR: (floor_create,),
                FLOOR_OUTBOX: (floor_create,),
            },
        ),
        Workload(
            "GraphQL mix 4:1",
            "mix",
            "GraphQL",
            {**services(*mix(service_list, service_create)), PEER: mix(peer_list, peer_create)},
        ),
    ]


def floor_lists_user_id() -> bool:
    """Whether the list document selects userId (the floor then answers it too)."""
    return "userId" in GRAPHQL_FIELDS.split()


# --- prerequisites and databases --------------------------------------------------------------


def check_tools(targets: Sequence[str]) -> None:
    needed = [name for name in INSTALL_HINTS if name != "npm" or PEER in targets]
    missing = [name for name in needed if shutil.which(name) is None]
    if missing:
        hints = "\n".join(f"  {name}: {INSTALL_HINTS[name]}" for name in missing)
        sys.exit(f"missing tools; install them with:\n{hints}")


def install_peer() -> None:
    """`npm ci` in bench/postgraphile unless its node_modules match the lock file already."""
    installed = PEER_DIR / "node_modules" / ".package-lock.json"
    lock = PEER_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("installing PostGraphile (npm ci in bench/postgraphile) ...", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER_DIR, check=True
    )


def database_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_databases() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        for name in DATABASES:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


# The seed's text is ASCII, so lower() is the service's folding rule for the search columns.
SEED = """
    INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at,
                       title_folded, description_folded)
    SELECT gen_random_uuid(), 'user-' || u, title, description, t % 4 = 0, at, at,
           lower(title), lower(description)
    FROM generate_series(1, $2::int) AS t, generate_series(1, $1::int) AS u,
         LATERAL (SELECT timestamptz '2026-01-01' + (t * $1 + u) * interval '1 second') AS s(at),
         LATERAL (SELECT 'Task ' || t || ' of user ' || u) AS n(title),
         LATERAL (SELECT 'Notes ' || md5(u || ':' || t)) AS d(description)
    ORDER BY t, u
"""


async def prepare_databases(users: int, tasks_per_user: int) -> str:
    """The three databases, seeded alike; returns the server's version string."""
    await drop_databases()
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        await admin.execute(f"CREATE DATABASE {SERVICE_DB}")
    finally:
        await admin.close()
    settings = Settings(_env_file=None, database_url=database_url(SERVICE_DB))  # type: ignore[call-arg]
    await upgrade_database(settings)
    connection = await asyncpg.connect(database_url(SERVICE_DB))
    try:
        # Rows in creation order, users interleaved, as a live table would hold them.
        await connection.execute(SEED, users, tasks_per_user)
    finally:
        await connection.close()

    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f"CREATE DATABASE {PEER_DB} TEMPLATE {SERVICE_DB}")
        await admin.execute(f"CREATE DATABASE {OUTBOX_DB} TEMPLATE {SERVICE_DB}")
    finally:
        await admin.close()
    outbox = await asyncpg.connect(database_url(OUTBOX_DB))
    try:
        await let_floor_create(outbox)
    finally:
        await outbox.close()
    peer = await asyncpg.connect(database_url(PEER_DB))
    try:
        # Only the tasks table is PostGraphile's API; the service's own tables are not.
        others = await peer.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'tasks'"
        )
        for row in others:
            await peer.execute(f'DROP TABLE "{row["tablename"]}" CASCADE')
        # So are the triggers that write its live updates' outbox (those tables are gone).
        triggers = await peer.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'tasks'::regclass AND NOT tgisinternal"
        )
        for row in triggers:
            await peer.execute(f'DROP TRIGGER "{row["tgname"]}" ON tasks')
        # The service's search columns are its own business (PostGraphile's API would show them).
        await peer.execute(
            "ALTER TABLE tasks DROP COLUMN title_folded, DROP COLUMN description_folded"
        )
        # The service fills these in itself; a PostGraphile schema needs them as defaults.
        await peer.execute(
            """
            ALTER TABLE tasks ALTER COLUMN id SET DEFAULT gen_random_uuid(),
                              ALTER COLUMN completed SET DEFAULT false,
                              ALTER COLUMN created_at SET DEFAULT now(),
                              ALTER COLUMN updated_at SET DEFAULT now()
            """
        )
    finally:
        await peer.close()
    for name in DATABASES:
        connection = await asyncpg.connect(database_url(name))
        try:
            await connection.execute("VACUUM ANALYZE tasks")
        finally:
            await connection.close()
    return version


async def reseed() -> None:
    """Both databases back to the seeded rows: what creates added goes, then VACUUM ANALYZE.

    The seed holds `user-N` tasks only and every create writes for a `w-N` user (the floor's
    and the answer checks' too), so deleting every other user's rows restores the seed exactly.
    """
    for name in DATABASES:
        connection = await asyncpg.connect(database_url(name))
        try:
            await connection.execute("DELETE FROM tasks WHERE user_id NOT LIKE 'user-%'")
            # The service's own tables start each round empty too (the outbox's events of the
            # deleted creates included).
            for table in ("idempotency_keys", "task_events", "task_event_heads"):
                if await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                    await connection.execute(f"DELETE FROM {table}")
            await connection.execute("VACUUM ANALYZE tasks")
        finally:
            await connection.close()


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The README's production command: `python -m api.serve ... --workers N` (or, as before,
# `uvicorn api.main:app ... --workers N`).
PRODUCTION_COMMAND = re.compile(r"^\S*(python3? -m api\.serve|uvicorn api\.main:app)\b.*--workers")


def readme_server_command() -> list[str]:
    """The production command the README gives."""
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if PRODUCTION_COMMAND.match(line.strip()):
            return shlex.split(line.strip())
    sys.exit("README.md has no production command (`python -m api.serve ... --workers N`)")


def service_command(port: int, workers: int | None = None) -> list[str]:
    """The README's command, run with this interpreter and bound to 127.0.0.1:`port`.

    With `workers`, its `--workers` is that many instead (everything else stays).
    """
    words = readme_server_command()
    # What runs, on this interpreter: `-m api.serve`, or uvicorn with its app.
    runs, first = (
        (["-m", "api.serve"], 3) if words[1:3] == ["-m", "api.serve"] else (["-m", "uvicorn"], 1)
    )
    replaced = {"--host", "--port"} | ({"--workers"} if workers is not None else set())
    arguments: list[str] = []
    skip = False
    for index, word in enumerate(words[first:], start=first):
        if skip:
            skip = False
            continue
        if word in replaced:
            skip = index + 1 < len(words)
            continue
        if word.startswith(tuple(f"{name}=" for name in replaced)):
            continue
        arguments.append(word)
    if workers is not None:
        arguments += ["--workers", str(workers)]
    return [
        sys.executable,
        *runs,
        *arguments,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def option(words: Sequence[str], name: str, default: str) -> str:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return default


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base_url: str

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def start(
    name: str, command: list[str], cwd: Path, env: dict[str, str], port: int, log_dir: Path
) -> Server:
    log = log_dir / f"{name}.log"
    with log.open("wb") as log_file:
        # A session of its own, so tear-down can end the server and every worker it forked.
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, log, f"http://127.0.0.1:{port}")


def stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_ready(server: Server, probe: httpx.Request, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                sys.exit(f"{server.name} exited at start-up:\n{server.log_tail()}")
            try:
                if client.send(probe).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
    sys.exit(f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")


# --- checking answers and running load --------------------------------------------------------


def fill(template: str, user: int, n: int) -> str:
    return template.replace("@USER@", str(user)).replace("@N@", str(n))


def check_answers(base_url: str, target: str, workload: Workload) -> None:
    """One answer of each request kind, checked field by field before any load."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for number, kind in enumerate(workload.requests[target], start=1):
            body = fill(kind.body, 1, number) if kind.body is not None else None
            response = client.request(
                kind.method,
                fill(kind.path, 1, number),
                content=body,
                headers={"Content-Type": "application/json"},
            )
            where = f"{workload.name} on {target}"
            if not 200 <= response.status_code < 300:
                sys.exit(f"{where}: HTTP {response.status_code}: {response.text[:500]}")
            answer: Any = response.json()
            if isinstance(answer, dict) and answer.get("errors"):
                sys.exit(f"{where}: GraphQL errors: {answer['errors']}")
            for key in kind.tasks_at:
                answer = answer[key]
            tasks = answer if isinstance(answer, list) else [answer]
            if len(tasks) != kind.expect:
                sys.exit(f"{where}: {len(tasks)} tasks, expected {kind.expect}")
            for task in tasks:
                missing = {kind.id_field, *kind.fields} - task.keys()
                if missing:
                    sys.exit(f"{where}: answer lacks {sorted(missing)}: {task}")
            # bench/load.lua checks each answer by counting "title" keys: that must hold too.
            if response.text.count('"title"') != kind.title_count:
                sys.exit(f"{where}: the load script's answer check would not hold")


@dataclass
class Run:
    """One measured wrk run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def write_spec(path: Path, requests: Sequence[Request], users: int, duration: int) -> None:
    entries = []
    for kind in requests:
        body = "nil" if kind.body is None else lua_string(kind.body)
        entries.append(
            f"  {{ weight = {kind.weight}, method = {lua_string(kind.method)}, "
            f"path = {lua_string(kind.path)}, body = {body}, expect = {kind.title_count}, "
            'headers = { ["Content-Type"] = "application/json" } },'
        )
    path.write_text(
        f"return {{\n users = {users},\n duration = {duration},\n requests = {{\n"
        + "\n".join(entries)
        + "\n }\n}\n"
    )


def wrk(
    base_url: str,
    requests: Sequence[Request],
    *,
    users: int,
    duration: int,
    grace: int,
    connections: int,
    spec_dir: Path,
) -> Run:
    spec = spec_dir / "spec.lua"
    write_spec(spec, requests, users, duration)
    command = [
        "wrk",
        "--threads", "1",
        "--connections", str(connections),
        "--duration", f"{duration + grace}s",
        "--timeout", f"{grace}s",
        "--script", str(LOAD_SCRIPT),
        base_url,
    ]  # fmt: skip
    finished = subprocess.run(
        command,
        env={**os.environ, "BENCH_SPEC": str(spec)},
        capture_output=True,
        text=True,
        timeout=duration + grace + 60,
        check=False,
    )
    line = next(
        (line for line in finished.stdout.splitlines() if line.startswith("BENCH_RESULT ")), None
    )
    if finished.returncode != 0 or line is None:
        sys.exit(f"wrk failed ({finished.returncode}):\n{finished.stdout}\n{finished.stderr}")
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    errors = {
        "non-2xx": result["bad_status"],
        "GraphQL errors": result["graphql_errors"],
        "wrong answer": result["bad_body"],
        "socket": result["socket_errors"],
        # Answered, but later than the grace period.
        "late": result["timeouts"],
        # Still unanswered `grace` seconds after the last request was sent.
        "never answered": result["sent"] - result["answered"],
    }
    return Run(
        requests_per_second=result["in_window"] / result["duration"],
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=errors,
    )


# --- pgbench ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    """A statement pgbench runs alone: on which database, and what the report calls it."""

    database: str
    script: str
    note: str


CEILINGS = {
    "list": Ceiling(
        SERVICE_DB,
        """\\set u random(1, {users})
SELECT id, user_id, title, description, completed, created_at, updated_at
  FROM tasks WHERE user_id = 'user-' || :u::text ORDER BY created_at, id;
""",
        "the service's list",
    ),
    "create": Ceiling(
        SERVICE_DB,
        """\\set u random(1, {users})
INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at,
                   version, title_folded, description_folded)
  VALUES (gen_random_uuid(), 'w-' || :u::text, 'Bench task', 'Created by the benchmark',
          false, now(), now(), 1, 'bench task', 'created by the benchmark');
""",
        "the service's INSERT, its outbox trigger firing",
    ),
    # The floor's own INSERT (../shared/floor/app.py), where the floor and PostGraphile write.
    "create, copy": Ceiling(
        PEER_DB,
        """\\set u random(1, {users})
INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at, version)
  VALUES (gen_random_uuid(), 'w-' || :u::text, 'bench', 'x', false, now(), now(), 1)
  RETURNING id;
""",
        "the floor's INSERT on PostGraphile's copy (no trigger)",
    ),
}


def pgbench(name: str, *, users: int, duration: int, connections: int, work_dir: Path) -> Run:
    """The database alone running one of the `CEILINGS` statements, prepared."""
    ceiling = CEILINGS[name]
    slug = name.replace(", ", "-")
    script = work_dir / f"pgbench-{slug}.sql"
    script.write_text(ceiling.script.format(users=users))
    prefix = work_dir / f"pgbench-log-{slug}"
    url = make_url(database_url(ceiling.database))
    command = [
        "pgbench", "--no-vacuum", "--protocol=prepared",
        "--client", str(connections), "--jobs", "1", "--time", str(duration),
        "--file", str(script), "--log", f"--log-prefix={prefix}",
        "--host", url.host or "127.0.0.1", "--port", str(url.port or 5432),
        "--username", url.username or "postgres", url.database or ceiling.database,
    ]  # fmt: skip
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = url.password
    finished = subprocess.run(
        command, cwd=work_dir, env=env, capture_output=True, text=True, check=False
    )
    match = re.search(r"tps = ([\d.]+)", finished.stdout)
    if finished.returncode != 0 or match is None:
        sys.exit(f"pgbench failed:\n{finished.stdout}\n{finished.stderr}")
    failed = re.search(r"number of failed transactions: (\d+)", finished.stdout)
    latencies: list[float] = []
    for log in work_dir.glob(f"{prefix.name}.*"):
        for entry in log.read_text().splitlines():
            latencies.append(int(entry.split()[2]) / 1000)
        log.unlink()
    cuts = statistics.quantiles(latencies, n=100)
    return Run(
        requests_per_second=float(match.group(1)),
        p50_ms=statistics.median(latencies),
        p99_ms=cuts[98],
        errors={"failed": int(failed.group(1)) if failed else 0},
    )


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Figures:
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)

    @property
    def errors(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for run in self.runs:
            for name, count in run.errors.items():
                total[name] = total.get(name, 0) + count
        return {name: count for name, count in total.items() if count}


def target_list(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TARGETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}"
        )
    return [TARGETS[name] for name in TARGETS if name in names]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each")
    parser.add_argument(
        "--grace",
        type=int,
        default=2,
        help="seconds an answer may take before it counts as never answered",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds, each from the reseeded data; medians shown",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--tasks-per-user", type=int, default=20)
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="WORKLOAD",
        help="run only these workloads, e.g. --only 'REST list' 'GraphQL list'",
    )
    parser.add_argument(
        "--targets",
        type=target_list,
        default=[TARGETS[name] for name in TARGETS if name not in (SERVICE_BLIND, SERVICE_LOGGED)],
        metavar="T1,T2",
        help="what to measure, comma-separated, from: service (the README's production "
        "command), service-1 (the same with --workers 1), service-blind (metrics and request "
        "ids off), service-logged (the app's access log on), postgraphile, floor "
        f"({FLOOR_APP_DIR}, GraphQL list and create only; skipped if missing), floor-outbox "
        "(the floor's create on the service's own table, its outbox trigger firing); default: "
        "all but service-blind and service-logged",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the answer checks, leave the servers running (to profile them) until "
        "Ctrl-C or SIGTERM, which tears down",
    )
    return parser.parse_args()


def start_service(port: int, work_dir: Path, target: str = SERVICE) -> Server:
    # Every observability setting at its default unless the target changes it.
    defaults = {
        "TASK_API_METRICS_ENABLED": "true",
        "TASK_API_REQUEST_IDS": "true",
        "TASK_API_ACCESS_LOG": "false",
    }
    return start(
        target,
        service_command(port, 1 if target == SERVICE_1 else None),
        ROOT,
        {"DATABASE_URL": database_url(SERVICE_DB), **defaults, **SERVICE_SETTINGS[target]},
        port,
        work_dir,
    )


def start_peer(port: int, work_dir: Path) -> Server:
    node = PEER_DIR / "node_modules" / ".bin" / "node"
    cli = PEER_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    command = [str(node), str(cli), "--config", "graphile.config.mjs"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = {
        "DATABASE_URL": database_url(PEER_DB),
        "GRAPHILE_ENV": "production",
        "NODE_ENV": "production",
    }
    return start(PEER, command, PEER_DIR, env, port, work_dir)


def floor_command(port: int) -> list[str]:
    """The floor's README command: uvicorn from its own folder, on this interpreter."""
    return [
        sys.executable, "-m", "uvicorn", "app:app", "--app-dir", FLOOR_APP_DIR,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(FLOOR_WORKERS),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
    ]  # fmt: skip


def start_floor(port: int, work_dir: Path, target: str = FLOOR) -> Server:
    # The floor on PostGraphile's copy, or on the service's table (FLOOR_OUTBOX).
    env = {"FLOOR_DSN": database_url(FLOORS[target])}
    if floor_lists_user_id():
        env["FLOOR_WITH_USER_ID"] = "1"
    return start(target, floor_command(port), ROOT, env, port, work_dir)


def start_target(target: str, work_dir: Path) -> tuple[Server, httpx.Request]:
    """The target's server and a request that answers 200 once it is ready."""
    port = free_port()
    if target in SERVICE_SETTINGS:
        server = start_service(port, work_dir, target)
    elif target == PEER:
        server = start_peer(port, work_dir)
    else:
        server = start_floor(port, work_dir, target)
    if target in SERVICE_SETTINGS:
        return server, httpx.Request("GET", f"{server.base_url}/health")
    probe = (
        {"query": "{ __typename }"}
        if target == PEER
        else {"query": "query Probe { tasks }", "variables": {"u": "user-1"}}
    )
    return server, httpx.Request("POST", f"{server.base_url}/graphql", json=probe)


def measure_ceiling(arguments: argparse.Namespace, work_dir: Path) -> dict[str, Run]:
    ceiling: dict[str, Run] = {}
    for name in CEILINGS:
        print(f"pgbench {name} ...", flush=True)
        for duration in (arguments.warmup, arguments.duration):
            ceiling[name] = pgbench(
                name,
                users=arguments.users,
                duration=duration,
                connections=arguments.connections,
                work_dir=work_dir,
            )
    return ceiling


def measure_rounds(
    arguments: argparse.Namespace,
    chosen: Sequence[Workload],
    servers: dict[str, Server],
    work_dir: Path,
) -> dict[tuple[str, str], Figures]:
    """Every workload on every target, alternating the order, round after round.

    Each round starts from the seeded data: what the previous round created is deleted first.
    """
    figures: dict[tuple[str, str], Figures] = {}
    common = {"users": arguments.users, "connections": arguments.connections, "spec_dir": work_dir}
    for round_number in range(1, arguments.rounds + 1):
        print(f"round {round_number}/{arguments.rounds}: reseeding ...", flush=True)
        asyncio.run(reseed())
        for workload in chosen:
            targets = list(workload.requests)
            if round_number % 2 == 0:
                targets.reverse()
            for target in targets:
                print(
                    f"round {round_number}/{arguments.rounds}: {workload.name} on {target} ...",
                    flush=True,
                )
                requests, base_url = workload.requests[target], servers[target].base_url
                wrk(base_url, requests, duration=arguments.warmup, grace=1, **common)
                run = wrk(
                    base_url, requests, duration=arguments.duration, grace=arguments.grace, **common
                )
                figures.setdefault((workload.name, target), Figures()).runs.append(run)
    for server in servers.values():
        if server.process.poll() is not None:
            print(f"warning: {server.name} exited during the run:\n{server.log_tail()}")
    return figures


def choose_targets(requested: Sequence[str]) -> list[str]:
    targets = list(requested)
    if set(FLOORS) & set(targets) and not FLOOR_APP.is_file():
        print(
            f"skipping the floor: {FLOOR_APP_DIR}/app.py (beside the repository) is missing, so "
            "there are no shares of the floor's req/s and no verdicts on them",
            flush=True,
        )
        targets = [target for target in targets if target not in FLOORS]
    if not targets:
        sys.exit("nothing to measure")
    return targets


def main() -> None:
    arguments = parse_arguments()
    targets = choose_targets(arguments.targets)
    check_tools(targets)
    if PEER in targets:
        install_peer()
    # SIGTERM tears down as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    chosen = []
    for workload in workloads(arguments.tasks_per_user):
        if arguments.only is not None and workload.name not in arguments.only:
            continue
        requests = {name: kinds for name, kinds in workload.requests.items() if name in targets}
        if requests:
            chosen.append(Workload(workload.name, workload.operation, workload.face, requests))
    if not chosen:
        sys.exit("no workload runs on the chosen targets")

    with ExitStack() as cleanup:
        work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        cleanup.callback(lambda: asyncio.run(drop_databases()))
        print(
            f"seeding {arguments.users:,} users x {arguments.tasks_per_user} tasks in two "
            "scratch databases ...",
            flush=True,
        )
        pg_version = asyncio.run(prepare_databases(arguments.users, arguments.tasks_per_user))
        ceiling = {} if arguments.keep else measure_ceiling(arguments, work_dir)

        servers: dict[str, Server] = {}
        probes: dict[str, httpx.Request] = {}
        for target in targets:
            servers[target], probes[target] = start_target(target, work_dir)
            cleanup.callback(stop, servers[target])
        for target in targets:
            wait_ready(servers[target], probes[target])
        for workload in chosen:
            for target in workload.requests:
                check_answers(servers[target].base_url, target, workload)

        if arguments.keep:
            print()
            for server in servers.values():
                print(f"{server.name} at {server.base_url} (session {server.process.pid})")
            print("Ctrl-C or SIGTERM tears down", flush=True)
            while True:
                time.sleep(3600)

        figures = measure_rounds(arguments, chosen, servers, work_dir)
        report(arguments, chosen, targets, figures, ceiling, pg_version=pg_version)


# --- the report -------------------------------------------------------------------------------


def peer_versions() -> tuple[str, str]:
    lock = json.loads((PEER_DIR / "package-lock.json").read_text())
    packages = lock["packages"]
    return (
        packages["node_modules/postgraphile"]["version"],
        packages["node_modules/node"]["version"],
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def report(
    arguments: argparse.Namespace,
    chosen: Sequence[Workload],
    targets: Sequence[str],
    figures: dict[tuple[str, str], Figures],
    ceiling: dict[str, Run],
    *,
    pg_version: str,
) -> None:
    readme_cmd = readme_server_command()
    workers = int(option(readme_cmd, "--workers", "1"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    pool = f"{settings.db_pool_size} + {settings.db_max_overflow} overflow"
    cores = len(os.sched_getaffinity(0))

    def median(workload: str | None, target: str, attribute: str) -> float | None:
        found = figures.get((workload, target)) if workload else None
        return found.median(attribute) if found else None

    graphql_of = {w.operation: w.name for w in chosen if w.face == "GraphQL"}
    floor_rps = {
        operation: median(f"GraphQL {operation}", FLOOR, "requests_per_second")
        for operation in ("list", "create")
    }
    if floor_rps["list"] and floor_rps["create"]:
        # Four lists and one create take 4/list + 1/create seconds on the floor.
        floor_rps["mix"] = 5 / (4 / floor_rps["list"] + 1 / floor_rps["create"])

    def floor_share(workload: Workload, target: str) -> float | None:
        base = floor_rps.get(workload.operation)
        own = median(workload.name, target, "requests_per_second")
        return own / base if base and own is not None else None

    def peer_ratio(workload: Workload, target: str) -> tuple[float, str] | None:
        """The target's req/s over PostGraphile's for the same work (its GraphQL, for REST)."""
        peer_name = (
            workload.name if PEER in workload.requests else graphql_of.get(workload.operation)
        )
        peer_rps = median(peer_name, PEER, "requests_per_second")
        own = median(workload.name, target, "requests_per_second")
        if not peer_rps or own is None:
            return None
        return own / peer_rps, "" if PEER in workload.requests else " (vs its GraphQL)"

    print()
    print(
        f"{arguments.users * arguments.tasks_per_user:,} tasks ({arguments.users:,} users x "
        f"{arguments.tasks_per_user}), {arguments.connections} connections, wrk with one "
        f"thread, a random user per request; medians of {arguments.rounds} alternating rounds "
        f"of {arguments.duration} s, each round from the reseeded data and each run after a "
        f"{arguments.warmup} s warm-up."
    )
    print(
        f"{cores} cores, shared by every server, PostgreSQL {pg_version} and the load tool "
        "(all on this machine):"
    )
    if SERVICE in targets:
        print(
            f"  service: `{shlex.join(readme_cmd)}` from the README = {workers} worker "
            f"process(es), pool {pool} connections each"
        )
    if SERVICE_1 in targets:
        print(f"  service-1: the same command with --workers 1, pool {pool} connections")
    if SERVICE_BLIND in targets:
        print("  service-blind: the same command with metrics and request ids off")
    if SERVICE_LOGGED in targets:
        print("  service-logged: the same command with the app's access log on")
    if PEER in targets:
        postgraphile_version, node_version = peer_versions()
        print(
            f"  PostGraphile {postgraphile_version}: one Node {node_version} process, pool "
            f"{os.environ.get('PG_POOL_MAX', '10')} connections, production settings"
        )
    if FLOOR in targets:
        print(
            f"  floor: {FLOOR_APP_DIR}/app.py, uvicorn with {FLOOR_WORKERS} workers, uvloop, "
            "httptools, no access log, pool 10 each, on PostGraphile's copy; GraphQL list "
            "and create only"
        )
    if FLOOR_OUTBOX in targets:
        print(
            "  floor-outbox: the same floor on a copy of the service's database (its table, "
            "indexes and outbox trigger; the search columns by default); GraphQL create only"
        )
    print()
    header = (
        f"{'workload':<18}{'target':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'of floor':>11}  ÷ PostGraphile"
    )
    print(header)
    print("-" * len(header))
    for workload in chosen:
        for target in workload.requests:
            found = figures[(workload.name, target)]
            share = floor_share(workload, target)
            share_text = ""
            if share is not None:
                share_text = f"{share:.0%}" + ("*" if workload.operation == "mix" else " ")
            ratio = peer_ratio(workload, target) if target in (SERVICE, SERVICE_1) else None
            ratio_text = f"{ratio[0]:.2f}x{ratio[1]}" if ratio else ""
            errors = sum(found.errors.values())
            print(
                f"{workload.name:<18}{target:<14}{found.median('requests_per_second'):>9,.0f}"
                f"{found.median('p50_ms'):>9.1f}{found.median('p99_ms'):>9.1f}{errors:>8}"
                f"{share_text:>11}  {ratio_text}".rstrip()
            )
    for name, run in ceiling.items():
        print(
            f"{'SQL ' + name:<18}{'pgbench':<14}{run.requests_per_second:>9,.0f}"
            f"{run.p50_ms:>9.1f}{run.p99_ms:>9.1f}{run.error_count:>8}{'':>11}  "
            f"PostgreSQL alone, prepared: {CEILINGS[name].note}"
        )
    print()
    if floor_rps.get("list") or floor_rps.get("create"):
        print(
            "of floor: req/s over the floor's for the same kind of work (lists over its list, "
            "creates over its create"
            + (
                "; * the mix over a 4:1 blend of the two, 5 / (4/list + 1/create)"
                if "mix" in floor_rps
                else ""
            )
            + ")."
        )
    reference = SYNC_REFERENCE.get(workers, SYNC_REFERENCE[2])
    print(
        f"Reference, not run here: FastAPI + SQLModel with sync sessions, {workers} worker(s), "
        f"REST ~{reference['list']} list / ~{reference['create']} create req/s; with "
        f"Strawberry, GraphQL ~{SYNC_GRAPHQL_REFERENCE['list']} / "
        f"~{SYNC_GRAPHQL_REFERENCE['create']} (same machine size, data and load)."
    )
    report_targets(chosen, targets, figures, floor_share, peer_ratio)
    report_outbox_floor(chosen, figures)
    report_seeing(chosen, targets, figures)


def report_seeing(
    chosen: Sequence[Workload], targets: Sequence[str], figures: dict[tuple[str, str], Figures]
) -> None:
    """What metrics and request ids (on by default), and the access log, cost in req/s."""
    if SERVICE not in targets or not ({SERVICE_BLIND, SERVICE_LOGGED} & set(targets)):
        return
    print("\nWhat seeing costs (req/s of the service as configured, over service-blind's):")
    for workload in chosen:
        if SERVICE not in workload.requests:
            continue
        blind = figures.get((workload.name, SERVICE_BLIND))
        seeing = figures[(workload.name, SERVICE)].median("requests_per_second")
        parts = []
        if blind is not None and blind.median("requests_per_second"):
            share = seeing / blind.median("requests_per_second")
            parts.append(f"metrics + request ids {share:.1%} ({verdict(share >= 0.95)} at 95%)")
        logged = figures.get((workload.name, SERVICE_LOGGED))
        if logged is not None and blind is not None and blind.median("requests_per_second"):
            share = logged.median("requests_per_second") / blind.median("requests_per_second")
            parts.append(f"with the access log too {share:.1%}")
        print(f"  {workload.name}: " + "; ".join(parts))


def report_outbox_floor(
    chosen: Sequence[Workload], figures: dict[tuple[str, str], Figures]
) -> None:
    """The creates over the floor's create on the service's own table (information only)."""
    outbox = figures.get(("GraphQL create", FLOOR_OUTBOX))
    if outbox is None:
        return
    base = outbox.median("requests_per_second")
    shares = [
        f"{workload.name} {own.median('requests_per_second') / base:.0%}"
        for workload in chosen
        if workload.operation == "create" and (own := figures.get((workload.name, SERVICE)))
    ]
    if shares:
        print(
            "Information, not a target: the service's creates over the floor's create on the "
            f"service's own table (floor-outbox, {base:,.0f} req/s): {', '.join(shares)}."
        )


def report_targets(
    chosen: Sequence[Workload],
    targets: Sequence[str],
    figures: dict[tuple[str, str], Figures],
    floor_share: Any,
    peer_ratio: Any,
) -> None:
    """The issue's targets, judged on the service as the README runs it."""
    subject = SERVICE if SERVICE in targets else SERVICE_1 if SERVICE_1 in targets else None
    if subject is None:
        print("\nTargets: not judged (no service measured)")
        return
    print(
        "\nTargets, judged on "
        + (
            "the service as the README's command runs it:"
            if subject == SERVICE
            else "service-1 (the README's command was not measured):"
        )
    )
    other = SERVICE_1 if subject == SERVICE and SERVICE_1 in targets else None

    print(
        f"  every list and create workload at least {FLOOR_SHARE_TARGET:.0%} of the floor's "
        f"req/s (aim {FLOOR_SHARE_AIM:.0%}):"
    )
    for workload in chosen:
        if workload.operation == "mix" or subject not in workload.requests:
            continue
        share = floor_share(workload, subject)
        if share is None:
            print(f"    {workload.name}: not judged (the floor was not measured)")
            continue
        aim = "reached" if share >= FLOOR_SHARE_AIM else "not reached"
        print(
            f"    {workload.name}: {share:.0%} of the floor's {workload.operation} "
            f"({verdict(share >= FLOOR_SHARE_TARGET)}; aim {aim})"
        )

    graphql_list = next((w for w in chosen if w.face == "GraphQL" and w.operation == "list"), None)
    ratio = peer_ratio(graphql_list, subject) if graphql_list else None
    if ratio is None:
        print("  GraphQL list at least 1.0x PostGraphile's req/s: not judged (not measured)")
    else:
        extra = ""
        if other:
            per_process = peer_ratio(graphql_list, other)
            if per_process:
                extra = f"; one worker: {per_process[0]:.2f}x, per process"
        print(
            f"  GraphQL list at least 1.0x PostGraphile's req/s: {ratio[0]:.2f}x "
            f"({verdict(ratio[0] >= 1.0)}{extra})"
        )

    print(f"  p99 no worse than {PEER_P99_LIMIT}x PostGraphile's p99:")
    judged = False
    for workload in chosen:
        if PEER not in workload.requests or subject not in workload.requests:
            continue
        judged = True
        own = figures[(workload.name, subject)].median("p99_ms")
        peer = figures[(workload.name, PEER)].median("p99_ms")
        print(
            f"    {workload.name}: {own:.1f} vs {peer:.1f} ms = {own / peer:.2f}x "
            f"({verdict(own <= PEER_P99_LIMIT * peer)})"
        )
    if not judged:
        print("    not judged (PostGraphile was not measured)")

    all_errors: dict[str, int] = {}
    for found in figures.values():
        for name, count in found.errors.items():
            all_errors[name] = all_errors.get(name, 0) + count
    detail = ", ".join(f"{count} {name}" for name, count in all_errors.items())
    total = sum(all_errors.values())
    print(
        f"  errors, every target: {total} ({verdict(not total)})"
        + (f": {detail}" if detail else "")
    )


if __name__ == "__main__":
    main()
