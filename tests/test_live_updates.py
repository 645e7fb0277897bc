"""Live updates with real processes and real sockets: uvicorn on 127.0.0.1, the `gql` client's
WebSocket transport (graphql-transport-ws), Server-Sent Events read with httpx, Apollo's
multipart HTTP protocol.

Two processes on one PostgreSQL: a change made through either reaches subscribers on both, only
the owner's, in order, and nothing is lost when a subscriber resumes or when a process's LISTEN
connection is killed. One process on each database for authentication. Every wait is bounded;
nothing sleeps for timing.
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed

from api.storage.events import LISTENER_NAME
from tests.conftest import _asyncpg_dsn, reset_postgres
from tests.test_shutdown import Server
from tests.tokens import AUDIENCE, ISSUER, SECRET, hmac_token

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# An upper bound on each wait, not an expectation: events arrive within milliseconds.
WAIT = 15.0

SUBSCRIPTION = """
subscription Follow($userId: String!, $after: String) {
  taskEvents(userId: $userId, after: $after) { id kind at task { id userId title version } }
}
"""
UPDATE = """
mutation Rename($userId: String!, $id: ID!, $title: String!) {
  updateTask(userId: $userId, id: $id, input: {title: $title}) { id version }
}
"""


@contextlib.asynccontextmanager
async def served(database_url: str, tmp_path: Path, **environment: str) -> AsyncIterator[str]:
    """`uvicorn api.main:app` on a free port of 127.0.0.1; its base URL."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **environment}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", "0",
        cwd=tmp_path,  # no .env file from the working tree
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Server(process)
    try:
        address = (await server.wait_for_line(r"Uvicorn running on (http://\S+)")).group(1)
        await server.wait_for_line("Application startup complete")
        served.servers[address] = server  # type: ignore[attr-defined]
        yield address
    finally:
        await server.stop()


served.servers = {}  # type: ignore[attr-defined]


def server_of(address: str) -> Server:
    server: Server = served.servers[address]  # type: ignore[attr-defined]
    return server


class SseReader:
    """An open `GET /api/{user}/tasks/events`; its events, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, str]:
        """The next event's fields (comments, such as keep-alives, are skipped)."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(WAIT):
            async for line in self._lines:
                if not line:
                    if fields:
                        return fields
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
        raise AssertionError(f"the stream ended; read so far: {fields}")

    async def titles(self, count: int) -> list[tuple[str, str, str]]:
        events = [await self.next() for _ in range(count)]
        return [(e["id"], e["event"], json.loads(e["data"])["title"]) for e in events]


@contextlib.asynccontextmanager
async def sse(
    base_url: str, user: str, headers: dict[str, str] | None = None, after: str | None = None
) -> AsyncIterator[SseReader]:
    """An event stream, once the server has registered it (its first comment has arrived)."""
    params = {"after": after} if after is not None else {}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=WAIT) as client,
        client.stream("GET", f"/api/{user}/tasks/events", headers=headers, params=params) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"] == "text/event-stream"
        reader = SseReader(r)
        async with asyncio.timeout(WAIT):
            first = await anext(reader._lines)
        assert first.startswith(":")
        yield reader


class Subscriber:
    """A `gql` client's subscription over graphql-transport-ws; results queued as they come."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        url = base_url.replace("http://", "ws://") + "/graphql"
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        self.transport = WebsocketsTransport(
            url=url,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload=payload,
            connect_timeout=WAIT,
        )
        self.client = Client(transport=self.transport)
        self.results: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self, user: str, after: str | None = None) -> "Subscriber":
        session = await self.client.connect_async()
        request = GraphQLRequest(SUBSCRIPTION, variable_values={"userId": user, "after": after})

        async def read() -> None:
            try:
                async for result in session.subscribe(request):
                    await self.results.put(result["taskEvents"])
                await self.results.put(StopAsyncIteration())
            except Exception as exc:
                await self.results.put(exc)

        self._task = asyncio.ensure_future(read())
        return self

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            result = await self.results.get()
        if isinstance(result, BaseException):
            raise result
        event: dict[str, Any] = result
        return event

    async def titles(self, count: int) -> list[tuple[str, str, str]]:
        events = [await self.next() for _ in range(count)]
        return [(e["id"], e["kind"], e["task"]["title"]) for e in events]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.client.close_async()


@contextlib.asynccontextmanager
async def subscribed(
    base_url: str, user: str, after: str | None = None, token: str | None = None
) -> AsyncIterator[Subscriber]:
    subscriber = await Subscriber(base_url, token).start(user, after)
    try:
        yield subscriber
    finally:
        await subscriber.stop()


async def create(base_url: str, user: str, title: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=WAIT) as client:
        response = await client.post(f"/api/{user}/tasks", json={"title": title}, headers=headers)
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


async def rename_with_graphql(base_url: str, user: str, task_id: str, title: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=WAIT) as client:
        response = await client.post(
            "/graphql",
            json={"query": UPDATE, "variables": {"userId": user, "id": task_id, "title": title}},
        )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text


@pytest.fixture
async def two_processes(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Two uvicorn processes serving one PostgreSQL database."""
    await reset_postgres(postgres_url)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with contextlib.AsyncExitStack() as stack:
        # Started together: the second's start-up overlaps the first's (the migration itself
        # runs once, under its lock).
        first, second = await asyncio.gather(
            stack.enter_async_context(served(postgres_url, tmp_path / "a")),
            stack.enter_async_context(served(postgres_url, tmp_path / "b")),
        )
        yield first, second


