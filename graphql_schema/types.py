"""The GraphQL `Task` type."""

from datetime import datetime

import strawberry

from api import models


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

    @classmethod
    def from_model(cls, task: models.Task) -> "Task":
        return cls(
            id=strawberry.ID(str(task.id)),
            user_id=task.user_id,
            title=task.title,
            description=task.description,
            completed=task.completed,
            created_at=task.created_at,
            updated_at=task.updated_at,
            version=task.version,
        )
