"""Every failure under /api becomes the contract's problem-details body (RFC 9457): the
service's errors, FastAPI's request validation and Starlette's HTTP errors."""

from http import HTTPStatus

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.tasks import errors
from api.web.problems import PROBLEM_JSON, problem_response, with_request_id

MALFORMED_JSON = errors.ValidationError(
    [{"field": "body", "message": "malformed JSON"}], "Malformed JSON body"
)
NOT_JSON = errors.ValidationError(
    [{"field": "body", "message": "Content-Type must be application/json"}],
    "The request body must be JSON, sent with Content-Type: application/json",
)


def is_json(content_type: str) -> bool:
    # FastAPI's own rule: application/json or any application/*+json, parameters aside.
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _has_body_of_another_type(request: Request, exc: RequestValidationError) -> bool:
    """True when a body failed validation because it was not sent as JSON at all."""
    if is_json(request.headers.get("content-type", "")):
        return False
    return any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()) and isinstance(
        exc.body, bytes
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's).

    Asks each route whether it would take the request with another method, so it works however
    routers are nested.
    """
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def _retry_after(request: Request) -> int:
    return int(request.app.state.settings.retry_after_seconds)


def _http_error_type(status_code: int) -> str:
    if status_code == 404:
        return "NotFoundError"
    if status_code == 405:
        return "MethodNotAllowedError"
    if status_code == 413:
        return "PayloadTooLargeError"
    if status_code < 500:
        return "ClientError"
    return "InternalError"


def add_exception_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error as the contract says."""

    async def on_task_api_error(request: Request, exc: Exception) -> Response:
        return problem_response(errors.classify(exc), _retry_after(request))

    async def on_request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's locations start with where the value came from ("body", "path", "query").
        error = errors.ValidationError.from_pydantic(exc.errors(), skip_locations=1)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            error = MALFORMED_JSON
        elif _has_body_of_another_type(request, exc):
            error = NOT_JSON
        return problem_response(error, _retry_after(request))

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not request.url.path.startswith("/api"):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        if exc.status_code == 400:
            # FastAPI's answer to a body it could not decode at all: invalid UTF-8, nesting too
            # deep or a number too long for Python's JSON parser.
            return problem_response(MALFORMED_JSON, _retry_after(request))
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        body = {
            "title": HTTPStatus(exc.status_code).phrase,
            "status": exc.status_code,
            "detail": "Task not found" if exc.status_code == 404 else str(exc.detail),
            "error_type": _http_error_type(exc.status_code),
        }
        with_request_id(body)
        return JSONResponse(
            body, status_code=exc.status_code, headers=headers, media_type=PROBLEM_JSON
        )

    app.add_exception_handler(errors.TaskAPIError, on_task_api_error)
    # A model built from request input in a route (e.g. the list's query) failed validation.
    app.add_exception_handler(pydantic.ValidationError, on_task_api_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    # Anything unexpected: classified (and logged) once, answered as a generic 500.
    app.add_exception_handler(Exception, on_task_api_error)
