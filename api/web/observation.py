"""What the edge sees of every request: its id, its metrics, its access log line, its span.

`ObserveRequests` is pure ASGI middleware around everything that answers (the compiled GraphQL
path included, which bypasses the framework's routing), so every answer is counted once, with
its final status. The GraphQL paths add their operation and error code to the request's
`Observation` (api.observe.context). Labels name the route template (`/api/{user_id}/tasks`),
never the raw path, so user ids never become time series; the access log line names the same
template, never the query string (a GET /graphql carries variables there).
"""

import logging
import os
import re
import time
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, use_span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observe import context, metrics

logger = logging.getLogger("api.access")

REQUEST_ID_HEADER = b"x-request-id"
GRAPHQL_PATH = "/graphql"
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# What a caller's (a proxy's) request id may be: bounded, and nothing that could forge a log
# line or a header (no spaces, quotes or control characters).
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID when it is well-formed; a new random one otherwise."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _REQUEST_ID.fullmatch(value):
            return value.decode("ascii")
    return os.urandom(16).hex()


def route_of(scope: Scope, observation: context.Observation) -> str:
    """The route template that answered; the compiled GraphQL path answers before routing."""
    if observation.operation_type is not None or scope["path"] == GRAPHQL_PATH:
        return GRAPHQL_PATH
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class ObserveRequests:
    """Gives each request an id (echoed as X-Request-ID), then counts, logs and traces it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_ids: bool,
        request_metrics: metrics.RequestMetrics | None,
        access_log: bool,
        tracer: Tracer | None,
    ) -> None:
        self.app = app
        self.request_ids = request_ids
        self.request_metrics = request_metrics
        self.access_log = access_log
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observation = context.Observation(request_id_of(scope) if self.request_ids else "")
        token = context.current.set(observation)
        echoed = (REQUEST_ID_HEADER, observation.request_id.encode()) if self.request_ids else None
        # Without an answer (the app failed before one), the server answers 500.
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if echoed is not None:
                    message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            if self.tracer is None:
                await self.app(scope, receive, observed_send)
            else:
                await self._traced(scope, receive, observed_send, observation, lambda: status)
        finally:
            context.current.reset(token)
            self._record(scope, observation, status, time.perf_counter() - started)

    def _record(
        self, scope: Scope, observation: context.Observation, status: int, seconds: float
    ) -> None:
        route = route_of(scope, observation)
        # A method is the client's to choose: an unknown one must not become a new series.
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        operation = metrics.operation_label(observation.operation_type, observation.operation_name)
        code = observation.error_code or ""
        if self.request_metrics is not None:
            self.request_metrics.observe(method, route, operation, status, code, seconds)
        if self.access_log:
            fields: dict[str, Any] = {"duration_ms": round(seconds * 1000, 2)}
            if operation:
                fields["operation"] = operation
            if code:
                fields["code"] = code
            if observation.request_id:
                fields["request_id"] = observation.request_id
            logger.info("%s %s %s", method, route, status, extra=fields)

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        observation: context.Observation,
        status: Any,
    ) -> None:
        assert self.tracer is not None
        carrier = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        parent = propagate.extract(carrier)
        method = scope["method"]
        span = self.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        )
        error: BaseException | None = None
        try:
            with use_span(span, end_on_exit=False, record_exception=False):
                await self.app(scope, receive, send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            route = route_of(scope, observation)
            code = status()
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", code)
            if observation.request_id:
                span.set_attribute("task_api.request_id", observation.request_id)
            if observation.operation_type is not None:
                span.set_attribute("graphql.operation.type", observation.operation_type)
                if observation.operation_name:
                    span.set_attribute("graphql.operation.name", observation.operation_name)
            if observation.error_code:
                span.set_attribute("graphql.error.code", observation.error_code)
            if error is not None or code >= 500:
                span.set_status(Status(StatusCode.ERROR))
                if error is not None:
                    span.set_attribute("error.type", type(error).__name__)
            span.end()
