"""The service against PostGraphile on the same machine, the same data and in the same run.

    .venv/bin/python bench/peers.py                  # about 8 minutes with the defaults
    .venv/bin/python bench/peers.py --help           # durations, rounds, connections, data size

What it does, from the repository root, with a PostgreSQL at BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres):

1. Makes two scratch databases: one migrated by the service and seeded with generate_series
   (10,000 users x 20 tasks), and an identical copy of it (same table, indexes and rows) for
   PostGraphile, where the columns the service fills in itself get defaults, as a PostGraphile
   schema needs them.
2. Measures the database's own ceiling for the same statements with pgbench.
3. Starts the service exactly as the README's production command says (its workers, server and
   settings; only the host and port differ), and PostGraphile 5 from bench/postgraphile (installed
   with `npm ci` on first use; never a dependency of the service), both on 127.0.0.1.
4. Checks one answer of every workload on each side (shape, fields, no errors), then runs every
   workload against each side in alternating order, round after round, each measured run after
   its own warm-up, with wrk (one thread) and bench/load.lua.
5. Prints one table of medians over the rounds, the ratios the targets are about, and tears down
   every process it started and both databases, also when something fails.

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
SERVICE, PEER = "service", "PostGraphile"

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

    return [
        Workload("REST list", "list", "REST", {SERVICE: (rest_list,)}),
        Workload("REST create", "create", "REST", {SERVICE: (rest_create,)}),
        Workload("GraphQL list", "list", "GraphQL", {SERVICE: (service_list,), PEER: (peer_list,)}),
        Workload(
            "GraphQL create",
            "create",
            "GraphQL",
            {SERVICE: (service_create,), PEER: (peer_create,)},
        ),
        Workload(
            "GraphQL mix 4:1",
            "mix",
            "GraphQL",
            {SERVICE: mix(service_list, service_create), PEER: mix(peer_list, peer_create)},
        ),
    ]


# --- prerequisites and databases --------------------------------------------------------------


def check_tools() -> None:
    missing = [name for name in INSTALL_HINTS if shutil.which(name) is None]
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
        for name in (SERVICE_DB, PEER_DB):
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


SEED = """
    INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at)
    SELECT gen_random_uuid(), 'user-' || u, 'Task ' || t || ' of user ' || u,
           'Notes ' || md5(u || ':' || t), t % 4 = 0, at, at
    FROM generate_series(1, $2::int) AS t, generate_series(1, $1::int) AS u,
         LATERAL (SELECT timestamptz '2026-01-01' + (t * $1 + u) * interval '1 second') AS s(at)
    ORDER BY t, u
"""


async def prepare_databases(users: int, tasks_per_user: int) -> str:
    """Both databases, seeded alike; returns the server's version string."""
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
    finally:
        await admin.close()
    peer = await asyncpg.connect(database_url(PEER_DB))
    try:
        # Only the tasks table is PostGraphile's API; the service's own tables are not.
        others = await peer.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'tasks'"
        )
        for row in others:
            await peer.execute(f'DROP TABLE "{row["tablename"]}" CASCADE')
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
    for name in (SERVICE_DB, PEER_DB):
        connection = await asyncpg.connect(database_url(name))
        try:
            await connection.execute("VACUUM ANALYZE tasks")
        finally:
            await connection.close()
    return version


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readme_server_command() -> list[str]:
    """The production command the README gives (`... uvicorn api.main:app ... --workers N`)."""
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if re.match(r"^\S*uvicorn api\.main:app\b.*--workers", line.strip()):
            return shlex.split(line.strip())
    sys.exit("README.md has no production command (`uvicorn api.main:app ... --workers N`)")


