"""POST and GET /graphql for compiled operations, as one ASGI handler below the framework.

`GraphQLEndpoint` sits inside the edge middleware (body limit, CORS, headers), in front of
FastAPI's routing. It answers a request itself only when everything about it is ordinary: a
method and media types the spec allows, a token that verifies, a well-formed JSON request, a
document compiled before (`graphql_schema.compiled`; sent as text, or by a hash or trusted id
whose text this process already knows, `graphql_schema.persisted`), variables that coerce, and
an operation that addresses only the caller's own tasks. Then it runs the operation on
graphql-core's executor, rewrites the errors as the schema's `ErrorCodes` extension does, and
answers with the same body, status and headers as the framework's path (`graphql_schema.http`).

Anything else, before any resolver has run, is handed unchanged to the framework's path (the
body it read is replayed), which gives the canonical answer: GraphiQL, every 4xx, a document
seen for the first time, one that does not validate, introspection. The same rules in the same
functions serve both paths; tests compare their answers.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from graphql import ExecutionResult, MiddlewareManager
from graphql.execution import default_field_resolver, default_type_resolver
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.execution.is_awaitable import optimized_is_awaitable

from api.auth import TokenVerifier, authorize
from api.observe.context import record_error_code, record_operation
from api.tasks.errors import TaskAPIError
from api.tasks.service import TaskService
from api.web.authentication import caller_of
from api.web.replay import replayed
from graphql_schema.compiled import CompiledOperation
from graphql_schema.context import Context, request_context
from graphql_schema.errors import public_error
from graphql_schema.execution import (
    PlainFieldsExecutionContext,
    execute_root_field,
    run_operation,
)
from graphql_schema.negotiation import (
    check_content_type,
    encode_json,
    negotiate,
    prefers_html,
    query_request,
    request_data,
)
from graphql_schema.permissions import addressed_users
from graphql_schema.persisted import PersistedDocuments
from graphql_schema.schema import TaskSchema

# graphql-core's default, which Strawberry's path uses too.
MAX_COERCION_ERRORS = 50


@dataclass
class AnswerCounts:
    """How many requests each path answered (tests read them; so could a metrics endpoint)."""

    compiled: int = 0
    delegated: int = 0
    # Of the compiled answers, those whose one root field the plan completed (no graphql-core
    # executor ran).
    planned: int = 0


class _Delegate(Exception):
    """The framework's path answers this request."""


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


def _header(scope: Scope, name: bytes) -> str | None:
    values = _header_values(scope, name)
    return values[-1] if values else None


class GraphQLEndpoint:
    """Serves compiled operations at `path`; hands everything else to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        schema: TaskSchema,
        tasks: TaskService,
        documents: PersistedDocuments,
        verifier: TokenVerifier | None,
        counts: AnswerCounts | None = None,
        path: str = "/graphql",
    ) -> None:
        self.app = app
        self.schema = schema
        self.tasks = tasks
        self.verifier = verifier
        self.path = path
        self.documents = documents
        # The one document cache, shared with the framework's path (persisted documents).
        self.operations = documents.operations
        self.counts = counts or AnswerCounts()
        self._executor_class = schema.execution_context_class

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != scope.get("root_path", "") + self.path
            or scope["method"] not in ("GET", "POST")
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] == "POST":
            # An over-long body fails here, in the edge's receive, which answers 413.
            body, disconnected = await _read_body(receive)
            if disconnected:
                return
        try:
            media_type, answer = await self._answer(scope, body)
        except _Delegate:
            self.counts.delegated += 1
            read = [{"type": "http.request", "body": body, "more_body": False}]
            await self.app(scope, replayed(read, receive), send)
            return
        self.counts.compiled += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", f"{media_type}; charset=utf-8".encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _answer(self, scope: Scope, body: bytes) -> tuple[str, bytes]:
        """The media type and body of a compiled operation's answer; _Delegate otherwise."""
        accept = _header(scope, b"accept")
        media_type = negotiate(accept)
        if media_type is None:
            raise _Delegate
        try:
            if scope["method"] == "POST":
                check_content_type(_header(scope, b"content-type"))
                request = request_data(orjson.loads(body))
            else:
                params = dict(parse_qsl(scope["query_string"].decode("latin-1"), True))
                if "query" not in params and prefers_html(accept or ""):
                    raise _Delegate  # GraphiQL
                request = query_request(params)
        except (TaskAPIError, orjson.JSONDecodeError):
            raise _Delegate from None
        # A document by reference, known in this process (else the framework's path reads it).
        known = self.documents.known(request)
        if known is None or known.query is None:
            raise _Delegate
        request = known
        operation = self.operations.get(known.query, known.operation_name)
        if operation is None or (scope["method"] == "GET" and not operation.is_query):
            raise _Delegate
        definition = operation.operation
        record_operation(
            definition.operation.value, definition.name.value if definition.name else None
        )
        try:
            caller = await caller_of(self.verifier, _header_values(scope, b"authorization"))
            for user_id in addressed_users(
                operation.document, request.operation_name, request.variables
            ):
                authorize(caller, user_id)
        except TaskAPIError:
            raise _Delegate from None
        variable_values = operation.variables.coerce(request.variables or {}, MAX_COERCION_ERRORS)
        if isinstance(variable_values, list):
            raise _Delegate  # the framework reports the coercion errors
        async with request_context(None, self.tasks, caller) as context:
            result = await self._execute(operation, variable_values, context, request.extensions)
        return media_type, encode_json(_response(result))

    async def _execute(
        self,
        operation: CompiledOperation,
        variable_values: Any,
        context: Context,
        extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """The operation: its one root field by its plan, or all of it on graphql-core's
        executor; the executor built as `Executor.build` builds it."""

        def build(middleware: MiddlewareManager | None) -> PlainFieldsExecutionContext:
            executor = self._executor_class(
                self.schema._schema,
                operation.fragment_definitions,
                operation.fragments,
                None,
                context,
                operation.operation,
                variable_values,
                default_field_resolver,
                default_type_resolver,
                default_field_resolver,
                False,
                middleware,
                optimized_is_awaitable,
                operation_extensions=extensions,
            )
            assert isinstance(executor, PlainFieldsExecutionContext)
            return executor

        if operation.root is not None:
            ran = await execute_root_field(operation.root, build)
            if ran is None:
                raise _Delegate  # arguments that do not coerce; no resolver has run
            result, planned = ran
            self.counts.planned += planned
            return result
        return await run_operation(build(None))


def _response(result: ExecutionResult) -> dict[str, Any]:
    """The answer's JSON object, as Strawberry's view builds it, with the errors rewritten."""
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [public_error(error).formatted for error in result.errors]
        record_error_code(body["errors"][0].get("extensions", {}).get("code"))
    return body


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False
