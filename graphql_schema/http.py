"""GraphQL over HTTP (the graphql/graphql-over-http specification) on Strawberry's FastAPI router.

Strawberry parses, validates and executes; this router makes the transport follow the spec:

- The response media type follows `Accept`: `application/graphql-response+json` when the client
  prefers it, otherwise `application/json`; 406 when the client accepts neither. A request with
  no `Accept` header, or only wildcards, gets `application/json` (what every caller got before),
  where the spec's post-2025 default would be the new type.
- With `application/graphql-response+json`, a request error (the document does not parse or
  validate, names no operation that can run, or its variables cannot be coerced) is a 400 whose
  body has no `data` key. With `application/json`, every well-formed request is answered 200, as
  before.
- GET runs queries only: a mutation is 405 with `Allow: POST`. POST runs everything.
- A POST body must be `application/json` in UTF-8 (415 otherwise). A request that is not a
  well-formed GraphQL request (invalid JSON, no `query`, a `query` that is not a string,
  `variables` or `extensions` that are not objects, ...) is 400; never a 500.
- Every error answer is a GraphQL response, `{"errors": [{"message", "extensions": {"code"}}]}`.

A browser's GET with no `query` (it asks for text/html) gets GraphiQL instead (api/explorer.py).
"""

import functools
import json
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import Request, Response
from graphql import GraphQLError, OperationDefinitionNode, parse
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.ides import GraphQL_IDE
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from api import errors
from api.explorer import graphiql_page
from graphql_schema.errors import DOCUMENT_ERROR_CODE

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# Offered in this order: on a tie (e.g. `*/*`) the first wins, so old callers keep their type.
_OFFERED = (JSON, GRAPHQL_RESPONSE_JSON)
_ALLOWED_BY_METHOD = {
    "GET": frozenset({OperationType.QUERY}),
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}),
}

# The response media type of the request being handled (set in `run`, read when the response
# is built; Strawberry's hooks in between do not pass the request along).
_response_media_type: ContextVar[str] = ContextVar("graphql_response_media_type", default=JSON)


def _media_ranges(header: str) -> list[tuple[str, float]]:
    """`Accept` as (media range, quality) pairs in the order given; malformed items skipped."""
    ranges = []
    for item in header.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        if "/" not in media_range:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            ranges.append((media_range.lower(), quality))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, for an `Accept` header; None when none offered is acceptable.

    Each offered type takes the quality of the most specific range that matches it (RFC 9110
    12.5.1); the highest quality wins, then the more specific match, then the earlier one.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = _media_ranges(accept)
    best: tuple[float, int, int] | None = None
    chosen = None
    for offer in _OFFERED:
        kind = offer.split("/")[0]
        matches = [
            (specificity, -position, quality)
            for position, (media_range, quality) in enumerate(ranges)
            for specificity, pattern in ((2, offer), (1, f"{kind}/*"), (0, "*/*"))
            if media_range == pattern
        ]
        if not matches:
            continue
        specificity, negative_position, quality = max(matches)
        rank = (quality, specificity, negative_position)
        if quality > 0 and (best is None or rank > best):
            best, chosen = rank, offer
    return chosen


def _prefers_html(accept: str) -> bool:
    """A browser navigating: it names text/html itself (a bare `*/*` is an API client)."""
    return any(
        media_range == "text/html" and quality > 0 for media_range, quality in _media_ranges(accept)
    )


def _check_content_type(content_type: str | None) -> None:
    """A POST body must be JSON in UTF-8, the one request encoding the spec requires."""
    if content_type is None:
        raise errors.UnsupportedMediaTypeError(
            "A POST request needs Content-Type: application/json"
        )
    media_type, *params = (part.strip() for part in content_type.split(";"))
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media_type.lower() != JSON or charset not in {"utf-8", "utf8"}:
        raise errors.UnsupportedMediaTypeError(
            f"Unsupported Content-Type {content_type!r}; send application/json (UTF-8)"
        )


def _decode_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # also invalid UTF-8 and absurd nesting
        raise errors.BadRequestError(f"{what} is not valid JSON") from exc


def _request_data(data: object) -> GraphQLRequestData:
    """The request parameters, checked the way the spec defines a well-formed request."""
    if not isinstance(data, Mapping):
        raise errors.BadRequestError(
            "The request must be a JSON object (batching is not supported)"
        )
    query = data.get("query")
    if query is None:
        raise errors.BadRequestError("No GraphQL query found in the request")
    if not isinstance(query, str):
        raise errors.BadRequestError("query must be a string")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise errors.BadRequestError("operationName must be a string or null")
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise errors.BadRequestError("variables must be an object or null")
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise errors.BadRequestError("extensions must be an object or null")
    return GraphQLRequestData(
        query=query,
        variables=variables,
        # An empty operationName means none (the spec says so for GET; JSON follows suit).
        operation_name=operation_name or None,
        extensions=extensions,
    )


