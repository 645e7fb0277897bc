"""Live updates benchmark: many subscribers across two processes while tasks change.

    python bench/live_updates.py [--users 500] [--rate 200] [--duration 30] [--create-rounds 3]

Starts two `uvicorn api.main:app` processes on 127.0.0.1 over one scratch PostgreSQL database,
then measures, in one run:

1. What live updates cost a create: `wrk` POSTs new tasks for `--round-seconds`, in alternating
   rounds: to a process as it is, with the outbox triggers enabled; then to a third process of
   the same code that sends no NOTIFY after its commits (bench/app_without_events.py), with the
   triggers disabled. Same data, same database; medians of the rounds, and their ratio.
2. Memory per idle subscriber: each of `--users` users gets a WebSocket subscriber
   (graphql-transport-ws) on one process and a Server-Sent Events reader on the other (2 x users
   subscribers in all, half of each kind on each process); the servers' resident memory before
   and after they are open, divided by the subscribers each holds.
3. Delivery: `--rate` changes a second (creates and renames, through REST on both processes,
   of random subscribed users) for `--duration` seconds. Each event's delay is the time from the
   change's `updatedAt` (set by the service just before its statement, so the statement and
   the commit are counted) to its arrival at the subscriber, on the same clock; p50/p99/max.
   At the end every subscriber must have each of its user's events exactly once, in order:
   events lost, duplicated or out of order are counted (all should be zero).

Server, database and this load generator share the machine's cores: compare figures from the
same run (as the create rounds do), not single figures across machines.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import websockets

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OUTBOX_TRIGGERS = ("task_events_on_insert_or_delete", "task_events_on_update")
SUBSCRIPTION = (
    'subscription($u: String!) { taskEvents(userId: $u, after: "0") '
    "{ id kind task { id updatedAt } } }"
)
CREATE_LUA = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "bench create"}'
request = function()
  return wrk.format(nil, "/api/creator-" .. math.random(1, 10000) .. "/tasks")
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Received:
    """What one subscriber got: event ids in arrival order, and each event's delay."""

    ids: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    def add(self, event_id: str, updated_at: str) -> None:
        self.ids.append(int(event_id))
        self.delays.append(time.time() - datetime.fromisoformat(updated_at).timestamp())


async def websocket_subscriber(port: int, user: str, received: Received, ready: Any) -> None:
    async with websockets.connect(
        f"ws://{HOST}:{port}/graphql", subprotocols=["graphql-transport-ws"], max_queue=None
    ) as socket_:
        await socket_.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await socket_.recv())["type"] == "connection_ack"
        await socket_.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIPTION, "variables": {"u": user}},
                }
            )
        )
        ready.set_result(None)
        async for message in socket_:
            body = json.loads(message)
            if body["type"] == "next":
                event = body["payload"]["data"]["taskEvents"]
                received.add(event["id"], event["task"]["updatedAt"])
            elif body["type"] == "ping":
                await socket_.send(json.dumps({"type": "pong"}))
            else:
                raise RuntimeError(f"unexpected message {body}")


