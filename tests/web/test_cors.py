"""`StrictCORS` (api/web/edge.py) on requests without an Origin: Starlette's answer, its own way.

Such a request (a server's, a load balancer's) gets no CORS header, only `Vary: Origin`, which
StrictCORS adds itself instead of going through Starlette's header objects. The first tests drive
both middlewares alone, as the server would, and compare what each sends for answers with and
without Vary headers of their own; the last ones go through the service on both databases.
"""

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from api.web.edge import StrictCORS

ORIGIN = "https://app.example.com"
SETTINGS = {
    "allow_origins": [ORIGIN],
    "allow_methods": ["GET", "POST"],
    "allow_headers": ["Authorization", "Content-Type"],
    "expose_headers": ["Location"],
}


def answering(start: Message) -> object:
    """An app that answers with `start` (copied, since the middleware may change it)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        copied = {**start, "headers": list(start["headers"])} if "headers" in start else {**start}
        await send(copied)
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def sent_through(middleware: type[CORSMiddleware], start: Message, headers: list) -> list:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/graphql", "headers": headers}
    await middleware(answering(start), **SETTINGS)(scope, receive, send)  # type: ignore[arg-type]
    return sent


@pytest.mark.parametrize(
    "start",
    [
        {"type": "http.response.start", "status": 200},
        {"type": "http.response.start", "status": 200, "headers": []},
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"location", b"/x")],
        },
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"vary", b"Accept-Encoding"),
                (b"content-length", b"2"),
                (b"vary", b"Accept"),
            ],
        },
    ],
    ids=["no-headers-key", "no-headers", "other-headers", "two-vary-headers"],
)
@pytest.mark.parametrize(
    "request_headers",
    [[], [(b"accept", b"application/json"), (b"authorization", b"Bearer x")]],
    ids=["bare", "with-headers"],
)
async def test_without_an_origin_the_answer_is_starlettes(
    start: Message, request_headers: list
) -> None:
    ours = await sent_through(StrictCORS, start, request_headers)
    starlettes = await sent_through(CORSMiddleware, start, request_headers)
    assert ours == starlettes
    (vary,) = [value for name, value in ours[0]["headers"] if name == b"vary"]
    assert vary.endswith(b"Origin")


async def test_without_an_origin_starlettes_cors_does_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Starlette's CORS handled a request without an Origin")

    monkeypatch.setattr(CORSMiddleware, "simple_response", refused)
    start = {"type": "http.response.start", "status": 200, "headers": []}
    sent = await sent_through(StrictCORS, start, [])
    assert sent[0]["headers"] == [(b"vary", b"Origin")]


async def test_with_an_origin_the_answer_goes_through_starlettes_cors() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": []}
    sent = await sent_through(StrictCORS, start, [(b"origin", ORIGIN.encode())])
    headers = dict(sent[0]["headers"])
    assert headers[b"access-control-allow-origin"] == ORIGIN.encode()
    assert headers[b"access-control-expose-headers"] == b"Location"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/graphql", {"query": '{ tasks(userId: "alice") { id } }'}),
        ("POST", "/api/alice/tasks", {"title": "x"}),
        ("GET", "/api/alice/tasks", None),
    ],
)
async def test_the_services_answers_without_an_origin_vary_by_origin_only(
    client: httpx.AsyncClient, method: str, path: str, body: dict | None
) -> None:
    # Twice: the second GraphQL request is answered by the compiled path.
    for _ in range(2):
        response = await client.request(method, path, json=body)
        assert response.status_code in (200, 201)
        assert response.headers.get_list("vary") == ["Origin"]
        assert not [name for name in response.headers if name.startswith("access-control-")]
