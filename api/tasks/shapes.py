"""The task, in the shapes each layer needs; every input rule of the contract lives here."""

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol
from uuid import UUID

from pydantic import (
    AfterValidator,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from sqlmodel import Field, SQLModel

TITLE_MAX = 500
DESCRIPTION_MAX = 10_000
USER_ID_MAX = 255
IDEMPOTENCY_KEY_MAX = 255


# Search and title order compare text by one rule, the same on every database and whatever its
# locale: Unicode NFC, then full case folding (str.casefold), then NFC again (folding can leave a
# string unnormalized). NFC (not NFKC) keeps compatibility characters apart (`²` is not `2`, `ﬁ` is
# not `fi`), while composed and decomposed forms of one letter (`é`, `e` + U+0301) are equal.
FOLD_NORMALIZATION = "NFC"


def fold(text: str) -> str:
    """The key that search and title order compare: NFC, case folded, NFC again."""
    normalized = unicodedata.normalize(FOLD_NORMALIZATION, text)
    return unicodedata.normalize(FOLD_NORMALIZATION, normalized.casefold())


def folded_columns(values: dict[str, Any]) -> dict[str, Any]:
    """The folded search and order columns for the `title`/`description` among `values`."""
    folded: dict[str, Any] = {}
    if "title" in values:
        folded["title_folded"] = fold(values["title"])
    if "description" in values:
        description = values["description"]
        folded["description_folded"] = None if description is None else fold(description)
    return folded


def _reject_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps both databases alike.
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


# Unicode White_Space, which title stripping removes: spelled out (not `\s`) so that the OpenAPI
# patterns below mean the same to every regex engine that reads them.
WHITESPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What the title rules accept, as one pattern for the OpenAPI document: surrounding whitespace,
# then 1-500 characters that start and end with something else; no NUL anywhere.
TITLE_PATTERN = (
    rf"^[{WHITESPACE}]*[^{WHITESPACE}\x00]"
    rf"(?:[^\x00]{{0,{TITLE_MAX - 2}}}[^{WHITESPACE}\x00])?[{WHITESPACE}]*$"
)
NO_NUL_PATTERN = r"^[^\x00]*$"
# 1-255 printable ASCII characters, not starting or ending with a space (HTTP trims those).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"

Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    AfterValidator(_reject_nul),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TITLE_PATTERN,
            "description": f"1-{TITLE_MAX} characters once surrounding whitespace is stripped "
            "(it is); no NUL",
        }
    ),
]
Description = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX),
    AfterValidator(_reject_nul),
    WithJsonSchema({"type": "string", "maxLength": DESCRIPTION_MAX, "pattern": NO_NUL_PATTERN}),
]
UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=USER_ID_MAX), AfterValidator(_reject_nul)
]
IdempotencyKeyValue = Annotated[
    str,
    StringConstraints(max_length=IDEMPOTENCY_KEY_MAX, pattern=IDEMPOTENCY_KEY_PATTERN),
]
# Both faces print timestamps the same way: ISO 8601 with an explicit +00:00 offset.
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


class TaskRecord(Protocol):
    """A stored task as the service returns it: a `Task`, or a row read with the table's columns.

    Reads return plain rows (cheaper than ORM objects); both answer the same attribute names.
    """

    @property
    def id(self) -> UUID: ...
    @property
    def user_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def completed(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...


class TaskCreate(SQLModel):
    """A new task as a caller sends it; unknown fields (id, completed, ...) are ignored."""

    title: Title
    description: Description | None = None


def _not_null(schema: dict[str, Any]) -> None:
    """Document an optional field that may be left out but not sent as null."""
    options = schema.pop("anyOf", [])
    for option in options:
        if option != {"type": "null"}:
            schema.update(option)
    schema.pop("default", None)


class TaskUpdate(SQLModel):
    """A partial change: a field that is present is applied, an absent one is kept."""

    # null is invalid for title and completed (see below), so their schemas do not offer it.
    title: Title | None = Field(default=None, schema_extra={"json_schema_extra": _not_null})
    description: Description | None = None
    completed: StrictBool | None = Field(
        default=None, schema_extra={"json_schema_extra": _not_null}
    )

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


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task as the service has just stored it (a TaskRecord): its values were checked on the
    way in, so it is not validated again (a TaskRead built for it cost a create ~15 µs)."""

    id: UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
    version: int


STORED_TASK_FIELDS = tuple(StoredTask.__dataclass_fields__)


class TaskRead(SQLModel):
    """A task as the REST facade returns it."""

    id: UUID
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: Timestamp
    updated_at: Timestamp
    version: int


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
    # Case is ignored by `fold` (in every alphabet), never by the database.
    search: Search = None

    def folded(self) -> "TaskFilter":
        """This filter with its search folded as the stored search columns are."""
        if not self.search:
            return self
        return self.model_copy(update={"search": fold(self.search)})


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


# The title order's key: the folded title, then the title as written (then the id).
TitleKey = tuple[str, str]


@dataclass(frozen=True)
class Boundary:
    """Where a page starts or ends: the boundary task's sort key and id."""

    key: datetime | TitleKey
    task_id: UUID


class TaskEventKind(StrEnum):
    """What a change did to a task."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class TaskEvent:
    """One committed change of one of a user's tasks, as live updates deliver it.

    `id` is opaque to callers and increases with every change of that user's tasks; a caller
    resumes after the last one it saw. `task` is the task after the change (before it, for a
    deletion); `at` is when the change was written.
    """

    id: str
    kind: TaskEventKind
    task: TaskRecord
    at: datetime
