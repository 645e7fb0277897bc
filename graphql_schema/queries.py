"""Query resolvers: translate arguments, call the service, convert the result."""

from collections.abc import Sequence

import strawberry
from strawberry import UNSET

from api.tasks import errors
from api.tasks.shapes import TaskRecord
from graphql_schema.context import Context
from graphql_schema.inputs import TaskFilter, TaskOrder, connection_query, list_query
from graphql_schema.permissions import IsOwner
from graphql_schema.types import Task, TaskConnection

Info = strawberry.Info[Context, None]


@strawberry.type
class Query:
    @strawberry.field(
        description="The user's tasks (default: all, oldest first); `limit` is 1-1000.",
        permission_classes=[IsOwner],
        graphql_type=list[Task],
    )
    async def tasks(
        self,
        info: Info,
        user_id: str,
        filter: TaskFilter | None = UNSET,
        order_by: TaskOrder | None = UNSET,
        limit: int | None = UNSET,
    ) -> Sequence[TaskRecord]:
        context = info.context
        query = list_query(filter, order_by, limit)
        page = await context.run(context.tasks.list_tasks, user_id, query)
        return page.tasks

    @strawberry.field(
        description="A page of the user's tasks: `first`/`after` forward, `last`/`before` "
        "backward; `first`/`last` are 1-100, 50 when neither is given.",
        permission_classes=[IsOwner],
    )
    async def tasks_connection(
        self,
        info: Info,
        user_id: str,
        filter: TaskFilter | None = UNSET,
        order_by: TaskOrder | None = UNSET,
        first: int | None = UNSET,
        after: str | None = UNSET,
        last: int | None = UNSET,
        before: str | None = UNSET,
    ) -> TaskConnection:
        context = info.context
        # Arguments left out are UNSET, which the validated models read as absent.
        window = {"first": first, "after": after, "last": last, "before": before}
        query = connection_query(filter, order_by, window)
        page = await context.run(context.tasks.list_tasks, user_id, query)
        return TaskConnection.from_page(page, user_id, query.filter)

    @strawberry.field(
        description="One of the user's tasks; null when there is no such task.",
        permission_classes=[IsOwner],
        graphql_type=Task | None,
    )
    async def task(self, info: Info, user_id: str, id: strawberry.ID) -> TaskRecord | None:
        context = info.context
        try:
            return await context.run(context.tasks.get_task, user_id, id)
        except errors.NotFoundError:
            # Expected absence is null, not an error (Strawberry's advice for nullable lookups).
            return None
