"""Errors as RFC 9457 problem details (`application/problem+json`), with the fields legacy REST
callers read (`detail`, `error_type`)."""

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.observe import context
from api.tasks import errors
from api.web.statuses import TITLE, error_headers, status_of

PROBLEM_JSON = "application/problem+json"


class FieldErrorBody(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error response: RFC 9457 problem details plus the fields legacy callers read."""

    title: str
    status: int
    detail: str
    error_type: str
    errors: list[FieldErrorBody] | None = None
    request_id: str | None = Field(
        default=None,
        description="The request's id (the X-Request-ID header): quote it when reporting a problem",
    )


def with_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the id of the request being answered, when it has one."""
    request_id = context.request_id()
    if request_id:
        body["request_id"] = request_id
    return body


def problem_body(status: int, detail: str, error_type: str) -> dict[str, Any]:
    return with_request_id(
        {"title": TITLE[status], "status": status, "detail": detail, "error_type": error_type}
    )


def problem_response(error: errors.TaskAPIError, retry_after: int) -> JSONResponse:
    status = status_of(error)
    body = problem_body(status, error.detail, error.error_type)
    if isinstance(error, errors.ValidationError):
        body["errors"] = error.errors
    return JSONResponse(
        body,
        status_code=status,
        headers=error_headers(error, retry_after),
        media_type=PROBLEM_JSON,
    )