async def sse_subscriber(port: int, user: str, received: Received, ready: Any) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(
            f"GET /api/{user}/tasks/events?after=0 HTTP/1.1\r\nHost: {HOST}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"SSE answered {status!r}")
        event_id = None
        # The body is chunked; its chunk-size lines are hex digits only and are skipped below.
        while line := await reader.readline():
            text = line.decode().rstrip("\r\n")
            if text.startswith(": task events") and not ready.done():
                ready.set_result(None)
            elif text.startswith("id: "):
                event_id = text[4:]
            elif text.startswith("data: ") and event_id is not None:
                received.add(event_id, json.loads(text[6:])["updated_at"])
                event_id = None
    finally:
        writer.close()


class Http:
    """Keep-alive HTTP/1.1 connections to one server, for the changes."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.size = size

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection(HOST, self.port))

    async def request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await self.idle.get()
        try:
            payload = json.dumps(body).encode()
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            content = await reader.readexactly(length)
            if status not in (200, 201):
                raise RuntimeError(f"{method} {path}: {status} {content[:200]!r}")
            answer: dict[str, Any] = json.loads(content)
            return answer
        finally:
            self.idle.put_nowait((reader, writer))


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    name = f"task_api_bench_live_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.contextmanager
def servers(database_url: str, apps: list[str], ws: str, deflate: str) -> Any:
    processes = []
    ports = [free_port() for _ in apps]
    with tempfile.TemporaryDirectory() as workdir:
        for port, app in zip(ports, apps, strict=True):
            path = os.pathsep.join((str(ROOT), str(ROOT / "bench")))
            environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": path}
            command = [sys.executable, "-m", "uvicorn", app, "--host", HOST]
            command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
            command += ["--ws", ws, "--ws-per-message-deflate", deflate]
            processes.append(subprocess.Popen(command, cwd=workdir, env=environment))
            # One at a time: the second waits for the first's migration anyway.
            wait_until_healthy(port)
        try:
            yield list(zip(ports, processes, strict=True))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)


def wait_until_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as probe:
            probe.sendall(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            if b" 200 " in probe.recv(200):
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not start")


def wrk_creates(port: int, seconds: int, script: Path) -> float:
    output = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script), f"http://{HOST}:{port}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in output:
        raise RuntimeError(f"creates failed:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match is not None, output
    return float(match.group(1))


async def set_outbox(database_url: str, enabled: bool) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        verb = "ENABLE" if enabled else "DISABLE"
        for trigger in OUTBOX_TRIGGERS:
            await connection.execute(f"ALTER TABLE tasks {verb} TRIGGER {trigger}")
    finally:
        await connection.close()


async def create_rounds(
    database_url: str, port: int, port_without: int, rounds: int, seconds: int
) -> None:
    print(f"\n## Creates: wrk -t1 -c32, {seconds} s rounds, live updates on and off alternately")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(CREATE_LUA)
    figures: dict[bool, list[float]] = {True: [], False: []}
    try:
        for warm_up in (port, port_without):
            wrk_creates(warm_up, 3, Path(script.name))
        for _ in range(rounds):
            for enabled in (True, False):
                await set_outbox(database_url, enabled)
                target = port if enabled else port_without
                rate = await asyncio.to_thread(wrk_creates, target, seconds, Path(script.name))
                figures[enabled].append(rate)
                print(f"  live updates {'on ' if enabled else 'off'}: {rate:7.0f} creates/s")
    finally:
        await set_outbox(database_url, True)
        os.unlink(script.name)
    with_events = statistics.median(figures[True])
    without = statistics.median(figures[False])
    print(
        f"  median: {with_events:.0f} creates/s with events, {without:.0f} without: "
        f"{100 * with_events / without:.0f}% (target >= 85%)"
    )


async def run(args: argparse.Namespace) -> None:
    async with scratch_database() as database_url:
        apps = ["api.main:app", "api.main:app", "app_without_events:app"]
        with servers(database_url, apps, args.ws, args.ws_per_message_deflate) as running:
            (port_a, process_a), (port_b, process_b), (port_without, _) = running
            await create_rounds(
                database_url, port_a, port_without, args.create_rounds, args.round_seconds
            )
            await deliver(args, (port_a, process_a.pid), (port_b, process_b.pid))


async def open_subscribers(
    users: list[str], kind: str, ports: tuple[int, int], received: dict[tuple[str, str], Received]
) -> list[asyncio.Task[None]]:
    """One subscriber of `kind` per user, alternating between the processes, WebSockets and
    SSE the other way round; returns once every one is open."""
    start = websocket_subscriber if kind == "ws" else sse_subscriber
    loop = asyncio.get_running_loop()
    tasks, readies = [], []
    for n, user in enumerate(users):
        port = ports[(n + (kind == "sse")) % 2]
        ready = loop.create_future()
        received[(user, kind)] = Received()
        tasks.append(asyncio.ensure_future(start(port, user, received[(user, kind)], ready)))
        readies.append(ready)
        if n % 50 == 49:
            await asyncio.gather(*readies)  # in batches, not all at once
    await asyncio.gather(*readies)
    return tasks


async def settled_rss(pids: list[int]) -> dict[int, int]:
    await asyncio.sleep(3)  # let the servers settle before reading their memory
    return {pid: rss_kb(pid) for pid in pids}


async def deliver(args: argparse.Namespace, a: tuple[int, int], b: tuple[int, int]) -> None:
    ports, pids = (a[0], b[0]), [a[1], b[1]]
    # Warm-up: the first subscribers of each kind load code and caches once per process.
    warm: dict[tuple[str, str], Received] = {}
    warm_users = [f"warm-{n}" for n in range(50)]
    warm_tasks = [
        *await open_subscribers(warm_users, "ws", ports, warm),
        *await open_subscribers(warm_users, "sse", ports, warm),
    ]
    for task in warm_tasks:
        task.cancel()
    await asyncio.gather(*warm_tasks, return_exceptions=True)

    users = [f"live-{n}" for n in range(args.users)]
    received: dict[tuple[str, str], Received] = {}
    before = await settled_rss(pids)
    tasks = await open_subscribers(users, "ws", ports, received)
    with_sockets = await settled_rss(pids)
    tasks += await open_subscribers(users, "sse", ports, received)
    with_streams = await settled_rss(pids)
    subscribers = len(received)
    each = args.users / 2  # of each kind, per process
    print(f"\n## {subscribers} subscribers open ({args.users} users x (WebSocket + SSE))")
    for pid in pids:
        sockets = (with_sockets[pid] - before[pid]) / each
        streams = (with_streams[pid] - with_sockets[pid]) / each
        print(
            f"  server pid {pid}: {before[pid] / 1024:.0f} MB -> {with_streams[pid] / 1024:.0f} "
            f"MB; per idle subscriber: {sockets:.1f} KB (WebSocket), {streams:.1f} KB (SSE), "
            f"{(sockets + streams) / 2:.1f} KB (mean)"
        )

    print(f"\n## {args.rate} changes/s for {args.duration} s through REST on both processes")
    expected: dict[str, int] = dict.fromkeys(users, 0)
    owned: dict[str, list[str]] = {user: [] for user in users}
    http = {port: Http(port, 16) for port, _ in (a, b)}
    for client in http.values():
        await client.open()
    failures: list[str] = []
    rng = random.Random(7)
    in_flight: set[asyncio.Task[None]] = set()

    async def change(user: str, port: int) -> None:
        try:
            if owned[user] and rng.random() < 0.5:
                task_id = rng.choice(owned[user])
                await http[port].request(
                    "PUT", f"/api/{user}/tasks/{task_id}", {"title": uuid.uuid4().hex}
                )
            else:
                task = await http[port].request("POST", f"/api/{user}/tasks", {"title": "new"})
                owned[user].append(task["id"])
            expected[user] += 1
        except Exception as exc:
            failures.append(repr(exc))

    cpu_before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    total = args.rate * args.duration
    for k in range(total):
        delay = started + k / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = rng.choice(users)
        # One change at a time per user, so that the user's own order is known.
        task = asyncio.ensure_future(change(user, (a, b)[k % 2][0]))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    sent_for = time.monotonic() - started
    print(f"  sent {total} changes in {sent_for:.1f} s ({total / sent_for:.0f}/s); "
          f"failed requests: {len(failures)}")  # fmt: skip

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(len(r.ids) >= expected[user] for (user, _), r in received.items()):
            break
        await asyncio.sleep(0.2)
    for pid in pids:
        used = cpu_seconds(pid) - cpu_before[pid]
        print(
            f"  server pid {pid}: {used:.1f} CPU s for its {total // 2} changes and the "
            f"events of {total} ({1000 * used / total:.2f} CPU ms per change)"
        )
    lost = duplicated = disordered = 0
    delays: dict[str, list[float]] = {"ws": [], "sse": []}
    for (user, kind), got in received.items():
        unique = set(got.ids)
        duplicated += len(got.ids) - len(unique)
        lost += len(set(range(1, expected[user] + 1)) - unique)
        disordered += sum(1 for x, y in zip(got.ids, got.ids[1:], strict=False) if y <= x)
        delays[kind] += got.delays
    every = delays["ws"] + delays["sse"]
    print(f"  events delivered: {len(every)} (expected {2 * sum(expected.values())})")
    print(f"  lost: {lost}, duplicated: {duplicated}, out of order: {disordered}")
    for kind, values in (("WebSocket", delays["ws"]), ("SSE", delays["sse"]), ("all", every)):
        if values:
            print(
                f"  delay {kind:9}: p50 {1000 * percentile(values, 0.5):6.1f} ms, "
                f"p99 {1000 * percentile(values, 0.99):6.1f} ms, max {1000 * max(values):6.1f} ms"
            )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500, help="each gets two subscribers")
    parser.add_argument("--rate", type=int, default=200, help="changes per second")
    parser.add_argument("--duration", type=int, default=30, help="seconds of changes")
    parser.add_argument("--create-rounds", type=int, default=3)
    parser.add_argument("--round-seconds", type=int, default=8)
    # uvicorn's sans-I/O websockets protocol holds less per connection than its default.
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn's --ws")
    # As the production command: compression contexts cost each socket about 40 KB.
    parser.add_argument(
        "--ws-per-message-deflate", default="false", help="uvicorn's --ws-per-message-deflate"
    )
    args = parser.parse_args()
    print(f"Live updates: 2 uvicorn processes (--ws {args.ws}), PostgreSQL, this client: all on "
          f"{os.cpu_count()} cores shared.")  # fmt: skip
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
