"""`BodySizeLimit` (api/web/edge.py): what it counts, and what it leaves to the server.

A body of a declared length within the limit reaches the app through the server's own receive
and send (the server reads no more than that length); a body framed by Transfer-Encoding is
counted whatever Content-Length also says, and refused past the limit. These drive the
middleware alone, as the server would: no database is involved.
"""

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from api.web.edge import BodySizeLimit

LIMIT = 100


def scope_with(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/graphql", "headers": headers}


class Recorder:
    """An app that reads the whole body, notes what it was called with, and answers 200."""

    def __init__(self) -> None:
        self.receive: Receive | None = None
        self.send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.receive, self.send = receive, send
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def run(scope: Scope, chunks: list[bytes]) -> tuple[Recorder, list[Message], Any, Any]:
    app = Recorder()
    pending = list(chunks)
    sent: list[Message] = []

    async def receive() -> Message:
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    await BodySizeLimit(app, max_bytes=LIMIT)(scope, receive, send)
    return app, sent, receive, send


async def test_a_declared_length_within_the_limit_reaches_the_app_untouched() -> None:
    scope = scope_with([(b"content-length", b"10")])
    app, sent, receive, send = await run(scope, [b"0123456789"])
    assert app.receive is receive
    assert app.send is send
    assert sent[0]["status"] == 200


async def test_a_chunked_body_is_counted_whatever_length_it_also_declares() -> None:
    headers = [(b"content-length", b"10"), (b"transfer-encoding", b"chunked")]
    app, sent, receive, _send = await run(scope_with(headers), [b"x" * 60, b"x" * 60])
    assert app.receive is not receive
    assert sent[0]["status"] == 413


async def test_a_body_without_a_declared_length_is_counted() -> None:
    app, sent, receive, _send = await run(scope_with([]), [b"x" * 60, b"x" * 30])
    assert app.receive is not receive
    assert sent[0]["status"] == 200
    _app, sent, _receive, _send = await run(scope_with([]), [b"x" * 60, b"x" * 60])
    assert sent[0]["status"] == 413
