"""The REST facade at /api/{user_id}/tasks: call the service, set status and headers."""

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request, Response, status
from pydantic import BaseModel, Field

from api import service
from api.auth import OwnerRoute
from api.db import SessionDep
from api.error_handlers import Problem
from api.models import (
    LIST_LIMIT_MAX,
    OrderDirection,
    Task,
    TaskCompletion,
    TaskCreate,
    TaskFilter,
    TaskListQuery,
    TaskOrder,
    TaskOrderField,
    TaskRead,
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

# Every route answers only the user in its path (api.auth.OwnerRoute), before reading its body.
router = APIRouter(
    prefix="/api/{user_id}/tasks",
    tags=["tasks"],
    responses=ERROR_RESPONSES,
    route_class=OwnerRoute,
)


def _read(task: Task) -> TaskRead:
    return TaskRead.model_validate(task, from_attributes=True)


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
    user_id: str,
    params: Annotated[TaskListParams, Query()],
    request: Request,
    response: Response,
) -> list[TaskRead]:
    page = await service.list_tasks(session, user_id, params.to_query())
    if page.has_next_page and page.end_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.end_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [_read(task) for task in page.tasks]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a task",
    responses={
        201: {
            "description": "The created task",
            "headers": {
                "Location": {"description": "The task's URL", "schema": {"type": "string"}}
            },
        }
    },
)
async def create_task(
    session: SessionDep, user_id: str, data: TaskCreate, response: Response
) -> TaskRead:
    task = await service.create_task(session, user_id, data)
    response.headers["Location"] = f"/api/{quote(user_id, safe='')}/tasks/{task.id}"
    return _read(task)


@router.get("/{task_id}", summary="Get one task", responses=NOT_FOUND)
async def get_task(session: SessionDep, user_id: str, task_id: str) -> TaskRead:
    return _read(await service.get_task(session, user_id, task_id))


@router.put(
    "/{task_id}",
    summary="Update a task (partial: absent fields are kept)",
    responses=NOT_FOUND,
)
async def update_task(
    session: SessionDep, user_id: str, task_id: str, changes: TaskUpdate
) -> TaskRead:
    return _read(await service.update_task(session, user_id, task_id, changes))


@router.patch(
    "/{task_id}/complete",
    summary='Mark a task completed (idempotent); body {"completed": false} reopens it',
    responses=NOT_FOUND,
)
async def complete_task(
    session: SessionDep,
    user_id: str,
    task_id: str,
    body: Annotated[TaskCompletion | None, Body()] = None,
) -> TaskRead:
    completed = body.completed if body is not None else True
    return _read(await service.set_completed(session, user_id, task_id, completed))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    responses=NOT_FOUND,
    response_class=Response,
)
async def delete_task(session: SessionDep, user_id: str, task_id: str) -> Response:
    await service.delete_task(session, user_id, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
