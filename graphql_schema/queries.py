"""Query resolvers: translate arguments, call the service, convert the result."""

import strawberry

from api import errors, service
from graphql_schema.context import Context
from graphql_schema.permissions import IsOwner
from graphql_schema.types import Task

Info = strawberry.Info[Context, None]


@strawberry.type
class Query:
    @strawberry.field(description="The user's tasks, oldest first.", permission_classes=[IsOwner])
    async def tasks(self, info: Info, user_id: str) -> list[Task]:
        async with info.context.session() as session:
            return [Task.from_model(task) for task in await service.list_tasks(session, user_id)]

    @strawberry.field(
        description="One of the user's tasks; null when there is no such task.",
        permission_classes=[IsOwner],
    )
    async def task(self, info: Info, user_id: str, id: strawberry.ID) -> Task | None:
        try:
            async with info.context.session() as session:
                return Task.from_model(await service.get_task(session, user_id, id))
        except errors.NotFoundError:
            # Expected absence is null, not an error (Strawberry's advice for nullable lookups).
            return None
