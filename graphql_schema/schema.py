"""The Strawberry schema object (`strawberry export-schema graphql_schema.schema:schema`)."""

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import AddValidationRules, ValidationCache
from strawberry.extensions.max_aliases import create_validator
from strawberry.types import ExecutionContext

from graphql_schema.errors import ErrorCodes
from graphql_schema.mutations import Mutation
from graphql_schema.queries import Query


class TaskSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors (not found, bad input, database down) are answers, not incidents, and
        # unexpected ones are logged once by api.errors.classify when ErrorCodes masks them.
        return None


# Each alias of a field runs its resolver again: without a cap, one small request could run
# thousands of queries.
MAX_ALIASES = 50
# One rule class for the life of the process: the validation cache below is keyed by the rules, so
# a class made per request (as MaxAliasesLimiter does) would never hit it.
MAX_ALIASES_RULE = create_validator(MAX_ALIASES)
# Validating a document costs more than running it, and clients send the same few documents
# again and again. Bounded, so unique documents cannot grow memory. (Strawberry's ParserCache is
# left out: it raises syntax errors past the ErrorCodes extension, leaving them without a code.)
DOCUMENT_CACHE_SIZE = 256

schema = TaskSchema(
    query=Query,
    mutation=Mutation,
    # Factories, so each request gets fresh extension instances (the caches are shared anyway).
    extensions=[
        ErrorCodes,
        lambda: AddValidationRules([MAX_ALIASES_RULE]),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
    ],
)
