"""GraphQL inputs; each becomes the service's validated model, so one set of rules serves both."""

from typing import Any, TypeVar

import pydantic
import strawberry
from sqlmodel import SQLModel
from strawberry import UNSET

from api.tasks import errors, shapes
from graphql_schema.types import OrderDirection, TaskOrderField

M = TypeVar("M", bound=SQLModel)


def _validated(model: type[M], fields: dict[str, Any], argument: str | None = None) -> M:
    """Validate the fields the caller sent; UNSET marks one left out, unlike an explicit null.

    Errors name each field under the `argument` that holds it (`input.title`), as the caller
    wrote it; graphql_schema.errors spells the names as the schema does.
    """
    sent = {name: value for name, value in fields.items() if value is not strawberry.UNSET}
    try:
        # pydantic's own validator of the model. SQLModel's model_validate runs it too, then
        # copies the instance's fields again for the sake of table models; these models are
        # plain (the service's shapes), and the copying was about a third of the validation's cost.
        validated: M = model.__pydantic_validator__.validate_python(sent)
        return validated
    except pydantic.ValidationError as exc:
        prefix = (argument,) if argument else ()
        located = [{**error, "loc": (*prefix, *error.get("loc", ()))} for error in exc.errors()]
        raise errors.ValidationError.from_pydantic(located) from None


@strawberry.input
class CreateTaskInput:
    title: str
    description: str | None = strawberry.UNSET

    def to_model(self) -> shapes.TaskCreate:
        sent = {"title": self.title, "description": self.description}
        return _validated(shapes.TaskCreate, sent, "input")


@strawberry.input
class UpdateTaskInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    completed: bool | None = strawberry.UNSET

    def to_model(self) -> shapes.TaskUpdate:
        sent = {"title": self.title, "description": self.description, "completed": self.completed}
        return _validated(shapes.TaskUpdate, sent, "input")


@strawberry.input(description="Which tasks a list holds; absent fields do not filter.")
class TaskFilter:
    completed: bool | None = strawberry.UNSET
    search: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Case-insensitive substring of title or description; empty means none.",
    )

    def to_model(self) -> shapes.TaskFilter:
        sent = {"completed": self.completed, "search": self.search}
        return _validated(shapes.TaskFilter, sent, "filter")


@strawberry.input(description="A list's order; ties are broken by id.")
class TaskOrder:
    field: TaskOrderField = TaskOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.ASC

    def to_model(self) -> shapes.TaskOrder:
        return shapes.TaskOrder(field=self.field, direction=self.direction)


# The query of a list without arguments, built once: the service never changes a query it is
# given (it copies one to fold its search).
_WHOLE_LIST = shapes.TaskListQuery()


def list_query(
    filter: TaskFilter | None, order_by: TaskOrder | None, limit: int | None
) -> shapes.TaskListQuery:
    """The `tasks` field's arguments as the service's query (`limit` is its page size)."""
    if not filter and not order_by and (limit is UNSET or limit is None):
        return _WHOLE_LIST
    task_filter = filter.to_model() if filter else shapes.TaskFilter()
    order = order_by.to_model() if order_by else shapes.TaskOrder()
    try:
        return shapes.TaskListQuery(
            filter=task_filter, order=order, first=None if limit is UNSET else limit
        )
    except pydantic.ValidationError as exc:
        located = [{**error, "loc": ("limit",)} for error in exc.errors()]
        raise errors.ValidationError.from_pydantic(located) from None


def connection_query(
    filter: TaskFilter | None,
    order_by: TaskOrder | None,
    window: dict[str, Any],
) -> shapes.TaskListQuery:
    """The `tasksConnection` field's arguments as the service's query."""
    task_filter = filter.to_model() if filter else shapes.TaskFilter()
    order = order_by.to_model() if order_by else shapes.TaskOrder()
    try:
        return _validated(shapes.ConnectionWindow, window).to_query(task_filter, order)
    except pydantic.ValidationError as exc:
        # The one rule across arguments (first or last, not both) names the second of them.
        located = [{**error, "loc": error.get("loc") or ("last",)} for error in exc.errors()]
        raise errors.ValidationError.from_pydantic(located) from None
