"""The REST facade's path, header and query parameters, documented for OpenAPI."""

from typing import Annotated, Literal

from fastapi import Header, Path
from pydantic import BaseModel, Field

from api.tasks.shapes import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    LIST_LIMIT_MAX,
    USER_ID_MAX,
    OrderDirection,
    TaskFilter,
    TaskListQuery,
    TaskOrder,
    TaskOrderField,
)

# As a path segment a user id cannot contain "/" nor be "." or ".." (URLs resolve those away); the
# service allows any 1-255 characters without NUL, which GraphQL can use.
UserIdPath = Annotated[
    str,
    Path(
        description="The owner: 1-255 characters, no NUL; not `/`, `.` or `..` in a URL",
        json_schema_extra={
            "minLength": 1,
            "maxLength": USER_ID_MAX,
            "pattern": r"^(?:[^\x00/.][^\x00/]*|\.[^\x00/.][^\x00/]*|\.\.[^\x00/]+)$",
        },
    ),
]
# Documented as a UUID; anything else names no task and is answered 404 like a missing one.
TaskIdPath = Annotated[
    str,
    Path(
        description="The task's id; an id that is not a UUID is not found",
        json_schema_extra={"format": "uuid"},
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="Change the task only if it is still at this ETag (or `*`: if it exists); "
        "otherwise 412 and nothing changes. Without it, the last write wins.",
    ),
]


class TaskListParams(BaseModel):
    """The list's query string; with none of it, every task, oldest first (as always)."""

    completed: Literal["true", "false"] | None = Field(
        default=None, description="Only completed (`true`) or open (`false`) tasks"
    )
    search: str | None = Field(
        default=None,
        description="Case-insensitive substring of the title or description; "
        "`%`, `_` and `\\` match themselves",
    )
    sort: Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"] = (
        Field(default="created_at", description="Order; a leading `-` is descending")
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        le=LIST_LIMIT_MAX,
        description='Page size; when more tasks follow, a `Link: <...>; rel="next"` header '
        "gives the next page's URL",
    )
    cursor: str | None = Field(default=None, description="From a previous page's `Link` header")

    def to_query(self) -> TaskListQuery:
        return TaskListQuery(
            filter=TaskFilter(
                completed=None if self.completed is None else self.completed == "true",
                search=self.search,
            ),
            order=TaskOrder(
                field=TaskOrderField(self.sort.removeprefix("-")),
                direction=OrderDirection.DESC if self.sort.startswith("-") else OrderDirection.ASC,
            ),
            first=self.limit,
            after=self.cursor,
        )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A client-made unique key (1-255 printable ASCII characters, e.g. a "
        "UUID). Repeating a create with the same key within 24 hours answers with the task "
        "the first request created, as it was created, instead of creating another; the same "
        "key with a different body is a 400.",
        json_schema_extra={
            "maxLength": IDEMPOTENCY_KEY_MAX,
            "pattern": IDEMPOTENCY_KEY_PATTERN,
        },
    ),
]
