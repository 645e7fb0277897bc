"""GET /api/{user_id}/tasks/events: the user's task events as Server-Sent Events.

Each event is `id: <event id>`, `event: created|updated|deleted` and `data: <the task as JSON>`
(as the other routes answer it); `Last-Event-ID` (what a browser's EventSource sends when it
reconnects) or `?after=` resumes after an event, with nothing missed and nothing twice. A comment
line every `events_keepalive_seconds` keeps proxies from closing an idle stream. A stream the
service ends (the client fell behind, its token expired, the process is shutting down) ends with
`event: error` and a problem+json object in `data`; the client resumes with its last id.

The route holds no database session while it streams; the stream holds one of the process's
long-lived connections (`events_max_connections`).
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from starlette.types import Receive, Scope, Send

from api.auth import Caller
from api.rest.encoding import task_body
from api.rest.params import UserIdPath
from api.rest.routing import OwnerRoute, tasks_of
from api.tasks import errors
from api.tasks.events import Subscription
from api.tasks.shapes import TaskEvent
from api.web.errors import MethodNotAllowedError
from api.web.problems import Problem, problem_body
from api.web.statuses import status_of

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    # Asks nginx-like proxies not to buffer the stream.
    "X-Accel-Buffering": "no",
}

router = APIRouter(prefix="/api/{user_id}/tasks", tags=["tasks"], route_class=OwnerRoute)


def encode_event(event: TaskEvent) -> bytes:
    data = orjson.dumps(task_body(event.task))
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.id.encode(), event.kind.encode(), data)


def encode_error(error: errors.TaskAPIError) -> bytes:
    body = problem_body(status_of(error), error.detail, error.error_type)
    return b"event: error\ndata: %s\n\n" % orjson.dumps(body)


class EventStream(Response):
    """A response that streams a subscription until it ends or the client goes away, and then
    closes the subscription and gives back its connection slot, whatever happened."""

    media_type = EVENT_STREAM

    def __init__(
        self, subscription: Subscription, release: Callable[[], None], keepalive: float
    ) -> None:
        self.status_code = 200
        self.background = None
        self._subscription = subscription
        self._release = release
        self._keepalive = keepalive
        self.init_headers({**STREAM_HEADERS, "content-type": EVENT_STREAM})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            pump = asyncio.ensure_future(self._pump(send))
            watch = asyncio.ensure_future(_until_disconnected(receive))
            try:
                await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, watch):
                    task.cancel()
                await asyncio.gather(pump, watch, return_exceptions=True)
            failure = pump.exception() if pump.done() and not pump.cancelled() else None
            # A client gone mid-write is the usual end of a stream, not an error.
            if failure is not None and not isinstance(failure, OSError):
                raise failure
        finally:
            self._subscription.close()
            self._release()

    async def _pump(self, send: Send) -> None:
        async def chunk(body: bytes) -> None:
            await send({"type": "http.response.body", "body": body, "more_body": True})

        # Something at once: the client and any proxy see the stream is open.
        await chunk(b": task events\n\n")
        next_event: asyncio.Future[TaskEvent] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(anext(self._subscription))
                done, _ = await asyncio.wait({next_event}, timeout=self._keepalive)
                if not done:
                    await chunk(b": keep-alive\n\n")
                    continue
                try:
                    event = next_event.result()
                except errors.TaskAPIError as error:
                    await send({"type": "http.response.body", "body": encode_error(error)})
                    return
                finally:
                    next_event = None
                await chunk(encode_event(event))
        finally:
            if next_event is not None:
                next_event.cancel()


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


EXPIRED: dict[int | str, dict[str, Any]] = {
    410: {
        "model": Problem,
        "description": "The events after that id are no longer kept (older than the retention, "
        "24 hours by default) or it is unknown: reload the list, then follow without an id "
        "(EventsExpiredError)",
    },
    400: {"model": Problem, "description": "Invalid user id or event id (ValidationError)"},
    500: {"model": Problem, "description": "Unexpected error (InternalError)"},
    503: {
        "model": Problem,
        "description": "The database cannot be reached (DatabaseError), or the server holds as "
        "many streams as it may (TooManyStreamsError)",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    },
}


@router.api_route(
    "/events",
    methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
    include_in_schema=False,
)
async def events_are_only_read(user_id: UserIdPath) -> Response:
    # Without this the task routes would take `events` for a task id.
    raise MethodNotAllowedError(("GET",), "The event stream is read with GET")


@router.get(
    "/events",
    summary="Follow the user's task changes as Server-Sent Events",
    description=(
        "A `text/event-stream` that stays open: each change of one of the user's tasks, by any "
        "client, REST or GraphQL, arrives as an event with `id:` (opaque, increasing), "
        "`event:` (`created`, `updated` or `deleted`) and `data:` (the task as JSON after the "
        "change; as it was, for `deleted`). Send `Last-Event-ID` (browsers' EventSource does "
        "when it reconnects) or `?after=` to receive every event after that one first, then the "
        "live ones. Comment lines (`: keep-alive`) come while nothing happens. A stream the "
        "server ends (the client fell behind, the token expired, a restart) ends with "
        "`event: error` whose `data` is a problem+json object: reconnect with the last id."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The stream of events",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        },
        **EXPIRED,
    },
)
async def follow_task_events(
    request: Request,
    user_id: UserIdPath,
    after: Annotated[
        str | None, Query(description="Resume after this event id (as `Last-Event-ID`)")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this event id; wins over `after`",
        ),
    ] = None,
) -> Response:
    tasks = tasks_of(request)
    settings = request.app.state.settings
    caller: Caller = request.state.caller
    slot = contextlib.ExitStack()
    slot.enter_context(tasks.events.connection())
    try:
        subscription = await tasks.task_events(
            user_id, last_event_id or after, expires_at=caller.expires_at
        )
    except BaseException:
        slot.close()
        raise
    return EventStream(subscription, slot.close, settings.events_keepalive_seconds)
