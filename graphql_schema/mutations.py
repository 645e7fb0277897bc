"""Mutation resolvers: translate arguments, call the service, convert the result."""

import strawberry

from api import service
from graphql_schema.context import Context
from graphql_schema.inputs import CreateTaskInput, UpdateTaskInput
from graphql_schema.permissions import IsOwner
from graphql_schema.types import Task

Info = strawberry.Info[Context, None]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a task for the user.", permission_classes=[IsOwner])
    async def create_task(self, info: Info, user_id: str, input: CreateTaskInput) -> Task:
        async with info.context.session() as session:
            return Task.from_model(await service.create_task(session, user_id, input.to_model()))

    @strawberry.mutation(
        description="Change the fields given; absent fields are kept.", permission_classes=[IsOwner]
    )
    async def update_task(
        self, info: Info, user_id: str, id: strawberry.ID, input: UpdateTaskInput
    ) -> Task:
        async with info.context.session() as session:
            task = await service.update_task(session, user_id, id, input.to_model())
        return Task.from_model(task)

    @strawberry.mutation(
        description="Mark the task completed (or not); idempotent.", permission_classes=[IsOwner]
    )
    async def complete_task(
        self, info: Info, user_id: str, id: strawberry.ID, completed: bool = True
    ) -> Task:
        async with info.context.session() as session:
            task = await service.set_completed(session, user_id, id, completed)
        return Task.from_model(task)

    @strawberry.mutation(
        description="Delete the task; returns it as it was.", permission_classes=[IsOwner]
    )
    async def delete_task(self, info: Info, user_id: str, id: strawberry.ID) -> Task:
        async with info.context.session() as session:
            return Task.from_model(await service.delete_task(session, user_id, id))
