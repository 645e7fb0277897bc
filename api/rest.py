"""The REST facade at /api/{user_id}/tasks: call the service, set status and headers."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Response, status

from api import service
from api.auth import OwnerRoute
from api.db import SessionDep
from api.error_handlers import Problem
from api.models import Task, TaskCompletion, TaskCreate, TaskRead, TaskUpdate

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


@router.get("", summary="List the user's tasks, oldest first")
async def list_tasks(session: SessionDep, user_id: str) -> list[TaskRead]:
    return [_read(task) for task in await service.list_tasks(session, user_id)]


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
