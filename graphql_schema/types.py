"""The GraphQL types.

`Task` describes the service's task to GraphQL: its fields are the domain's
(`api.tasks.shapes.TaskRead`), by name, and resolvers return the service's records
(`api.tasks.shapes.TaskRecord`) as they are, declaring `Task` as their GraphQL type; graphql-core
reads each field from the record by attribute. A test holds `Task` and `TaskRead` together.
"""

from datetime import datetime

import strawberry

from api.tasks import shapes
from api.tasks.service import TaskPage
from graphql_schema.context import Context


@strawberry.type
class Task:
    id: strawberry.ID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(
        description="1 on creation, +1 on every change; pass it as `expectedVersion` to refuse "
        "a write if someone changed the task since you read it."
    )


TaskOrderField = strawberry.enum(shapes.TaskOrderField, description="What a list is sorted by.")
OrderDirection = strawberry.enum(shapes.OrderDirection)


@strawberry.type
class TaskEdge:
    cursor: str
    node: shapes.TaskRecord = strawberry.field(graphql_type=Task)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A page of a user's tasks (Relay cursor connection).")
class TaskConnection:
    edges: list[TaskEdge]
    page_info: PageInfo
    owner: strawberry.Private[str]
    task_filter: strawberry.Private[shapes.TaskFilter]

    @strawberry.field(graphql_type=list[Task])
    def nodes(self) -> list[shapes.TaskRecord]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="How many tasks match the filter (counted only when asked).")
    async def total_count(self, info: strawberry.Info[Context, None]) -> int:
        context = info.context
        return await context.run(context.tasks.count_tasks, self.owner, self.task_filter)

    @classmethod
    def from_page(
        cls, page: TaskPage, owner: str, task_filter: shapes.TaskFilter
    ) -> "TaskConnection":
        edges = [
            TaskEdge(cursor=cursor, node=task)
            for cursor, task in zip(page.cursors, page.tasks, strict=True)
        ]
        page_info = PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.end_cursor,
        )
        return cls(edges=edges, page_info=page_info, owner=owner, task_filter=task_filter)