class TestAcrossProcesses:
    async def test_a_change_through_one_process_reaches_subscribers_on_both(
        self, two_processes: tuple[str, str]
    ) -> None:
        a, b = two_processes
        async with (
            sse(a, "alice") as reader_on_a,
            sse(b, "alice") as reader_on_b,
            subscribed(b, "alice", after="0") as subscriber_on_b,
            sse(b, "bob") as bobs_reader,
        ):
            task_id = await create(a, "alice", "Buy milk")  # REST, through A
            await rename_with_graphql(a, "alice", task_id, "Buy oat milk")  # GraphQL, through A
            expected = [("1", "created", "Buy milk"), ("2", "updated", "Buy oat milk")]
            assert await reader_on_a.titles(2) == expected
            # B hears of a change made by A only through PostgreSQL's NOTIFY.
            assert await reader_on_b.titles(2) == expected
            assert await subscriber_on_b.titles(2) == [
                (n, kind.upper(), title) for n, kind, title in expected
            ]
            # Bob's first event is his own: none of alice's came before it.
            await create(b, "bob", "Bob's")
            assert await bobs_reader.titles(1) == [("1", "created", "Bob's")]

    async def test_a_resumed_subscriber_gets_exactly_what_it_missed(
        self, two_processes: tuple[str, str]
    ) -> None:
        a, b = two_processes
        async with subscribed(b, "alice", after="0") as subscriber:
            await create(a, "alice", "one")
            await create(a, "alice", "two")
            assert [e[0] for e in await subscriber.titles(2)] == ["1", "2"]
        # Away (the subscriber is gone); meanwhile three changes, on both processes.
        for title, through in (("three", a), ("four", b), ("five", a)):
            await create(through, "alice", title)
        async with subscribed(a, "alice", after="2") as resumed:
            assert await resumed.titles(3) == [
                ("3", "CREATED", "three"),
                ("4", "CREATED", "four"),
                ("5", "CREATED", "five"),
            ]
            await create(b, "alice", "six")
            assert await resumed.titles(1) == [("6", "CREATED", "six")]
        async with sse(b, "alice", after="4") as reader:
            assert [e[2] for e in await reader.titles(2)] == ["five", "six"]
        # Last-Event-ID, as a browser's EventSource resumes, wins over `after`.
        async with sse(b, "alice", headers={"Last-Event-ID": "5"}, after="1") as reader:
            await create(a, "alice", "seven")
            assert [e[2] for e in await reader.titles(2)] == ["six", "seven"]

    async def test_killing_the_listen_connection_loses_nothing(
        self, two_processes: tuple[str, str], postgres_url: str
    ) -> None:
        a, b = two_processes
        admin = await asyncpg.connect(_asyncpg_dsn(postgres_url), timeout=5)
        try:
            async with sse(b, "alice") as reader:
                await create(a, "alice", "before")
                assert await reader.titles(1) == [("1", "created", "before")]
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND datname = current_database()",
                    LISTENER_NAME,
                )
                assert killed == 2  # one LISTEN connection per process
                # Changes while B is deaf: their notifications are lost, their events are not.
                for n in range(5):
                    await create(a, "alice", f"during {n}")
                assert await reader.titles(5) == [
                    (str(n + 2), "created", f"during {n}") for n in range(5)
                ]
                await server_of(b).wait_for_line("LISTEN connection restored")
                await create(a, "alice", "after")
                assert await reader.titles(1) == [("7", "created", "after")]
        finally:
            await admin.close()

    async def test_sigterm_ends_streams_cleanly(self, two_processes: tuple[str, str]) -> None:
        a, _ = two_processes
        server = server_of(a)
        async with sse(a, "alice") as reader, subscribed(a, "alice", after="0") as subscriber:
            await create(a, "alice", "one")
            assert await reader.titles(1) == [("1", "created", "one")]
            assert (await subscriber.next())["id"] == "1"
            server.process.send_signal(signal.SIGTERM)
            ended = await reader.next()
            assert ended["event"] == "error"
            assert json.loads(ended["data"])["error_type"] == "ServiceRestartingError"
            # An error for the subscription, or the socket closed by the shutting-down server.
            with pytest.raises((TransportError, ConnectionClosed, StopAsyncIteration)):
                await subscriber.next()
        assert await asyncio.wait_for(server.process.wait(), WAIT) == -signal.SIGTERM
        await server.wait_for_line("Finished server process")
        assert not [line for line in server.lines if "ERROR" in line or "Traceback" in line]


