"""The production server (`python -m api.serve`, api/serve.py): each worker listens on a socket
of its own and connections are spread over the workers; a taken port stops it at once.

Real processes on 127.0.0.1; which process holds which socket is read from /proc (Linux, where
the balancing applies).
"""

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import reset_postgres
from tests.test_shutdown import STEP_TIMEOUT, Server, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balances on Linux only"),
]

WORKERS = 2
CONNECTIONS = 16
LISTEN, ESTABLISHED = "0A", "01"


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Server, int]]:
    """The README's production server with two workers, on a port the system chose; its
    supervisor and the port, once both workers have started."""
    if database_url.startswith("postgresql"):
        await reset_postgres(database_url)
    server = await start_server(database_url, tmp_path, "--port", "0", "--workers", str(WORKERS))
    try:
        address = await server.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
        await server.wait_for_line("Application startup complete", count=WORKERS)
        yield server, int(address.group(1))
    finally:
        await server.stop()


def workers_of(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor `pid` spawned (not multiprocessing's helper)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def tcp_sockets(port: int, state: str) -> set[int]:
    """The inodes of the IPv4 TCP sockets whose local port is `port`, in `state`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == state:
            inodes.add(int(fields[9]))
    return inodes


async def test_each_worker_listens_on_its_own_socket_and_gets_connections(
    served: tuple[Server, int],
) -> None:
    server, port = served
    workers = workers_of(server.process.pid)
    assert len(workers) == WORKERS

    def listening_sockets() -> list[set[int]]:
        listening = tcp_sockets(port, LISTEN)
        return [sockets_of(worker) & listening for worker in workers]

    # A worker listens just after it logs its start-up, and says nothing then: poll the
    # kernel's tables until each does (bounded).
    async with asyncio.timeout(STEP_TIMEOUT):
        while not all(listening_sockets()):  # noqa: ASYNC110 (no event to wait for)
            await asyncio.sleep(0.05)
    own = listening_sockets()
    listening = set().union(*own)
    # One listening socket per worker, none shared (uvicorn alone shares one between them).
    assert [len(sockets) for sockets in own] == [1] * WORKERS
    assert len(listening) == WORKERS
    assert tcp_sockets(port, LISTEN) == listening
    assert not sockets_of(server.process.pid) & listening

    # Connections opened together, as a proxy or a benchmark opens them, kept open.
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=STEP_TIMEOUT)
        for _ in range(CONNECTIONS)
    ]
    try:
        answers = await asyncio.gather(*(client.get("/health") for client in clients))
        assert [answer.status_code for answer in answers] == [200] * CONNECTIONS
        open_connections = tcp_sockets(port, ESTABLISHED)
        held = [len(sockets_of(worker) & open_connections) for worker in workers]
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    assert sum(held) == CONNECTIONS
    # Spread by the kernel over both (all 16 on one worker: a chance of 1 in 30,000).
    assert all(count > 0 for count in held), held


async def test_a_port_already_taken_stops_the_server_at_once(
    database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = await start_server(
            database_url, tmp_path, "--port", str(port), "--workers", str(WORKERS)
        )
        try:
            status = await asyncio.wait_for(server.process.wait(), STEP_TIMEOUT)
            await server.wait_for_line("Address already in use")
        finally:
            await server.stop()
    # uvicorn's code for a failed start-up, before any worker was started.
    assert status == 3
    assert not [line for line in server.lines if "Started server process" in line]
