"""The Strawberry schema (`strawberry export-schema graphql_schema.schema:schema`).

`build_schema(settings)` makes the schema an app serves, with the limits its settings ask for;
the module-level `schema` has the default limits and is what the SDL file is made from.
"""

import contextlib
from collections.abc import Iterator

from graphql import GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry import Schema
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
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
from graphql_schema.subscriptions import Subscription


class TaskSchema(Schema):
    max_tokens: int | None = None
    """The token limit every parse of a request's document stops at."""
    max_query_length: int | None = None
    """The most characters of query text parsed at all."""
    document_rules: tuple[type[ASTValidationRule], ...] = ()
    """The validation rules added to graphql-core's (document shape, introspection switch)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors (not found, bad input, database down) are answers, not incidents, and
        # unexpected ones are logged once by api.errors.classify when ErrorCodes masks them.
        return None


# Parsing and validating a document cost more than running it, and clients send the same few
# documents again and again. Bounded, so unique documents cannot grow memory.
DOCUMENT_CACHE_SIZE = 256


class SuccessfulParseCache(ParserCache):
    """Strawberry's ParserCache, except that a document that does not parse is left to Strawberry.

    ParserCache parses in `on_parse` itself, so a syntax error escapes the parsing step and skips
    the ErrorCodes extension (no `extensions.code`). Here a failed parse leaves no document, and
    Strawberry parses again where its errors become the result ErrorCodes rewrites. The LRU cache
    keeps only successful parses, keyed by the text and the parse options (the token limit), so
    a document over the limit is refused on every send.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # Whatever fails here is reported by Strawberry's own parse, just after.
        with contextlib.suppress(Exception):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


def build_schema(settings: Settings) -> TaskSchema:
    """The schema with the settings' limits, checked in this order before anything executes."""
    document_rules: list[type[ASTValidationRule]] = [
        shape_rule(settings.graphql_max_depth, settings.graphql_max_aliases)
    ]
    if not settings.graphql_introspection:
        # What Strawberry's DisableIntrospection adds.
        document_rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[type[SchemaExtension] | object] = [
        factory(QueryTextLimit, settings.graphql_max_query_length),
        factory(MaxTokensLimiter, settings.graphql_max_tokens),
        factory(AddValidationRules, document_rules),
        OperationOwner,
        ErrorCodes,
        lambda: SuccessfulParseCache(maxsize=DOCUMENT_CACHE_SIZE),
        # Keyed by the rules, so the one rule list made above serves every request.
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
    ]
    task_schema = TaskSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,  # type: ignore[arg-type]
        execution_context_class=PlainFieldsExecutionContext,
    )
    task_schema.max_tokens = settings.graphql_max_tokens
    task_schema.max_query_length = settings.graphql_max_query_length
    task_schema.document_rules = tuple(document_rules)
    return task_schema


schema = build_schema(Settings.model_construct())
