"""The task, in the shapes each layer needs; every input rule of the contract lives here."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import Column, Index, String, Text
from sqlmodel import Field, SQLModel

from api.db import UTCDateTime, utcnow

TITLE_MAX = 500
DESCRIPTION_MAX = 10_000
USER_ID_MAX = 255


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps both databases alike.
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    AfterValidator(_reject_nul),
]
Description = Annotated[
    str, StringConstraints(max_length=DESCRIPTION_MAX), AfterValidator(_reject_nul)
]
UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=USER_ID_MAX), AfterValidator(_reject_nul)
]
# Both faces print timestamps the same way: ISO 8601 with an explicit +00:00 offset.
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


class Task(SQLModel, table=True):
    """A stored task (table `tasks`); written only by the service."""

    __tablename__ = "tasks"
    # One index per list order (see the migrations), each serving one user's pages.
    __table_args__ = (
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_updated_at_id", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_id_title_id", "user_id", "title", "id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: str = Field(sa_column=Column(String(USER_ID_MAX), nullable=False))
    title: str = Field(sa_column=Column(String(TITLE_MAX), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed: bool = Field(default=False, nullable=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class TaskCreate(SQLModel):
    """A new task as a caller sends it; unknown fields (id, completed, ...) are ignored."""

    title: Title
    description: Description | None = None


class TaskUpdate(SQLModel):
    """A partial change: a field that is present is applied, an absent one is kept."""

    title: Title | None = None
    description: Description | None = None
    completed: StrictBool | None = None

    @field_validator("title", "completed")
    @classmethod
    def _present_means_not_null(cls, value: Any) -> Any:
        # Runs only for fields the caller sent: an explicit null title or completed is invalid,
        # while `description: null` is allowed and clears it.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the caller actually sent."""
        return self.model_dump(exclude_unset=True)


class TaskCompletion(SQLModel):
    """The optional body of `PATCH .../complete`."""

    completed: StrictBool = True


class TaskRead(SQLModel):
    """A task as the REST facade returns it."""

    id: UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: Timestamp
    updated_at: Timestamp


class TaskOrderField(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"


class OrderDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


SEARCH_MAX = 500
LIST_LIMIT_MAX = 1000
CONNECTION_PAGE_MAX = 100
CONNECTION_PAGE_DEFAULT = 50


def _empty_is_none(value: str | None) -> str | None:
    # An empty search string is the same as no search.
    return _reject_nul(value) if value else None


Search = Annotated[
    str | None, StringConstraints(max_length=SEARCH_MAX), AfterValidator(_empty_is_none)
]


class TaskFilter(SQLModel):
    """Which of the user's tasks a list holds; absent fields do not filter."""

    completed: StrictBool | None = None
    # A case-insensitive substring of the title or description; `%`, `_` and `\` match themselves.
    search: Search = None


class TaskOrder(SQLModel):
    """A total order: ties on `field` are broken by id, in the same direction."""

    field: TaskOrderField = TaskOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.ASC

    @property
    def token(self) -> str:
        return f"{self.field.value}:{self.direction.value}"


class TaskListQuery(SQLModel):
    """One page (or all) of a user's tasks: filter, order and a keyset window.

    `first`/`after` read forward from a cursor, `last`/`before` read backward to one; with neither
    size given, every matching task is returned.
    """

    filter: TaskFilter = TaskFilter()
    order: TaskOrder = TaskOrder()
    first: Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX)] | None = None
    after: str | None = None
    last: Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX)] | None = None
    before: str | None = None

    @model_validator(mode="after")
    def _one_direction(self) -> "TaskListQuery":
        if self.first is not None and self.last is not None:
            raise ValueError("give first or last, not both")
        return self


class ConnectionWindow(SQLModel):
    """Relay's page arguments: `first`/`last` are 1-100, 50 when neither is given."""

    first: Annotated[int, Field(ge=1, le=CONNECTION_PAGE_MAX)] | None = None
    after: str | None = None
    last: Annotated[int, Field(ge=1, le=CONNECTION_PAGE_MAX)] | None = None
    before: str | None = None

    def to_query(self, filter: TaskFilter, order: TaskOrder) -> TaskListQuery:
        first = self.first
        if first is None and self.last is None:
            first = CONNECTION_PAGE_DEFAULT
        return TaskListQuery(
            filter=filter,
            order=order,
            first=first,
            after=self.after,
            last=self.last,
            before=self.before,
        )
