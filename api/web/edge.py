"""The HTTP edge: pure ASGI middleware every request passes before it reaches a route.

- `BodySizeLimit`: a body over the limit is answered 413 without being read into memory.
- `StrictCORS`: Starlette's CORS for the configured origins; any other origin gets no CORS
  header at all, on preflights as on ordinary responses.
- `HeadAsGet`: HEAD is answered wherever GET is, as GET would be (status and headers, ETag and
  conditional requests included) but without the body; `/graphql` keeps answering methods itself.
- `WebSocketRoutes`: a WebSocket at one of its paths goes straight to its handler, in front of
  every other middleware and the framework's routing.
- `SecurityHeaders`: `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY` (the docs
  and GraphiQL pages are not to be framed) everywhere, and `Cache-Control: no-store` on the API
  paths, so task data never lands in a shared cache.
"""

import contextlib
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.web.errors import PayloadTooLargeError
from api.web.problems import problem_response

# Paths whose answers carry task data (or the refusal to hand it out).
PRIVATE_PATH_PREFIXES = ("/api/", "/graphql")


class _BodyTooLarge(Exception):
    """Raised into the app from `receive` once the body passes the limit."""


class BodySizeLimit:
    """Answers 413 (problem+json, PayloadTooLargeError) to a body over `max_bytes`.

    A declared Content-Length over the limit is refused before a byte is read; one within it
    needs nothing more (the server reads no further than it). A body without one (chunked) is
    counted as it streams, and the chunk that passes the limit is never handed
    on: the app's read fails, and whatever it answers is replaced by the 413, unless it had
    already started answering. `Connection: close` tells the client the rest will not be read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> Response:
        error = PayloadTooLargeError(
            f"The request body is larger than the limit of {self.max_bytes} bytes"
        )
        response = problem_response(error, retry_after=0)
        response.headers["Connection"] = "close"
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _declared_length(scope)
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            if not chunked:
                # The server reads a body of a declared length and no more (RFC 9112 6.3: the
                # rest would be the next request), so this one cannot pass the limit: nothing
                # to count, and the app gets the server's own receive and send.
                await self.app(scope, receive, send)
                return

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's answer to its failed read; the 413 below replaces it
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # Whatever the app made of its failed read, the answer is the 413 below.
            if not exceeded or response_started:
                raise
        if exceeded and not response_started:
            await self._too_large()(scope, receive, send)


class StrictCORS(CORSMiddleware):
    """Starlette's CORSMiddleware, but an origin not allowed gets no CORS header at all.

    Starlette still sends Access-Control-Allow-Methods/-Headers on a refused preflight, and
    Access-Control-Expose-Headers to any origin; here a refused origin sees neither.

    A request without an Origin (every server-to-server call, every load balancer's and
    benchmark's) gets no CORS header either, only the `Vary: Origin` Starlette adds to every
    answer, so that a cache keeps it apart from an answer to a browser. StrictCORS adds that
    itself, without building Starlette's header objects for the request and without its
    checks of an origin that is not there: about 3 µs a request instead of 7.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _has_origin(scope):
            await super().__call__(scope, receive, send)
            return

        async def send_varied(message: Message) -> None:
            if message["type"] == "http.response.start":
                # As Starlette's `send` marks an answer to a request without an Origin.
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
            await send(message)

        await self.app(scope, receive, send_varied)

    def preflight_response(self, request_headers: Headers) -> Response:
        if not self.is_allowed_origin(origin=request_headers["origin"]):
            return PlainTextResponse(
                "Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"}
            )
        return super().preflight_response(request_headers)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if (
            message["type"] == "http.response.start"
            and origin is not None
            and not self.is_allowed_origin(origin=origin)
        ):
            message.setdefault("headers", [])
            MutableHeaders(scope=message).add_vary_header("Origin")
            await send(message)
            return
        await super().send(message, send, request_headers)


