"""GraphQL inputs; each becomes the service's validated model, so one set of rules serves both."""

from typing import Any, TypeVar

import pydantic
import strawberry
from sqlmodel import SQLModel

from api import errors, models

M = TypeVar("M", bound=SQLModel)


def _validated(model: type[M], fields: dict[str, Any]) -> M:
    """Validate the fields the caller sent; UNSET marks one left out, unlike an explicit null."""
    sent = {name: value for name, value in fields.items() if value is not strawberry.UNSET}
    try:
        return model.model_validate(sent)
    except pydantic.ValidationError as exc:
        raise errors.ValidationError.from_pydantic(exc.errors()) from None


@strawberry.input
class CreateTaskInput:
    title: str
    description: str | None = strawberry.UNSET

    def to_model(self) -> models.TaskCreate:
        return _validated(models.TaskCreate, {"title": self.title, "description": self.description})


@strawberry.input
class UpdateTaskInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    completed: bool | None = strawberry.UNSET

    def to_model(self) -> models.TaskUpdate:
        sent = {"title": self.title, "description": self.description, "completed": self.completed}
        return _validated(models.TaskUpdate, sent)
