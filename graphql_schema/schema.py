"""The Strawberry schema object (`strawberry export-schema graphql_schema.schema:schema`)."""

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import MaxAliasesLimiter
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

schema = TaskSchema(
    query=Query,
    mutation=Mutation,
    extensions=[ErrorCodes, lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES)],
)
