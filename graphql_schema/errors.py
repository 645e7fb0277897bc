"""GraphQL errors: one table from the error tree to `extensions.code`, one extension that rewrites
every error of an operation with it (anything unexpected masked), and the response for a request
refused before its operation runs."""

import contextlib
from collections.abc import Iterator
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

from api.observe import context as observed
from api.tasks import errors
from api.web import errors as http_errors
from api.web.statuses import error_headers, nearest, status_for, status_of
from graphql_schema.negotiation import JSON

# The code of an error in the caller's document: it does not parse or validate, names no
# operation that can run, or its variables cannot be coerced.
DOCUMENT_ERROR_CODE = "GRAPHQL_VALIDATION_FAILED"

# An error class not listed takes its nearest listed base's code.
CODE: dict[type[errors.TaskAPIError], str] = {
    errors.TaskAPIError: "INTERNAL_SERVER_ERROR",
    errors.ValidationError: "BAD_USER_INPUT",
    errors.AuthenticationError: "UNAUTHENTICATED",
    errors.AuthorizationError: "FORBIDDEN",
    errors.NotFoundError: "NOT_FOUND",
    errors.PreconditionFailedError: "CONFLICT",
    errors.DatabaseError: "SERVICE_UNAVAILABLE",
    errors.SigningKeysUnavailableError: "SERVICE_UNAVAILABLE",
    # The client reloads the list and subscribes again without `after`.
    errors.EventsExpiredError: "BAD_USER_INPUT",
    errors.StreamClosedError: "SERVICE_UNAVAILABLE",
    errors.SubscriberTooSlowError: "SUBSCRIBER_TOO_SLOW",
    errors.TooManyStreamsError: "SERVICE_UNAVAILABLE",
    http_errors.BadRequestError: "BAD_REQUEST",
    http_errors.PayloadTooLargeError: "BAD_REQUEST",
    http_errors.MethodNotAllowedError: "METHOD_NOT_ALLOWED",
    http_errors.NotAcceptableError: "NOT_ACCEPTABLE",
    http_errors.UnsupportedMediaTypeError: "UNSUPPORTED_MEDIA_TYPE",
    http_errors.PersistedQueryNotFoundError: "PERSISTED_QUERY_NOT_FOUND",
    http_errors.UntrustedDocumentError: DOCUMENT_ERROR_CODE,
}


def code_of(error: errors.TaskAPIError) -> str:
    return nearest(CODE, type(error))


def _status_by_code() -> dict[str, int]:
    """Each code with the HTTP status of the first error class that has it."""
    status_by_code = {DOCUMENT_ERROR_CODE: 400}
    for kind in CODE:
        status_by_code.setdefault(CODE[kind], status_for(kind))
    return status_by_code


STATUS_BY_CODE = _status_by_code()


def graphql_name(field: str) -> str:
    """A field as the GraphQL caller wrote it: the service's `user_id` or `idempotency_key` is the
    `userId` or `idempotencyKey` argument, `input.title` stays as it is (each part of a path is
    spelled as the schema spells it, by Strawberry's own name converter)."""
    return ".".join(to_camel_case(part) for part in field.split("."))


def public_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    # graphql-core's own errors about the caller's document: parse and validation errors carry
    # no original error; variable-coercion errors wrap graphql-core's coercion error, and (unlike
    # a field's error) have no path.
    if original is None or (isinstance(original, GraphQLError) and error.path is None):
        # The caller's document is at fault, and graphql-core's message says how.
        code = DOCUMENT_ERROR_CODE if original is None else "BAD_USER_INPUT"
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": code},
        )
    public = errors.classify(original)
    extensions: dict[str, object] = {"code": code_of(public)}
    if isinstance(public, errors.ValidationError):
        # Named as the caller wrote them; the message is rebuilt from those names, so it never
        # speaks of a Python name or a REST header either.
        public = public.renamed(graphql_name)
        extensions["errors"] = public.errors
    return GraphQLError(
        public.detail,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Rewrites every error of an operation once, as MaskErrors does; for a subscription (or
    any operation over a WebSocket), every error of each result it streams."""

    def __init__(self, *, execution_context: Any = None) -> None:
        super().__init__(execution_context=execution_context)
        self._rewritten: set[int] = set()

    def _rewrite(self, result: Any) -> None:
        if result is None or not getattr(result, "errors", None) or id(result) in self._rewritten:
            return
        self._rewritten.add(id(result))
        result.errors = [public_error(error) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._rewrite(result)
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        # What the request was, for its metrics, log line and span (api.observe.context); a
        # document that did not parse has no operation.
        with contextlib.suppress(Exception):
            observed.record_operation(execution.operation_type.value, execution.operation_name)
        result = execution.result
        self._rewrite(result)
        if result is not None and getattr(result, "errors", None):
            observed.record_error_code((result.errors[0].extensions or {}).get("code"))


def error_response(error: errors.TaskAPIError, media_type: str, retry_after: int) -> Response:
    """A request refused before its operation runs (no valid token, a malformed request, ...),
    as GraphQL over HTTP: the error's own status and headers (a Bearer challenge, Retry-After,
    Allow), and a body with only `errors`, since nothing was executed."""
    code = code_of(error)
    observed.record_error_code(code)
    body = {"errors": [{"message": error.detail, "extensions": {"code": code}}]}
    status = status_of(error)
    if isinstance(error, http_errors.DocumentRefusedError) and media_type == JSON:
        status = 200  # as every document error is in application/json
    return Response(
        orjson.dumps(body),
        status_code=status,
        headers=error_headers(error, retry_after),
        media_type=f"{media_type}; charset=utf-8",
    )
