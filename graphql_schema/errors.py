"""GraphQL errors: `extensions.code` from the service's error tree, anything unexpected masked."""

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from api import errors


def _public_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # Parse and validation errors (no original), and variables of the wrong type (graphql-core's
        # own coercion error as the original): the caller's request is at fault, and
        # graphql-core's message says how.
        code = "GRAPHQL_VALIDATION_FAILED" if original is None else "BAD_USER_INPUT"
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
