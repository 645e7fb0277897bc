"""The /graphql endpoint: Strawberry's FastAPI router, authenticated before anything is parsed."""

from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute, APIWebSocketRoute
from strawberry.schema import BaseSchema
from strawberry.types.unset import UNSET

from api import auth, errors
from graphql_schema.context import Context, request_context
from graphql_schema.errors import request_error_response
from graphql_schema.http import GraphQLOverHTTPRouter


class TaskGraphQLRouter(GraphQLOverHTTPRouter):
    """GraphQL over HTTP for the schema; GraphiQL's page is open, every operation is not.

    The caller is authenticated before the request body is read, so a request without a valid
    token is refused (401, `UNAUTHENTICATED`) without parsing or validating its document. There
    is no WebSocket endpoint: the schema has no subscriptions, and a socket would pass by the
    HTTP edge (body limit, headers) and cannot carry an Authorization header from a browser.
    """

    def __init__(self, schema: BaseSchema, *, graphiql: bool, retry_after: int) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if graphiql else None, subscription_protocols=()
        )
        # Strawberry's GET and POST routes resolve the context through three nested FastAPI
        # dependencies on every request; these build it directly (same paths, same answers).
        served_here = {"GET", "POST"}
        self.routes[:] = [
            route
            for route in self.routes
            if not isinstance(route, APIWebSocketRoute)
            and not (isinstance(route, APIRoute) and route.methods & served_here)
        ]
        for method in sorted(served_here):
            self.add_api_route("", self._handle, methods=[method], include_in_schema=False)
        self._retry_after = retry_after

    async def _handle(self, request: Request) -> Response:
        async with request_context(request) as context:
            return await self.run(request, context, None)

    async def get_sub_response(self, request: Request) -> Response:
        # A fresh one per request (Strawberry's sits on the router, shared by all requests),
        # made as FastAPI makes its own: headers for the answer, and no length of its own.
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        return sub_response

    async def run(  # type: ignore[override]
        self, request: Request, context: Context = UNSET, root_value: Any = UNSET
    ) -> Any:
        if not self.should_render_graphql_ide(self.request_adapter_class(request)):
            try:
                context.caller = await auth.authenticate(request)
            except errors.TaskAPIError as error:
                return request_error_response(error, self._retry_after)
        return await super().run(request, context, root_value)