def service_command(port: int) -> list[str]:
    """The README's command, run with this interpreter and bound to 127.0.0.1:`port`."""
    words = readme_server_command()
    arguments: list[str] = []
    skip = False
    for index, word in enumerate(words[1:], start=1):
        if skip:
            skip = False
            continue
        if word in {"--host", "--port"}:
            skip = index + 1 < len(words)
            continue
        if word.startswith(("--host=", "--port=")):
            continue
        arguments.append(word)
    return [
        sys.executable,
        "-m",
        "uvicorn",
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
            if response.text.count('"title"') != kind.expect:
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
            f"path = {lua_string(kind.path)}, body = {body}, expect = {kind.expect}, "
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

PGBENCH_SCRIPTS = {
    "list": """\\set u random(1, {users})
SELECT id, user_id, title, description, completed, created_at, updated_at
  FROM tasks WHERE user_id = 'user-' || :u::text ORDER BY created_at, id;
""",
    "create": """\\set u random(1, {users})
INSERT INTO tasks (id, user_id, title, description, completed, created_at, updated_at)
  VALUES (gen_random_uuid(), 'w-' || :u::text, 'Bench task', 'Created by the benchmark',
          false, now(), now());
""",
}


def pgbench(operation: str, *, users: int, duration: int, connections: int, work_dir: Path) -> Run:
    """The database alone running the statement the operation costs, prepared."""
    script = work_dir / f"pgbench-{operation}.sql"
    script.write_text(PGBENCH_SCRIPTS[operation].format(users=users))
    prefix = work_dir / f"pgbench-log-{operation}"
    url = make_url(database_url(SERVICE_DB))
    command = [
        "pgbench", "--no-vacuum", "--protocol=prepared",
        "--client", str(connections), "--jobs", "1", "--time", str(duration),
        "--file", str(script), "--log", f"--log-prefix={prefix}",
        "--host", url.host or "127.0.0.1", "--port", str(url.port or 5432),
        "--username", url.username or "postgres", url.database or SERVICE_DB,
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
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians shown")
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
        "--keep",
        action="store_true",
        help="after the answer checks, leave both servers running (to profile them) until "
        "Ctrl-C or SIGTERM, which tears down",
    )
    return parser.parse_args()


def start_service(port: int, work_dir: Path) -> Server:
    return start(
        SERVICE,
        service_command(port),
        ROOT,
        {"DATABASE_URL": database_url(SERVICE_DB)},
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


def measure_ceiling(arguments: argparse.Namespace, work_dir: Path) -> dict[str, Run]:
    ceiling: dict[str, Run] = {}
    for operation in PGBENCH_SCRIPTS:
        print(f"pgbench {operation} ...", flush=True)
        for duration in (arguments.warmup, arguments.duration):
            ceiling[operation] = pgbench(
                operation,
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
    """Every workload on every target, alternating which goes first, round after round."""
    figures: dict[tuple[str, str], Figures] = {}
    common = {"users": arguments.users, "connections": arguments.connections, "spec_dir": work_dir}
    for round_number in range(1, arguments.rounds + 1):
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


def main() -> None:
    arguments = parse_arguments()
    check_tools()
    install_peer()
    # SIGTERM tears down as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    chosen = [
        workload
        for workload in workloads(arguments.tasks_per_user)
        if arguments.only is None or workload.name in arguments.only
    ]

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

        servers = {
            SERVICE: start_service(free_port(), work_dir),
            PEER: start_peer(free_port(), work_dir),
        }
        for server in servers.values():
            cleanup.callback(stop, server)
        wait_ready(servers[SERVICE], httpx.Request("GET", f"{servers[SERVICE].base_url}/health"))
        typename = {"query": "{ __typename }"}
        peer_probe = httpx.Request("POST", f"{servers[PEER].base_url}/graphql", json=typename)
        wait_ready(servers[PEER], peer_probe)
        for workload in chosen:
            for target in workload.requests:
                check_answers(servers[target].base_url, target, workload)

        if arguments.keep:
            print(
                f"\nservice at {servers[SERVICE].base_url} (session {servers[SERVICE].process.pid})"
                f", PostGraphile at {servers[PEER].base_url} (session "
                f"{servers[PEER].process.pid}); Ctrl-C or SIGTERM tears down",
                flush=True,
            )
            while True:
                time.sleep(3600)

        figures = measure_rounds(arguments, chosen, servers, work_dir)
        report(arguments, chosen, figures, ceiling, pg_version=pg_version)


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
    figures: dict[tuple[str, str], Figures],
    ceiling: dict[str, Run],
    *,
    pg_version: str,
) -> None:
    readme_cmd = readme_server_command()
    workers = int(option(readme_cmd, "--workers", "1"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    pool = f"{settings.db_pool_size} + {settings.db_max_overflow} overflow"
    postgraphile_version, node_version = peer_versions()
    cores = len(os.sched_getaffinity(0))

    print()
    print(
        f"{arguments.users * arguments.tasks_per_user:,} tasks ({arguments.users:,} users x "
        f"{arguments.tasks_per_user}), {arguments.connections} connections, wrk with one "
        f"thread, a random user per request; medians of {arguments.rounds} alternating rounds "
        f"of {arguments.duration} s, each after a {arguments.warmup} s warm-up."
    )
    print(
        f"{cores} cores, shared by both servers, PostgreSQL {pg_version} and the load tool "
        "(all on this machine):"
    )
    print(
        f"  service: `{shlex.join(readme_cmd)}` from the README = {workers} worker "
        f"process(es), pool {pool} connections each"
    )
    print(
        f"  PostGraphile {postgraphile_version}: one Node {node_version} process, pool "
        f"{os.environ.get('PG_POOL_MAX', '10')} connections, production settings"
    )
    print()
    header = (
        f"{'workload':<18}{'target':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}   {'service / PostGraphile':<24}"
    )
    print(header)
    print("-" * len(header))

    def median(workload: str, target: str, attribute: str) -> float | None:
        found = figures.get((workload, target))
        return found.median(attribute) if found else None

    graphql_of = {w.operation: w.name for w in chosen if w.face == "GraphQL"}
    for workload in chosen:
        for target in workload.requests:
            found = figures[(workload.name, target)]
            ratio = ""
            if target == SERVICE:
                peer_name = (
                    workload.name
                    if PEER in workload.requests
                    else graphql_of.get(workload.operation)
                )
                peer_rps = median(peer_name, PEER, "requests_per_second") if peer_name else None
                if peer_rps:
                    own = found.median("requests_per_second")
                    note = "" if PEER in workload.requests else " (vs its GraphQL)"
                    ratio = f"{own / peer_rps:.2f}x{note}"
            errors = sum(found.errors.values())
            print(
                f"{workload.name:<18}{target:<14}{found.median('requests_per_second'):>9,.0f}"
                f"{found.median('p50_ms'):>9.1f}{found.median('p99_ms'):>9.1f}{errors:>8}   "
                f"{ratio}"
            )
    for operation, run in ceiling.items():
        print(
            f"{'SQL ' + operation:<18}{'pgbench':<14}{run.requests_per_second:>9,.0f}"
            f"{run.p50_ms:>9.1f}{run.p99_ms:>9.1f}{run.error_count:>8}   "
            "PostgreSQL alone, same statement, prepared"
        )
    print()
    reference = SYNC_REFERENCE.get(workers, SYNC_REFERENCE[2])
    print(
        f"Reference, not run here: FastAPI + SQLModel with sync sessions, {workers} worker(s), "
        f"REST ~{reference['list']} list / ~{reference['create']} create req/s; with "
        f"Strawberry, GraphQL ~{SYNC_GRAPHQL_REFERENCE['list']} / "
        f"~{SYNC_GRAPHQL_REFERENCE['create']} (same machine size, data and load)."
    )

    print("\nTargets:")
    for workload in chosen:
        own = figures[(workload.name, SERVICE)]
        own_rps = own.median("requests_per_second")
        if workload.face == "GraphQL":
            peer = figures[(workload.name, PEER)]
            peer_rps = peer.median("requests_per_second")
            faster = own_rps >= peer_rps
            tail = own.median("p99_ms") <= peer.median("p99_ms")
            print(
                f"  {workload.name}: {own_rps / peer_rps:.2f}x PostGraphile's req/s "
                f"(>= 1: {verdict(faster)}); p99 {own.median('p99_ms'):.1f} vs "
                f"{peer.median('p99_ms'):.1f} ms ({verdict(tail)})"
            )
        else:
            graphql_name = graphql_of.get(workload.operation, "")
            graphql = median(graphql_name, SERVICE, "requests_per_second")
            parts = []
            if graphql:
                parts.append(
                    f"{own_rps / graphql:.2f}x the service's GraphQL {workload.operation} "
                    f"(>= 1.5: {verdict(own_rps >= 1.5 * graphql)})"
                )
            sync = reference.get(workload.operation)
            if sync:
                parts.append(
                    f"{own_rps / sync:.1f}x the sync reference {sync} "
                    f"(>= 5: {verdict(own_rps >= 5 * sync)})"
                )
            print(f"  {workload.name}: " + "; ".join(parts))
    all_errors: dict[str, int] = {}
    for found in figures.values():
        for name, count in found.errors.items():
            all_errors[name] = all_errors.get(name, 0) + count
    detail = ", ".join(f"{count} {name}" for name, count in all_errors.items())
    total = sum(all_errors.values())
    print(f"  errors: {total} ({verdict(not total)})" + (f": {detail}" if detail else ""))


if __name__ == "__main__":
    main()
