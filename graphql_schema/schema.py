"""The Strawberry schema (`strawberry export-schema graphql_schema.schema:schema`).

`build_schema(settings)` makes the schema an app serves, with the limits its settings ask for;
the module-level `schema` has the default limits and is what the SDL file is made from.
"""

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from api.config import Settings
from graphql_schema.errors import ErrorCodes
from graphql_schema.execution import PlainFieldsExecutionContext
from graphql_schema.limits import QueryTextLimit, factory, shape_rule
from graphql_schema.mutations import Mutation
from graphql_schema.permissions import OperationOwner
from graphql_schema.queries import Query


class TaskSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors (not found, bad input, database down) are answers, not incidents, and
        # unexpected ones are logged once by api.errors.classify when ErrorCodes masks them.
        return None


# Validating a document costs more than running it, and clients send the same few documents
# again and again. Bounded, so unique documents cannot grow memory. (Strawberry's ParserCache is
# left out: it raises syntax errors past the ErrorCodes extension, leaving them without a code.)
DOCUMENT_CACHE_SIZE = 256


def build_schema(settings: Settings) -> TaskSchema:
    """The schema with the settings' limits, checked in this order before anything executes."""
    extensions: list[type[SchemaExtension] | object] = [
        factory(QueryTextLimit, settings.graphql_max_query_length),
        factory(MaxTokensLimiter, settings.graphql_max_tokens),
        factory(
            AddValidationRules,
            [shape_rule(settings.graphql_max_depth, settings.graphql_max_aliases)],
        ),
    ]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    # The cache is keyed by the rules, so the one rule list made here serves every request.
    extensions += [OperationOwner, ErrorCodes, lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE)]
    return TaskSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,  # type: ignore[arg-type]
        execution_context_class=PlainFieldsExecutionContext,
    )


schema = build_schema(Settings.model_construct())
