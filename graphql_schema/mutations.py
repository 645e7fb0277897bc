"""Mutation resolvers: translate arguments, call the service, convert the result."""

from typing import Annotated

import strawberry

from api import service
from graphql_schema.context import Context
from graphql_schema.inputs import CreateTaskInput, UpdateTaskInput
from graphql_schema.permissions import IsOwner
from graphql_schema.types import Task

Info = strawberry.Info[Context, None]

ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="Apply the change only if the task is still at this version; otherwise "
        "fail with CONFLICT and change nothing. Without it, the last write wins."
    ),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a task for the user.", permission_classes=[IsOwner])
    async def create_task(
        self,
        info: Info,
        user_id: str,
        input: CreateTaskInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="A client-made unique key (1-255 printable ASCII characters). The "
                "same key within 24 hours returns the task the first request created, as it "
                "was created, instead of creating another; with a different input it is "
                "BAD_USER_INPUT."
            ),
        ] = None,
    ) -> Task:
        async with info.context.session() as session:
            task = await service.create_task(session, user_id, input.to_model(), idempotency_key)
        return Task.from_model(task)

    @strawberry.mutation(
        description="Change the fields given; absent fields are kept.", permission_classes=[IsOwner]
    )
    async def update_task(
        self,
        info: Info,
        user_id: str,
        id: strawberry.ID,
        input: UpdateTaskInput,
        expected_version: ExpectedVersion = None,
    ) -> Task:
        async with info.context.session() as session:
            task = await service.update_task(
                session, user_id, id, input.to_model(), expected_version
            )
        return Task.from_model(task)

    @strawberry.mutation(
        description="Mark the task completed (or not); idempotent.", permission_classes=[IsOwner]
    )
    async def complete_task(
        self,
        info: Info,
        user_id: str,
        id: strawberry.ID,
        completed: bool = True,
        expected_version: ExpectedVersion = None,
    ) -> Task:
        async with info.context.session() as session:
            task = await service.set_completed(session, user_id, id, completed, expected_version)
        return Task.from_model(task)

    @strawberry.mutation(
        description="Delete the task; returns it as it was.", permission_classes=[IsOwner]
    )
    async def delete_task(
        self,
        info: Info,
        user_id: str,
        id: strawberry.ID,
        expected_version: ExpectedVersion = None,
    ) -> Task:
        async with info.context.session() as session:
            task = await service.delete_task(session, user_id, id, expected_version)
        return Task.from_model(task)