def _is_request_error(result: ExecutionResult) -> bool:
    """Nothing was executed: no data, and no error belongs to a field (field errors have paths)."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors)
    )


def _status_by_code() -> dict[str, int]:
    """Each `extensions.code` with its HTTP status, from the error tree."""
    status_by_code = {DOCUMENT_ERROR_CODE: 400}
    pending: list[type[errors.TaskAPIError]] = [errors.TaskAPIError]
    while pending:
        error_class = pending.pop()
        status_by_code.setdefault(error_class.graphql_code, error_class.status_code)
        pending.extend(error_class.__subclasses__())
    return status_by_code


_STATUS_BY_CODE = _status_by_code()


def _status_of_request_error(body: GraphQLHTTPResponse) -> int:
    """A 4xx or 5xx for a response without `data`, from its errors' codes."""
    codes = [
        error.get("extensions", {}).get("code") if isinstance(error, dict) else None
        for error in body.get("errors") or []
    ]
    return max((_STATUS_BY_CODE.get(str(code), 500) for code in codes), default=500)


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


def error_response(error: errors.TaskAPIError, media_type: str = JSON) -> Response:
    """A GraphQL response holding one request error, with the error's HTTP status."""
    body = {"errors": [{"message": error.detail, "extensions": {"code": error.graphql_code}}]}
    headers = {}
    if isinstance(error, errors.MethodNotAllowedError):
        headers["Allow"] = ", ".join(error.allow)
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=error.status_code,
        headers=headers,
        media_type=f"{media_type}; charset=utf-8",
    )


def _from_strawberry(exc: HTTPException) -> errors.TaskAPIError:
    if exc.status_code == 405:
        return errors.MethodNotAllowedError(("GET", "POST"), exc.reason)
    return errors.BadRequestError(exc.reason)


class GraphQLOverHTTPRouter(GraphQLRouter[Any, None]):
    """Strawberry's router for /graphql, answering as the GraphQL-over-HTTP spec says."""

    def __init__(
        self, *args: Any, graphql_ide: GraphQL_IDE | None = "graphiql", **kwargs: Any
    ) -> None:
        super().__init__(*args, graphql_ide=graphql_ide, **kwargs)

        # Other methods would get Starlette's 405, naming only one route's methods.
        @self.api_route("", methods=["HEAD", "PUT", "PATCH", "DELETE"])
        async def other_methods() -> Response:
            return error_response(
                errors.MethodNotAllowedError(("GET", "POST"), "Use POST (or GET for queries)")
            )

    async def run(  # type: ignore[override]
        self, request: Request, context: Any = UNSET, root_value: Any = UNSET
    ) -> Response:
        if self.is_websocket_request(request):
            return await super().run(request, context=context, root_value=root_value)
        media_type = JSON
        try:
            if request.method not in _ALLOWED_BY_METHOD:
                raise errors.MethodNotAllowedError(("GET", "POST"))
            if self.should_render_graphql_ide(self.request_adapter_class(request)):
                return await self.render_graphql_ide(request)
            negotiated = negotiate(request.headers.get("accept"))
            if negotiated is None:
                raise errors.NotAcceptableError(f"Send Accept: {GRAPHQL_RESPONSE_JSON} or {JSON}")
            media_type = negotiated
            if request.method == "POST":
                _check_content_type(request.headers.get("content-type"))
            token = _response_media_type.set(media_type)
            try:
                return await super().run(request, context=context, root_value=root_value)
            finally:
                _response_media_type.reset(token)
        except errors.RequestError as exc:
            return error_response(exc, media_type)
        except HTTPException as exc:
            return error_response(_from_strawberry(exc), media_type)

    def encode_json(self, data: object) -> bytes:
        """Every GraphQL answer's JSON: orjson's, several times faster than the stdlib's."""
        try:
            return orjson.dumps(data)
        except TypeError:
            # What orjson refuses and the stdlib escapes: a lone surrogate echoed back from the
            # caller's request (e.g. in an error message), an integer past 64 bits.
            return json.dumps(data, separators=(",", ":")).encode()

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return (
            self.graphql_ide is not None
            and request.method == "GET"
            and "query" not in request.query_params
            and _prefers_html(request.headers.get("accept", ""))
        )

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        return graphiql_page(request)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:  # type: ignore[override]
        if request.method == "GET":
            params = request.query_params
            data: dict[str, object] = {
                "query": params.get("query"),
                "operationName": params.get("operationName"),
            }
            for name in ("variables", "extensions"):
                value = params.get(name)
                if isinstance(value, str):
                    data[name] = _decode_json(value, f"The {name} parameter")
            return _request_data(data)
        return _request_data(_decode_json(await request.get_body(), "The request body"))

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
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=_ALLOWED_BY_METHOD[request_adapter.method],
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            # GET is safe: it must never change anything (the spec's MUST).
            raise errors.MethodNotAllowedError(
                ("POST",), f"{exc.as_http_error_reason('GET')}; use POST"
            ) from exc
        except CannotGetOperationTypeError as exc:
            return _document_error(exc.as_http_error_reason())
        except MissingQueryError:  # the empty document: a string, so a well-formed request
            return _document_error("Syntax Error: Unexpected <EOF>.")

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
