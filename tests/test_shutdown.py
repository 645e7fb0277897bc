"""Graceful shutdown: a real uvicorn on 127.0.0.1 finishes the request in flight on SIGTERM."""

import asyncio
import contextlib
import itertools
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import _asyncpg_dsn, reset_postgres
from tests.storage.test_faults import wait_until_a_request_waits_on_a_lock

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Every step waits at most this long, so a broken shutdown fails the test instead of hanging it.
STEP_TIMEOUT = 30


class Server:
    """A uvicorn process and the lines it has logged so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self._new_line:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._new_line.notify_all()

    async def wait_for_line(self, pattern: str, count: int = 1) -> re.Match[str]:
        """The `count`-th logged line matching `pattern`, once uvicorn has logged it."""

        def found() -> re.Match[str] | None:
            matches = (m for line in self.lines if (m := re.search(pattern, line)))
            return next(itertools.islice(matches, count - 1, None), None)

        async with asyncio.timeout(STEP_TIMEOUT), self._new_line:
            await self._new_line.wait_for(lambda: found() is not None or self._reader.done())
        match = found()
        assert match is not None, f"uvicorn never logged {pattern!r}:\n" + "\n".join(self.lines)
        return match

    async def stop(self) -> None:
        """The process killed, and its workers when it leads a process group (`start_server`):
        a killed supervisor would leave them running, holding the log's pipe open."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


async def start_server(database_url: str, directory: Path, *options: str) -> Server:
    """The server as the README runs it (`python -m api.serve`) on 127.0.0.1, with `options`,
    in `directory` (so no .env file of the working tree applies), in a process group of its own
    (its workers, if any, are in it too)."""
    environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.serve",
        "--host",
        "127.0.0.1",
        *options,
        cwd=directory,
        env=environment,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    return Server(process)


@pytest.fixture
async def server(postgres_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    """The server as the README runs it, one worker, on a free port of 127.0.0.1."""
    await reset_postgres(postgres_url)
    running = await start_server(postgres_url, tmp_path, "--port", "0")
    try:
        yield running
    finally:
        await running.stop()


class TestGracefulShutdown:
    async def test_sigterm_finishes_the_request_in_flight_then_stops_cleanly(
        self, server: Server, postgres_url: str
    ) -> None:
        address = (await server.wait_for_line(r"Uvicorn running on (http://\S+)")).group(1)
        await server.wait_for_line("Application startup complete")
        async with httpx.AsyncClient(base_url=address, timeout=STEP_TIMEOUT) as client:
            created = await client.post("/api/alice/tasks", json={"title": "before"})
            task = created.json()
            # Hold the task's row lock, so the update below stays in flight until released.
            locker = await asyncpg.connect(_asyncpg_dsn(postgres_url), timeout=5)
            try:
                transaction = locker.transaction()
                await transaction.start()
                await locker.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task["id"])
                update = asyncio.ensure_future(
                    client.put(f"/api/alice/tasks/{task['id']}", json={"title": "during"})
                )
                await wait_until_a_request_waits_on_a_lock(locker)
                server.process.send_signal(signal.SIGTERM)
                # uvicorn has stopped accepting and waits for the request in flight.
                await server.wait_for_line("Waiting for connections to close")
                assert not update.done()
                await transaction.rollback()
                response = await asyncio.wait_for(update, STEP_TIMEOUT)
            finally:
                await locker.close()
        assert response.status_code == 200
        assert response.json()["title"] == "during"
        # After its graceful shutdown, uvicorn re-raises the signal it caught, so that the process
        # ends "terminated by SIGTERM" as process managers expect of a clean stop; a crash would
        # exit 1 instead, and a hang would time out.
        exit_status = await asyncio.wait_for(server.process.wait(), STEP_TIMEOUT)
        assert exit_status == -signal.SIGTERM, "\n".join(server.lines)
        # The lifespan's shutdown, which closes the connection pool, ran to its end.
        await server.wait_for_line("Application shutdown complete")
        await server.wait_for_line("Finished server process")
        assert not [line for line in server.lines if "ERROR" in line or "Traceback" in line]
        stored = await asyncpg.connect(_asyncpg_dsn(postgres_url), timeout=5)
        try:
            title = await stored.fetchval("SELECT title FROM tasks WHERE id = $1", task["id"])
        finally:
            await stored.close()
        assert title == "during"
