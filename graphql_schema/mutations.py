"""Mutation resolvers: translate arguments, call the service, convert the result."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Concatenate, ParamSpec

import strawberry

from api.storage.store import StoreSession
from api.tasks.shapes import TaskRecord
from graphql_schema.context import Context
from graphql_schema.inputs import CreateTaskInput, UpdateTaskInput
from graphql_schema.permissions import IsOwner
from graphql_schema.types import Task

Info = strawberry.Info[Context, None]

P = ParamSpec("P")


async def _one(
    info: Info,
    call: Callable[Concatenate[StoreSession, P], Awaitable[TaskRecord]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> TaskRecord:
    """The task a service call returns, run with the request's session."""
    return await info.context.run(call, *args, **kwargs)


ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="Apply the change only if the task is still at this version; otherwise "
        "fail with CONFLICT and change nothing. Without it, the last write wins."
    ),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Create a task for the user.", permission_classes=[IsOwner], graphql_type=Task
    )
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
    ) -> TaskRecord:
        tasks = info.context.tasks
        return await _one(info, tasks.create_task, user_id, input.to_model(), idempotency_key)

    @strawberry.mutation(
        description="Change the fields given; absent fields are kept.",
        permission_classes=[IsOwner],
        graphql_type=Task,
    )
    async def update_task(
        self,
        info: Info,
        user_id: str,
        id: strawberry.ID,
        input: UpdateTaskInput,
        expected_version: ExpectedVersion = None,
    ) -> TaskRecord:
        tasks = info.context.tasks
        return await _one(info, tasks.update_task, user_id, id, input.to_model(), expected_version)

    @strawberry.mutation(
        description="Mark the task completed (or not); idempotent.",
        permission_classes=[IsOwner],
        graphql_type=Task,
    )
    async def complete_task(
        self,
        info: Info,
        user_id: str,
        id: strawberry.ID,
        completed: bool = True,
        expected_version: ExpectedVersion = None,
    ) -> TaskRecord:
        tasks = info.context.tasks
        return await _one(info, tasks.set_completed, user_id, id, completed, expected_version)

    @strawberry.mutation(
        description="Delete the task; returns it as it was.",
        permission_classes=[IsOwner],
        graphql_type=Task,
    )
    async def delete_task(
        self,
        info: Info,
        user_id: str,
        id: strawberry.ID,
        expected_version: ExpectedVersion = None,
    ) -> TaskRecord:
        return await _one(info, info.context.tasks.delete_task, user_id, id, expected_version)
