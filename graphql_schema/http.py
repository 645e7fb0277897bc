"""/graphql: GraphQL over HTTP (the graphql/graphql-over-http specification) on Strawberry's router.

One handler serves GET and POST, in this order:
1. a method other than GET or POST is 405; a browser's GET with no `query` (it asks for
   text/html) gets GraphiQL (api/web/explorer.py);
2. the response media type follows `Accept`: `application/graphql-response+json` when the
   client prefers it, otherwise `application/json`; 406 when the client accepts neither. No
   `Accept`, or only wildcards, gets `application/json` (what every caller got before);
3. the caller is authenticated (401 `UNAUTHENTICATED`, in the negotiated media type) before the
   body is read, so a request without a valid token costs no parsing or validation;
4. a POST body must be `application/json` in UTF-8 (415); a request that is not a well-formed
   GraphQL request (invalid JSON, no `query`, a `query` that is not a string, `variables` or
   `extensions` that are not objects, a batch, ...) is 400, never a 500; a document sent by
   reference (a persisted query's hash, a trusted document's id) gets its text, or is refused,
   before anything parses it (graphql_schema/persisted.py);
5. Strawberry parses, validates and executes. GET runs queries only: a mutation is 405 with
   `Allow: POST`. With `application/graphql-response+json`, a request error (the document does
   not parse or validate, names no operation that can run, or its variables cannot be coerced)
   is a 400 whose body has no `data` key; with `application/json`, every well-formed request is
   answered 200, as before.
Every error answer is a GraphQL response, `{"errors": [{"message", "extensions": {"code"}}]}`.

Subscriptions, as Strawberry serves them: over HTTP when `Accept` asks for the multipart
subscription protocol (what Apollo Client sends), and over a WebSocket at the same path with the
`graphql-transport-ws` protocol (the `graphql-ws` client, Apollo Client, urql). A WebSocket's
caller comes with `connection_init`'s payload (`{"Authorization": "Bearer ..."}`) or the
handshake's own header; a missing or bad token closes the socket with 4403 (Forbidden), an
operation before the acknowledgement with 4401. Each WebSocket holds one of the process's
long-lived connection slots (1013 when none is free) and runs at most
`events_max_subscriptions_per_connection` operations at once.
"""

import dataclasses
import functools
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import Request, Response, WebSocket
from fastapi.routing import APIRoute, APIWebSocketRoute
from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth import ANYONE
from api.tasks import errors
from api.tasks.service import TaskService
from api.web import errors as http_errors
from api.web.authentication import authenticate, caller_of
from api.web.explorer import graphiql_page
from graphql_schema.context import ConnectionContext, request_context
from graphql_schema.errors import DOCUMENT_ERROR_CODE, STATUS_BY_CODE, error_response
from graphql_schema.negotiation import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    check_content_type,
    decode_json,
    encode_json,
    negotiate,
    prefers_html,
    query_request,
    request_data,
)
from graphql_schema.persisted import PersistedDocuments

_ALLOWED_BY_METHOD = {
    "GET": frozenset({OperationType.QUERY}),
    # Subscriptions stream: over a WebSocket, or a request whose Accept asks for multipart.
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION}),
}
STREAMING_NEEDED = (
    "Subscriptions stream their events: subscribe over a WebSocket at this path "
    "(graphql-transport-ws), or POST with Accept: multipart/mixed;subscriptionSpec=1.0"
)
_USE_POST_OR_GET = ("GET", "POST")
MULTIPART_SUBSCRIPTIONS = "multipart-subscription"
# RFC 6455 7.4.1: "Try Again Later".
WS_TRY_AGAIN_LATER = 1013

# The response media type of the request being handled (set in `_handle`, read when the
# response is built; Strawberry's hooks in between do not pass the request along).
_response_media_type: ContextVar[str] = ContextVar("graphql_response_media_type", default=JSON)


def _is_request_error(result: ExecutionResult) -> bool:
    """Nothing was executed: no data, and no error belongs to a field (field errors have paths)."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors)
    )


def _status_of_request_error(body: GraphQLHTTPResponse) -> int:
    """A 4xx or 5xx for a response without `data`, from its errors' codes."""
    codes = [
        error.get("extensions", {}).get("code") if isinstance(error, dict) else None
        for error in body.get("errors") or []
    ]
    return max((STATUS_BY_CODE.get(str(code), 500) for code in codes), default=500)


