"""The subscription: a user's task events, live, resumable after an event id.

Served by Strawberry over WebSocket (`graphql-transport-ws`) and over HTTP with the multipart
protocol (graphql_schema/http.py); the events come from the service (`api.tasks.events`), which
holds no database session while a subscription waits.
"""

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from api.tasks import shapes
from graphql_schema.context import Context
from graphql_schema.permissions import IsOwner
from graphql_schema.types import Task

Info = strawberry.Info[Context, None]

TaskEventKind = strawberry.enum(shapes.TaskEventKind, description="What a change did to a task.")


@strawberry.type(description="One committed change of one of the user's tasks.")
class TaskEvent:
    id: str = strawberry.field(
        description="Opaque; increases with every change of the user's tasks. Pass it as "
        "`after` to resume after this event."
    )
    kind: TaskEventKind
    task: shapes.TaskRecord = strawberry.field(
        graphql_type=Task,
        description="The task after the change (as it was before, for DELETED).",
    )
    at: datetime = strawberry.field(description="When the change was written.")


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every change of the user's tasks, by any client, as it commits. With "
        "`after` (an event id), first every change after that event (BAD_USER_INPUT when it is "
        "older than the events kept: reload the list), then the live ones; nothing is missed "
        "and nothing comes twice. The stream ends when the token expires, when the subscriber "
        "falls too far behind (SUBSCRIBER_TOO_SLOW) or when the server restarts "
        "(SERVICE_UNAVAILABLE): resume with the last id received.",
        permission_classes=[IsOwner],
    )
    async def task_events(
        self, info: Info, user_id: str, after: str | None = None
    ) -> AsyncGenerator[TaskEvent, None]:
        context = info.context
        async with context.event_stream(user_id, after) as subscription:
            async for event in subscription:
                yield TaskEvent(id=event.id, kind=event.kind, task=event.task, at=event.at)
