"""Apps built for one test's settings, and ways to look at what they did to their database."""

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import col, select

from api.main import create_app
from api.storage.tables import Task
from tests.conftest import client_for, make_settings


@contextlib.asynccontextmanager
async def running(database_url: str, **settings: Any) -> AsyncIterator[FastAPI]:
    """The app for these settings, started (migrated) and stopped around the block."""
    app = create_app_for(database_url, **settings)
    async with LifespanManager(app):
        yield app


def create_app_for(database_url: str, **settings: Any) -> FastAPI:
    return create_app(make_settings(database_url, **settings))


@contextlib.asynccontextmanager
async def client_of(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running(database_url, **settings) as app, client_for(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def app_of(client: httpx.AsyncClient) -> FastAPI:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    return app


async def stored_tasks(app: FastAPI) -> list[dict[str, Any]]:
    """Every row of the tasks table, read from the database itself."""
    async with app.state.store.sessionmaker() as session:
        rows = (await session.exec(select(Task).order_by(col(Task.id)))).all()
        return [row.model_dump() for row in rows]


@contextlib.contextmanager
def sql_statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app sends to its database inside the block."""
    engine = app.state.store.engine.sync_engine
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


class _Server(uvicorn.Server):
    """uvicorn that says when it is listening (or has given up)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


@contextlib.contextmanager
def served(app: FastAPI, *, timeout: float = 60.0, **config: Any) -> Iterator[str]:
    """`app` under a real uvicorn (in a thread) on a free port of 127.0.0.1; its base URL.
    `config` goes to `uvicorn.Config` (e.g. `ws="none"`)."""
    options = {"log_level": "warning", "access_log": False, **config}
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, **options))
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    try:
        assert server.ready.wait(timeout), "uvicorn did not start in time"
        assert server.started, "uvicorn failed to start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        assert not thread.is_alive(), "uvicorn did not stop in time"


def assert_same_bytes(answer: httpx.Response, expected: httpx.Response, sent: object) -> None:
    """Two answers to `sent` are the same to a client: status, media type and every byte."""
    assert (answer.status_code, answer.headers["content-type"], answer.content) == (
        expected.status_code,
        expected.headers["content-type"],
        expected.content,
    ), sent


async def asgi_call(
    app: Any,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    disconnected: bool = False,
) -> tuple[int, bytes]:
    """One request straight to the ASGI app, no client in between: its (status, body).

    With `disconnected`, the client is gone before the app reads the body.
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if disconnected:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, answer
