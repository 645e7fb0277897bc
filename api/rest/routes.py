"""The REST facade at /api/{user_id}/tasks: call the service, set status and headers."""

from typing import Annotated, Any
from urllib.parse import quote

import orjson
import pydantic
from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from starlette.requests import ClientDisconnect

from api.rest import etags
from api.rest.encoding import task_response, tasks_response
from api.rest.errors import is_json
from api.rest.params import IdempotencyKey, IfMatch, TaskIdPath, TaskListParams, UserIdPath
from api.rest.routing import SessionDep, TaskRoute, TasksDep, direct
from api.storage.store import StoreSession
from api.tasks import errors
from api.tasks.service import TaskService
from api.tasks.shapes import (
    TaskCompletion,
    TaskCreate,
    TaskListQuery,
    TaskRead,
    TaskRecord,
    TaskUpdate,
)
from api.web.problems import Problem

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

# Every route answers only the user in its path (api.rest.routing.OwnerRoute), before it reads
# the body.
router = APIRouter(
    prefix="/api/{user_id}/tasks",
    tags=["tasks"],
    responses=ERROR_RESPONSES,
    route_class=TaskRoute,
)


# Routes answer with the service's records encoded once (api.rest.encoding); the response models
# describe them in the OpenAPI document.


def _one(task: TaskRecord, status_code: int = 200, **headers: str) -> Response:
    return task_response(task, status_code, {"ETag": etags.etag(task), **headers})


async def _list_directly(request: Request, db: StoreSession, tasks: TaskService) -> Response | None:
    """The list without a query string: every task, oldest first."""
    if request.scope["query_string"]:
        return None
    return await _list(db, tasks, request.path_params["user_id"], None, request)


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
@direct(_list_directly)
async def list_tasks(
    db: SessionDep,
    tasks: TasksDep,
    user_id: UserIdPath,
    params: Annotated[TaskListParams, Query()],
    request: Request,
) -> Response:
    return await _list(db, tasks, user_id, params.to_query(), request)


async def _list(
    db: StoreSession,
    tasks: TaskService,
    user_id: str,
    query: TaskListQuery | None,
    request: Request,
) -> Response:
    try:
        page = await tasks.list_tasks(db, user_id, query)
    except errors.ValidationError as exc:
        # The service names the list's cursor by its query's field; here it is `cursor`.
        raise exc.renamed(lambda field: "cursor" if field == "after" else field) from None
    headers = {}
    if page.has_next_page and page.end_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.end_cursor)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return tasks_response(page.tasks, headers)


async def _create_directly(
    request: Request, db: StoreSession, tasks: TaskService
) -> Response | None:
    """A create whose body is a JSON object that is a valid task, without an Idempotency-Key;
    anything else is read and refused (or replayed) by the route's own handler."""
    headers = request.headers
    if "idempotency-key" in headers or not is_json(headers.get("content-type", "")):
        return None
    try:
        data = TaskCreate.model_validate(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, pydantic.ValidationError, ClientDisconnect):
        # A client gone before its body was read too: the route's handler answers it as always.
        return None
    return await _create(db, tasks, request.path_params["user_id"], data, None)


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
@direct(_create_directly)
async def create_task(
    db: SessionDep,
    tasks: TasksDep,
    user_id: UserIdPath,
    data: TaskCreate,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _create(db, tasks, user_id, data, idempotency_key)


async def _create(
    db: StoreSession,
    tasks: TaskService,
    user_id: str,
    data: TaskCreate,
    idempotency_key: str | None,
) -> Response:
    task = await tasks.create_task(db, user_id, data, idempotency_key)
    location = f"/api/{quote(user_id, safe='')}/tasks/{task.id}"
    return _one(task, status.HTTP_201_CREATED, Location=location)


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
    db: SessionDep,
    tasks: TasksDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    if_none_match: Annotated[
        str | None,
        Header(
            alias="If-None-Match",
            description="Answer 304 with no body if the task still has one of these ETags",
        ),
    ] = None,
) -> Response:
    task = await tasks.get_task(db, user_id, task_id)
    if etags.none_match(if_none_match, task):
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etags.etag(task)}
        )
    return _one(task)


@router.put(
    "/{task_id}",
    response_model=TaskRead,
    summary="Update a task (partial: absent fields are kept)",
    responses={**ONE_TASK, **NOT_FOUND, **PRECONDITION_FAILED},
)
async def update_task(
    db: SessionDep,
    tasks: TasksDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    changes: TaskUpdate,
    if_match: IfMatch = None,
) -> Response:
    expected = etags.expected_versions(if_match, task_id)
    task = await tasks.update_task(db, user_id, task_id, changes, expected)
    return _one(task)


@router.patch(
    "/{task_id}/complete",
    response_model=TaskRead,
    summary='Mark a task completed (idempotent); body {"completed": false} reopens it',
    responses={**ONE_TASK, **NOT_FOUND, **PRECONDITION_FAILED},
)
async def complete_task(
    db: SessionDep,
    tasks: TasksDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    body: Annotated[TaskCompletion | None, Body()] = None,
    if_match: IfMatch = None,
) -> Response:
    completed = body.completed if body is not None else True
    expected = etags.expected_versions(if_match, task_id)
    task = await tasks.set_completed(db, user_id, task_id, completed, expected)
    return _one(task)


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a task",
    responses={**NOT_FOUND, **PRECONDITION_FAILED},
    response_class=Response,
)
async def delete_task(
    db: SessionDep,
    tasks: TasksDep,
    user_id: UserIdPath,
    task_id: TaskIdPath,
    if_match: IfMatch = None,
) -> Response:
    expected = etags.expected_versions(if_match, task_id)
    await tasks.delete_task(db, user_id, task_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