class SecurityHeaders:
    """nosniff and no framing on every answer; no-store on the API paths' answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].startswith(PRIVATE_PATH_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _secured(message.get("headers", ()), private)
            await send(message)

        await self.app(scope, receive, send_with_headers)


_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_FRAMING = (b"x-frame-options", b"DENY")
_NO_STORE = (b"cache-control", b"no-store")


def _secured(headers: Iterable[tuple[bytes, bytes]], private: bool) -> list[tuple[bytes, bytes]]:
    """`headers` with nosniff and no-store (when `private`) set, replacing any earlier value in
    the place of its first occurrence, and X-Frame-Options DENY unless the answer has its own."""
    secured: list[tuple[bytes, bytes]] = []
    nosniff = no_store = framed = False
    for header in headers:
        name = header[0].lower()
        if name == b"x-content-type-options":
            if not nosniff:
                secured.append(_NOSNIFF)
                nosniff = True
        elif private and name == b"cache-control":
            if not no_store:
                secured.append(_NO_STORE)
                no_store = True
        else:
            framed = framed or name == b"x-frame-options"
            secured.append(header)
    if not nosniff:
        secured.append(_NOSNIFF)
    if not framed:
        secured.append(_NO_FRAMING)
    if private and not no_store:
        secured.append(_NO_STORE)
    return secured


def _has_origin(scope: Scope) -> bool:
    # ASGI servers give header names in lower case (as Starlette's Headers also expects).
    return any(name == b"origin" for name, _ in scope["headers"])


def _declared_length(scope: Scope) -> tuple[str | None, bool]:
    """The request's Content-Length, and whether it has a Transfer-Encoding too (which then
    frames the body instead, RFC 9112 6.3), in one pass over the headers."""
    length = None
    encoded = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            if length is None:
                length = value.decode("latin-1")
        elif key == b"transfer-encoding":
            encoded = True
    return length, encoded


class HeadAsGet:
    """Answers HEAD as GET with the body left out (RFC 9110 9.3.2), on every path.

    The request goes on as GET, so every route, conditional header and middleware answers exactly
    as it would to GET (a path without GET answers 405 as GET does); the routes and the OpenAPI
    document name GET only. The response's headers, Content-Length included, are kept; its body
    chunks are dropped and one empty chunk ends it.
    """

    def __init__(self, app: ASGIApp, *, except_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        # Paths whose own HTTP layer answers every method itself (GraphQL over HTTP).
        self.except_prefixes = except_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or scope["path"].startswith(self.except_prefixes)
        ):
            await self.app(scope, receive, send)
            return

        streaming = False

        async def send_headers_only(message: Message) -> None:
            nonlocal streaming
            kind = message["type"]
            if kind == "http.response.start":
                streaming = _is_event_stream(message)
                await send(message)
            elif kind == "http.response.body" and message.get("more_body", False):
                if streaming:
                    # An event stream never ends by itself: its headers are the whole answer.
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    raise _HeadersSent
                return
            elif kind in ("http.response.body", "http.response.pathsend"):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send(message)

        with contextlib.suppress(_HeadersSent):
            await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class _HeadersSent(Exception):
    """A HEAD's answer is complete; what the GET would go on sending is not wanted."""


def _is_event_stream(message: Message) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"text/event-stream")
        for name, value in message.get("headers", ())
    )


class WebSocketRoutes:
    """Hands a WebSocket at one of `routes`' paths straight to its ASGI handler.

    Every layer between uvicorn and a handler stays suspended in memory for as long as the socket
    is open: routed through the middleware above and FastAPI's router, an idle GraphQL
    subscription held about 14 KB more (46 against 32 KB per socket, `bench/live_updates.py`).
    None of that middleware acts on WebSockets, and the handler checks the socket's origin and
    authenticates it itself. Any other WebSocket goes on to `app` (which refuses it).
    """

    def __init__(self, app: ASGIApp, *, routes: dict[str, ASGIApp]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            root_path = scope.get("root_path", "")
            handler = self.routes.get(scope["path"].removeprefix(root_path) or "/")
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)
