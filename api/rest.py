"""The REST facade at /api/{user_id}/tasks: call the service, set status and headers."""

from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from api import etags, service
from api.auth import OwnerRoute
from api.db import SessionDep, SessionRoute
from api.error_handlers import Problem
from api.models import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    LIST_LIMIT_MAX,
    USER_ID_MAX,
    OrderDirection,
    TaskCompletion,
    TaskCreate,
    TaskFilter,
    TaskListQuery,
    TaskOrder,
    TaskOrderField,
    TaskRead,
    TaskRecord,
    TaskUpdate,
)

# Documented on every route; api.main's OpenAPI hook files them under application/problem+json.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Invalid input (ValidationError)"},
    500: {"model": Problem, "description": "Unexpected error (InternalError)"},
    503: {
        "model": Problem,
        "description": "The database cannot be reached (DatabaseError)",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such task for this user (NotFoundError)"}
}
ETAG_HEADER = {
    "ETag": {
        "description": 'The task\'s strong entity tag, `"<id>.<version>"`; changes on every write',
        "schema": {"type": "string"},
    }
}
PRECONDITION_FAILED: dict[int | str, dict[str, Any]] = {
    412: {
        "model": Problem,
        "description": "If-Match names a version the task is no longer at; nothing was changed "
        "(PreconditionFailedError)",
    }
}
ONE_TASK: dict[int | str, dict[str, Any]] = {
    200: {"description": "The task", "headers": ETAG_HEADER}
}

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


class TaskRoute(OwnerRoute, SessionRoute):
    """Only the user in the path may call it (checked first), and it has the request's session."""


# Every route answers only the user in its path (api.auth.OwnerRoute), before reading its body.
router = APIRouter(
    prefix="/api/{user_id}/tasks",
    tags=["tasks"],
    responses=ERROR_RESPONSES,
    route_class=TaskRoute,
)


# Routes return the service's records as they are; FastAPI reads them into their response model
# (TaskRead) by attribute, in pydantic's compiled validator, and serializes that.


def _one(task: TaskRecord, response: Response) -> TaskRecord:
    response.headers["ETag"] = etags.etag(task)
    return task


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


@router.get(
    "",
    response_model=list[TaskRead],
    summary="List the user's tasks (default: all, oldest first)",
    responses={
        200: {
            "description": "The tasks, in the order asked for",
            "headers": {
                "Link": {
                    "description": 'RFC 8288 `<url>; rel="next"` when `limit` was given and '
                    "more tasks follow; the URL keeps every parameter and adds the cursor",
                    "schema": {"type": "string"},
                }
            },
        }
    },
)
async def list_tasks(
    session: SessionDep,
    user_id: UserIdPath,
    params: Annotated[TaskListParams, Query()],
    request: Request,
    response: Response,
) -> Sequence[TaskRecord]:
    page = await service.list_tasks(session, user_id, params.to_query())
    if page.has_next_page and page.end_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.end_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return page.tasks


@router.post(
    "",
    response_model=TaskRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a task",
    responses={
        201: {
            "description": "The created task (also when replayed for a repeated Idempotency-Key)",
            "headers": {
                "Location": {"description": "The task's URL", "schema": {"type": "string"}},
                **ETAG_HEADER,
            },
        },
    },
)
async def create_task(
    session: SessionDep,
    user_id: UserIdPath,
    data: TaskCreate,
    response: Response,
    idempotency_key: Annotated[
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
    ] = None,
) -> TaskRecord:
    task = await service.create_task(session, user_id, data, idempotency_key)
    response.headers["Location"] = f"/api/{quote(user_id, safe='')}/tasks/{task.id}"
    return _one(task, response)


@router.get(
    "/{task_id}",
    summary="Get one task",
    response_model=TaskRead,
    responses={
        **ONE_TASK,
        304: {
            "description": "Not modified: the task's ETag is one given in If-None-Match",
            "headers": ETAG_HEADER,
        },
        **NOT_FOUND,
    },
)
async def get_task(
    session: SessionDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    response: Response,
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="Answer 304 with no body if the task still has one of these ETags",
        ),
    ] = None,
) -> Any:
    task = await service.get_task(session, user_id, task_id)
    if etags.none_match(if_none_match, task):
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etags.etag(task)}
        )
    return _one(task, response)


@router.put(
    "/{task_id}",
    response_model=TaskRead,
    summary="Update a task (partial: absent fields are kept)",
    responses={**ONE_TASK, **NOT_FOUND, **PRECONDITION_FAILED},
)
async def update_task(
    session: SessionDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    changes: TaskUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> TaskRecord:
    expected = etags.expected_versions(if_match, task_id)
    task = await service.update_task(session, user_id, task_id, changes, expected)
    return _one(task, response)


@router.patch(
    "/{task_id}/complete",
    response_model=TaskRead,
    summary='Mark a task completed (idempotent); body {"completed": false} reopens it',
    responses={**ONE_TASK, **NOT_FOUND, **PRECONDITION_FAILED},
)
async def complete_task(
    session: SessionDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    response: Response,
    body: Annotated[TaskCompletion | None, Body()] = None,
    if_match: IfMatch = None,
) -> TaskRecord:
    completed = body.completed if body is not None else True
    expected = etags.expected_versions(if_match, task_id)
    task = await service.set_completed(session, user_id, task_id, completed, expected)
    return _one(task, response)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    responses={**NOT_FOUND, **PRECONDITION_FAILED},
    response_class=Response,
)
async def delete_task(
    session: SessionDep, user_id: UserIdPath, task_id: TaskIdPath, if_match: IfMatch = None
) -> Response:
    expected = etags.expected_versions(if_match, task_id)
    await service.delete_task(session, user_id, task_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
