"""Mutation resolvers: translate arguments, call the service, convert the result."""

import strawberry

from api import service
from graphql_schema.context import Context
from graphql_schema.inputs import CreateTaskInput, UpdateTaskInput
from graphql_schema.types import Task

Info = strawberry.Info[Context, None]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a task for the user.")
    async def create_task(self, info: Info, user_id: str, input: CreateTaskInput) -> Task:
        task = await service.create_task(info.context.session, user_id, input.to_model())
        return Task.from_model(task)

    @strawberry.mutation(description="Change the fields given; absent fields are kept.")
    async def update_task(
        self, info: Info, user_id: str, id: strawberry.ID, input: UpdateTaskInput
    ) -> Task:
        task = await service.update_task(info.context.session, user_id, id, input.to_model())
        return Task.from_model(task)

    @strawberry.mutation(description="Mark the task completed (or not); idempotent.")
    async def complete_task(
        self, info: Info, user_id: str, id: strawberry.ID, completed: bool = True
    ) -> Task:
        task = await service.set_completed(info.context.session, user_id, id, completed)
        return Task.from_model(task)

    @strawberry.mutation(description="Delete the task; returns it as it was.")
    async def delete_task(self, info: Info, user_id: str, id: strawberry.ID) -> Task:
        return Task.from_model(await service.delete_task(info.context.session, user_id, id))