def _names_no_operation_among_several(
    request_data: GraphQLRequestData, max_tokens: int | None
) -> bool:
    """GraphQL's GetOperation(): several operations and no operationName is a request error.

    Strawberry would run the first one; the spec says the caller must choose. Only requests
    without an operationName need to know, and clients send the same few documents again and
    again, so the count is kept per document text. The parse stops at the schema's token limit,
    as the schema's own does.
    """
    if request_data.operation_name is not None or not request_data.query:
        return False
    return _operation_count(request_data.query, max_tokens) > 1


@functools.lru_cache(maxsize=256)
def _operation_count(query: str, max_tokens: int | None) -> int:
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return 0  # Strawberry reports the error itself (syntax, or over the token limit)
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


def _document_error(message: str) -> ExecutionResult:
    return ExecutionResult(
        data=None, errors=[GraphQLError(message, extensions={"code": DOCUMENT_ERROR_CODE})]
    )


def _from_strawberry(exc: HTTPException) -> errors.TaskAPIError:
    if exc.status_code == 405:
        return http_errors.MethodNotAllowedError(_USE_POST_OR_GET, exc.reason)
    return http_errors.BadRequestError(exc.reason)


class TextFrames(ASGIWebSocketAdapter):
    """Sends every message as a text frame, as graphql-transport-ws requires (Strawberry sends
    bytes as binary frames, and the router's JSON encoder gives bytes)."""

    async def send_json(self, message: Any) -> None:
        try:
            await self.ws.send_text(encode_json(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class TaskGraphQLRouter(GraphQLRouter[Any, None]):
    """GraphQL over HTTP for the schema; GraphiQL's page is open, every operation is not."""

    websocket_adapter_class = TextFrames

    def __init__(
        self,
        schema: BaseSchema,
        tasks: TaskService,
        documents: PersistedDocuments,
        *,
        graphiql: bool,
        retry_after: int,
        max_subscriptions_per_connection: int = 100,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, MULTIPART_SUBSCRIPTIONS),
            max_subscriptions_per_connection=max_subscriptions_per_connection,
            allowed_origins=allowed_origins,
        )
        self._tasks = tasks
        self._documents = documents
        self._retry_after = retry_after
        # Strawberry's GET and POST routes resolve the context through three nested FastAPI
        # dependencies on every request; one handler builds it directly (same paths, answers).
        self.routes[:] = [
            route for route in self.routes if not isinstance(route, APIWebSocketRoute | APIRoute)
        ]
        methods = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE"]
        self.add_api_route("", self._handle, methods=methods, include_in_schema=False)

    async def serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A `graphql-transport-ws` connection, holding one long-lived connection slot.

        An ASGI app of its own, not a route: the app hands it WebSockets at `/graphql` in front
        of its routing (api.web.edge.WebSocketRoutes), so an open socket holds nothing else.
        """
        websocket = WebSocket(scope, receive, send)
        try:
            slot = self._tasks.events.connection()
            slot.__enter__()
        except errors.TooManyStreamsError as exc:
            await websocket.close(WS_TRY_AGAIN_LATER, exc.detail)
            return
        try:
            context = ConnectionContext(self._tasks, ANYONE)
            context.request = websocket
            await self.run(websocket, context=context, root_value=None)
        finally:
            slot.__exit__(None, None, None)

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        """Authenticate the connection: the token in `connection_init`'s payload, else the
        handshake's `Authorization` header; a refused one closes the socket with 4403."""
        websocket: WebSocket = context.request
        params = context.connection_params or {}
        given = params.get("Authorization", params.get("authorization"))
        if given is not None and not isinstance(given, str):
            raise ConnectionRejectionError()
        authorization = [given] if given is not None else websocket.headers.getlist("authorization")
        try:
            context.caller = await caller_of(websocket.app.state.verifier, authorization)
        except errors.TaskAPIError:
            raise ConnectionRejectionError() from None
        return UNSET

    async def _handle(self, request: Request) -> Response:
        media_type = JSON
        try:
            if request.method not in _ALLOWED_BY_METHOD:
                raise http_errors.MethodNotAllowedError(
                    _USE_POST_OR_GET, "Use POST (or GET for queries)"
                )
            if self.should_render_graphql_ide(self.request_adapter_class(request)):
                return graphiql_page(request)
            if self._graphiql_refused_as_untrusted(request):
                raise http_errors.BadRequestError(
                    "GraphiQL is off: only trusted documents run here "
                    "(TASK_API_GRAPHQL_TRUSTED_DOCUMENTS_GRAPHIQL=true turns it on, not for "
                    "production)"
                )
            negotiated = negotiate(request.headers.get("accept"))
            if negotiated is None and self._get_stream_transport_from_headers(request.headers):
                negotiated = JSON  # the multipart subscription protocol, and its errors
            if negotiated is None:
                raise http_errors.NotAcceptableError(
                    f"Send Accept: {GRAPHQL_RESPONSE_JSON} or {JSON}"
                )
            media_type = negotiated
            caller = await authenticate(request)
            if request.method == "POST":
                check_content_type(request.headers.get("content-type"))
            token = _response_media_type.set(media_type)
            try:
                async with request_context(request, self._tasks, caller) as context:
                    return await self.run(request, context=context, root_value=None)
            finally:
                _response_media_type.reset(token)
        except errors.TaskAPIError as exc:
            return error_response(exc, media_type, self._retry_after)
        except HTTPException as exc:
            return error_response(_from_strawberry(exc), media_type, self._retry_after)

    def _graphiql_refused_as_untrusted(self, request: Request) -> bool:
        """A browser asking for GraphiQL where trusted documents keep it off."""
        trusted = self._documents.trusted
        return (
            trusted is not None
            and not trusted.others_allowed
            and request.method == "GET"
            and "query" not in request.query_params
            and prefers_html(request.headers.get("accept", ""))
        )

    async def get_sub_response(self, request: Request) -> Response:
        # A fresh one per request (Strawberry's sits on the router, shared by all requests),
        # made as FastAPI makes its own: headers for the answer, and no length of its own.
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        return sub_response

    def encode_json(self, data: object) -> bytes:
        return encode_json(data)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return (
            self.graphql_ide is not None
            and request.method == "GET"
            and "query" not in request.query_params
            and prefers_html(request.headers.get("accept", ""))
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:  # type: ignore[override]
        if request.method == "GET":
            data = query_request(request.query_params)
        else:
            data = request_data(decode_json(await request.get_body(), "The request body"))
        # A document by reference gets its text here, before anything parses it.
        data = await self._documents.resolve(data)
        transport = self._get_stream_transport_from_headers(request.headers)
        if transport is not None:
            # Strawberry streams the subscription's events in the protocol `Accept` asked for.
            data = dataclasses.replace(data, protocol=transport.protocol)
        return data

    async def execute_single(  # type: ignore[override]
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        if _names_no_operation_among_several(
            request_data, getattr(self.schema, "max_tokens", None)
        ):
            return _document_error(
                "Must provide operation name if query contains multiple operations."
            )
        try:
            result = await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=_ALLOWED_BY_METHOD[request_adapter.method],
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise http_errors.BadRequestError(STREAMING_NEEDED) from exc
            # GET is safe: it must never change anything (the spec's MUST).
            raise http_errors.MethodNotAllowedError(
                ("POST",), f"{exc.as_http_error_reason('GET')}; use POST"
            ) from exc
        except CannotGetOperationTypeError as exc:
            return _document_error(exc.as_http_error_reason())
        except MissingQueryError:  # the empty document: a string, so a well-formed request
            return _document_error("Syntax Error: Unexpected <EOF>.")
        if not _is_request_error(result):
            # It passed every limit and rule: a document sent with its hash is stored now.
            await self._documents.register(request_data)
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:  # type: ignore[override]
        body = await super().process_result(request, result)
        if _response_media_type.get() == GRAPHQL_RESPONSE_JSON and _is_request_error(result):
            body.pop("data", None)
        return body

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        media_type = _response_media_type.get()
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and "data" not in response_data
        ):
            response.status_code = _status_of_request_error(response_data)
        return response