@pytest.fixture
async def with_auth(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """One process with authentication on (no leeway, so a token expires when it says)."""
    if database_url.startswith("postgresql"):
        await reset_postgres(database_url)
    async with served(
        database_url,
        tmp_path,
        TASK_API_AUTH_JWT_SECRET=SECRET,
        TASK_API_AUTH_ISSUER=ISSUER,
        TASK_API_AUTH_AUDIENCE=AUDIENCE,
        TASK_API_AUTH_LEEWAY_SECONDS="0",
    ) as address:
        yield address


async def close_code(base_url: str, token: str | None) -> int | None:
    """The code the server closed the socket with, after `connection_init`."""
    subscriber = Subscriber(base_url, token)
    try:
        with pytest.raises(Exception) as failed:  # noqa: PT011 - gql's error names no code
            await subscriber.start("alice")
        cause: BaseException | None = failed.value
        while cause is not None and not isinstance(cause, ConnectionClosed):
            cause = cause.__cause__ or cause.__context__
        assert cause is not None, repr(failed.value)
        return cause.rcvd.code if cause.rcvd is not None else None
    finally:
        await subscriber.stop()


class TestAuthentication:
    async def test_tokens_are_checked_on_every_transport(self, with_auth: str) -> None:
        base = with_auth
        alice = hmac_token("alice")
        # WebSocket: no token, or a bad one, closes the socket with 4403 (Forbidden).
        assert await close_code(base, None) == 4403
        assert await close_code(base, hmac_token("alice", secret="x" * 40)) == 4403
        assert await close_code(base, hmac_token("alice", exp=int(time.time()) - 5)) == 4403
        # A valid token for another user: the subscription is refused, FORBIDDEN.
        async with subscribed(base, "alice", token=hmac_token("bob")) as bobs:
            with pytest.raises(TransportQueryError) as refused:
                await bobs.next()
        assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"  # type: ignore[index]
        # SSE: 401 without a token, 403 with another user's.
        async with httpx.AsyncClient(base_url=base, timeout=WAIT) as client:
            anonymous = await client.get("/api/alice/tasks/events")
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"] == "application/problem+json"
            other = await client.get(
                "/api/alice/tasks/events", headers={"Authorization": f"Bearer {hmac_token('bob')}"}
            )
            assert other.status_code == 403
        # The owner's token: events arrive on both.
        async with (
            subscribed(base, "alice", token=alice) as subscriber,
            sse(base, "alice", headers={"Authorization": f"Bearer {alice}"}) as reader,
        ):
            await create(base, "alice", "mine", token=alice)
            assert await subscriber.titles(1) == [("1", "CREATED", "mine")]
            assert await reader.titles(1) == [("1", "created", "mine")]

    async def test_an_expiring_token_closes_the_stream(self, with_auth: str) -> None:
        base = with_auth
        soon = hmac_token("alice", exp=int(time.time()) + 2)
        headers = {"Authorization": f"Bearer {soon}"}
        async with (
            subscribed(base, "alice", token=soon) as subscriber,
            sse(base, "alice", headers=headers) as reader,
        ):
            ended = await reader.next()
            assert ended["event"] == "error"
            problem = json.loads(ended["data"])
            assert (problem["status"], problem["detail"]) == (401, "The token has expired")
            with pytest.raises(TransportQueryError) as closed:
                await subscriber.next()
        error = closed.value.errors[0]  # type: ignore[index]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"


class TestMultipartHttp:
    async def test_apollo_multipart_subscription_streams_events(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """Apollo Client's HTTP protocol: one POST, the events as parts of a multipart answer."""
        if database_url.startswith("postgresql"):
            await reset_postgres(database_url)
        async with (
            served(database_url, tmp_path) as base,
            httpx.AsyncClient(base_url=base, timeout=WAIT) as client,
            client.stream(
                "POST",
                "/graphql",
                json={"query": SUBSCRIPTION, "variables": {"userId": "alice", "after": "0"}},
                headers={
                    "Accept": 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,'
                    "application/json"
                },
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("multipart/mixed")
            await create(base, "alice", "over multipart")
            payload = await first_payload(response)
        event = payload["data"]["taskEvents"]
        assert (event["id"], event["kind"], event["task"]["title"]) == (
            "1",
            "CREATED",
            "over multipart",
        )


async def first_payload(response: httpx.Response) -> dict[str, Any]:
    """The first part with a `payload` (heartbeats are empty objects)."""
    buffer = ""
    async with asyncio.timeout(WAIT):
        async for text in response.aiter_text():
            buffer += text
            for part in buffer.split("--graphql"):
                body = part.partition("\r\n\r\n")[2].strip()
                if body.startswith("{") and '"payload"' in body:
                    payload: dict[str, Any] = json.loads(body)["payload"]
                    return payload
    raise AssertionError(f"no payload in {buffer!r}")
