"""GraphQL errors: `extensions.code` from the service's error tree, anything unexpected masked."""

from collections.abc import Iterator

from fastapi.responses import JSONResponse
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api import errors
from api.error_handlers import error_headers

# The code of an error in the caller's document: it does not parse or validate, names no
# operation that can run, or its variables cannot be coerced.
DOCUMENT_ERROR_CODE = "GRAPHQL_VALIDATION_FAILED"


def _public_error(error: GraphQLError) -> GraphQLError:
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
    extensions: dict[str, object] = {"code": public.graphql_code}
    if isinstance(public, errors.ValidationError):
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
    """Rewrites every error of an operation once, as MaskErrors does."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_public_error(error) for error in result.errors]


def request_error_response(error: errors.TaskAPIError, retry_after: int) -> JSONResponse:
    """A request refused before its operation runs (e.g. no valid token), as GraphQL over HTTP.

    The status is the error's own (401 with its Bearer challenge, 503 with Retry-After), and the
    body is a GraphQL response with only `errors`, since nothing was executed.
    """
    body = {"errors": [{"message": error.detail, "extensions": {"code": error.graphql_code}}]}
    return JSONResponse(
        body, status_code=error.status_code, headers=error_headers(error, retry_after)
    )
