"""Load benchmark: the service under uvicorn on PostgreSQL, many clients, a mix of every operation.

    python bench/load.py [--clients 100] [--duration 30] [--workers 2]

Starts `uvicorn api.main:app` (as the README runs it in production) on 127.0.0.1 over a scratch
PostgreSQL database, gives every client its own user with 20 tasks, then lets the clients run for
`--duration` seconds. Each client sends one request at a time on its own keep-alive connection:
list, create, update, complete or delete, over REST or GraphQL, some with Idempotency-Key, If-Match
or expectedVersion. It prints requests per second, p50/p99 latency and the errors (any answer but
the expected success, a GraphQL error, a broken connection or a request unanswered after
`--timeout` seconds), which should be zero. Not part of the test suite.

Server, database and this load generator share the machine's cores: compare runs of the same
machine in alternating rounds, not single figures across machines.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TASKS_PER_USER = 20
# Weights of the operations; creates and deletes balance, so each user keeps about 20 tasks.
MIX = {"list": 30, "create": 20, "update": 20, "complete": 10, "delete": 20}
TASK_FIELDS = "id title completed version"


class HTTPError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection: a few lines, so the load generator stays light."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise HTTPError("connection closed by the server")
        status = int(status_line.split()[1])
        response_headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if response_headers.get("transfer-encoding") == "chunked":
            content = b""
            while size := int((await self.reader.readline()).strip(), 16):
                content += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            content = await self.reader.readexactly(int(response_headers.get("content-length", 0)))
        if response_headers.get("connection") == "close":
            await self.close()
        return status, response_headers, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    by_operation: dict[str, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


class Client:
    """A user working on their own tasks, one request at a time."""

    def __init__(self, number: int, port: int, stats: Stats, timeout: float) -> None:
        self.user = f"bench-{number}"
        self.connection = Connection(port)
        self.stats = stats
        self.timeout = timeout
        self.random = random.Random(number)
        self.tasks: dict[str, int] = {}  # id -> version this client last saw

    async def rest(
        self, method: str, suffix: str, expected: int, body: Any = None, **headers: str
    ) -> Any:
        status, _, content = await self.connection.request(
            method, f"/api/{self.user}/tasks{suffix}", body, headers
        )
        if status != expected:
            raise HTTPError(f"REST {method} answered {status}: {content[:200]!r}")
        return json.loads(content) if content else None

    async def graphql(self, query: str, **variables: Any) -> Any:
        status, _, content = await self.connection.request(
            "POST", "/graphql", {"query": query, "variables": variables}
        )
        answer = json.loads(content)
        if status != 200 or answer.get("errors"):
            raise HTTPError(f"GraphQL answered {status}: {content[:200]!r}")
        return next(iter(answer["data"].values()))

    async def create(self, rest: bool) -> None:
        title = f"task {uuid.uuid4().hex[:8]}"
        key = str(uuid.uuid4()) if self.random.random() < 0.5 else None
        if rest:
            headers = {"Idempotency-Key": key} if key else {}
            task = await self.rest("POST", "", 201, {"title": title}, **headers)
        else:
            task = await self.graphql(
                f"mutation($u: String!, $t: String!, $k: String) {{ createTask(userId: $u, "
                f"input: {{title: $t}}, idempotencyKey: $k) {{ {TASK_FIELDS} }} }}",
                u=self.user,
                t=title,
                k=key,
            )
        self.tasks[task["id"]] = task["version"]

    async def run_one(self, operation: str, rest: bool) -> None:
        if operation != "list" and operation != "create" and not self.tasks:
            operation = "create"
        if operation == "create":
            await self.create(rest)
            return
        if operation == "list":
            if rest:
                await self.rest("GET", "", 200)
            else:
                await self.graphql(
                    f"query($u: String!) {{ tasks(userId: $u) {{ {TASK_FIELDS} }} }}", u=self.user
                )
            return
        task_id = self.random.choice(list(self.tasks))
        version = self.tasks[task_id]
        guarded = self.random.random() < 0.5  # this client is the task's only writer: no 412s
        if operation == "delete":
            if rest:
                headers = {"If-Match": f'"{task_id}.{version}"'} if guarded else {}
                await self.rest("DELETE", f"/{task_id}", 204, **headers)
            else:
                await self.graphql(
                    "mutation($u: String!, $id: ID!, $v: Int) "
                    "{ deleteTask(userId: $u, id: $id, expectedVersion: $v) { id } }",
                    u=self.user,
                    id=task_id,
                    v=version if guarded else None,
                )
            del self.tasks[task_id]
            return
        if operation == "update":
            title = f"renamed {uuid.uuid4().hex[:8]}"
            if rest:
                headers = {"If-Match": f'"{task_id}.{version}"'} if guarded else {}
                task = await self.rest("PUT", f"/{task_id}", 200, {"title": title}, **headers)
            else:
                task = await self.graphql(
                    f"mutation($u: String!, $id: ID!, $t: String, $v: Int) {{ updateTask("
                    f"userId: $u, id: $id, input: {{title: $t}}, expectedVersion: $v) "
                    f"{{ {TASK_FIELDS} }} }}",
                    u=self.user,
                    id=task_id,
                    t=title,
                    v=version if guarded else None,
                )
        else:
            completed = self.random.random() < 0.7
            if rest:
                task = await self.rest(
                    "PATCH", f"/{task_id}/complete", 200, {"completed": completed}
                )
            else:
                task = await self.graphql(
                    f"mutation($u: String!, $id: ID!, $c: Boolean!) {{ completeTask("
                    f"userId: $u, id: $id, completed: $c) {{ {TASK_FIELDS} }} }}",
                    u=self.user,
                    id=task_id,
                    c=completed,
                )
        self.tasks[task_id] = task["version"]

    async def run(self, until: float) -> None:
        operations, weights = list(MIX), list(MIX.values())
        while time.perf_counter() < until:
            operation = self.random.choices(operations, weights)[0]
            rest = self.random.random() < 0.5
            name = f"{operation} ({'REST' if rest else 'GraphQL'})"
            started = time.perf_counter()
            try:
                await asyncio.wait_for(self.run_one(operation, rest), self.timeout)
            except TimeoutError:
                self.stats.errors[f"{name}: no answer within {self.timeout}s"] += 1
                await self.connection.close()
                continue
            except (HTTPError, OSError, ValueError, KeyError) as exc:
                self.stats.errors[f"{name}: {exc}"[:160]] += 1
                await self.connection.close()
                continue
            latency = time.perf_counter() - started
            self.stats.latencies.append(latency)
            self.stats.by_operation[name].append(latency)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_until_healthy(port: int, server: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        if server.returncode is not None:
            raise SystemExit(f"uvicorn exited with {server.returncode} during start-up")
        try:
            connection = Connection(port)
            status, _, _ = await connection.request("GET", "/health")
            await connection.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the service did not become healthy within 60 seconds")


async def seed(clients: list[Client]) -> None:
    async def fill(client: Client) -> None:
        for _ in range(TASKS_PER_USER):
            await client.create(rest=True)

    await asyncio.gather(*(fill(client) for client in clients))


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def benchmark(args: argparse.Namespace) -> int:
    admin_url = args.database_url
    name = f"task_api_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url, timeout=5)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
        cwd=ROOT,
        # Everything else at its defaults, as a production user would run it.
        env={**os.environ, "DATABASE_URL": database_url},
    )
    try:
        await wait_until_healthy(port, server)
        stats = Stats()
        clients = [Client(n, port, stats, args.timeout) for n in range(args.clients)]
        await seed(clients)
        # Seeding left some connections idle past uvicorn's keep-alive timeout: start afresh.
        for client in clients:
            await client.connection.close()
        print(
            f"{args.clients} clients, {args.duration:.0f} s, uvicorn --workers {args.workers}, "
            f"PostgreSQL, {TASKS_PER_USER} tasks per user; "
            f"server, database and load generator share {os.cpu_count()} cores"
        )
        started = time.perf_counter()
        until = started + args.duration
        await asyncio.gather(*(client.run(until) for client in clients))
        elapsed = time.perf_counter() - started
        for client in clients:
            await client.connection.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()
        admin = await asyncpg.connect(admin_url, timeout=5)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    latencies = sorted(stats.latencies)
    answered = len(latencies)
    errors = sum(stats.errors.values())
    print(f"requests: {answered + errors} in {elapsed:.1f} s")
    print(f"requests per second: {answered / elapsed:.0f}")
    if latencies:
        print(
            f"latency p50 / p99: {percentile(latencies, 0.5) * 1000:.1f} / "
            f"{percentile(latencies, 0.99) * 1000:.1f} ms "
            f"(mean {statistics.fmean(latencies) * 1000:.1f} ms)"
        )
    print(f"errors: {errors}")
    for message, count in stats.errors.most_common(10):
        print(f"  {count} x {message}")
    print("by operation (count, p50 / p99 ms):")
    for name, values in sorted(stats.by_operation.items()):
        values.sort()
        print(
            f"  {name:<20} {len(values):>6}  "
            f"{percentile(values, 0.5) * 1000:7.1f} / {percentile(values, 0.99) * 1000:7.1f}"
        )
    return 1 if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL database to create the scratch database from",
    )
    sys.exit(asyncio.run(benchmark(parser.parse_args())))


if __name__ == "__main__":
    main()
