"""The GraphQL endpoint: Strawberry's router, answering every malformed body with a 400."""

from typing import Any

from cross_web import HTTPException
from strawberry.fastapi import GraphQLRouter

from graphql_schema.context import Context, get_context
from graphql_schema.schema import schema


class TaskGraphQLRouter(GraphQLRouter[Context, None]):
    def parse_json(self, data: str | bytes) -> Any:
        """Decode a JSON body or parameter; anything but an object (or a batch list) is a 400.

        Strawberry turns only JSONDecodeError into a 400; invalid UTF-8, nesting deeper than the
        parser's recursion limit and over-long integers raise other errors, and a body that is a
        bare string or number would fail later, all as 500s.
        """
        try:
            decoded = self.decode_json(data)
        except (ValueError, RecursionError) as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if decoded is not None and not isinstance(decoded, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return decoded


def graphql_router() -> TaskGraphQLRouter:
    return TaskGraphQLRouter(schema, context_getter=get_context, graphql_ide="graphiql")
