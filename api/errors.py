"""The service's error tree; each face renders it in its own shape.

    TaskAPIError                 base; carries its HTTP status and GraphQL code
    ├── ValidationError          400 / BAD_USER_INPUT: input out of range, mistyped or malformed
    ├── AuthenticationError      401 / UNAUTHENTICATED: no bearer token, or one that does not verify
    ├── AuthorizationError       403 / FORBIDDEN: a valid token, but for another user than addressed
    ├── NotFoundError            404 / NOT_FOUND: no such task for this user (or not a UUID)
    ├── PreconditionFailedError  412 / CONFLICT: the task is not at the version the caller holds
    ├── PayloadTooLargeError     413 / BAD_REQUEST: the request body is over the size limit
    ├── DatabaseError            503 / SERVICE_UNAVAILABLE: the database cannot be reached now
    ├── SigningKeysUnavailableError
    │                            503 / SERVICE_UNAVAILABLE: the JWKS endpoint cannot be reached, so
    │                            a token cannot be checked (its fault is unknown, so not a 401)
    ├── InternalError            500 / INTERNAL_SERVER_ERROR: anything unexpected
    └── RequestError             the HTTP request itself is unusable (GraphQL over HTTP):
        ├── BadRequestError          400 / BAD_REQUEST: not a well-formed GraphQL request
        ├── MethodNotAllowedError    405 / METHOD_NOT_ALLOWED: e.g. a mutation sent with GET
        ├── NotAcceptableError       406 / NOT_ACCEPTABLE: no response media type the client takes
        └── UnsupportedMediaTypeError 415 / UNSUPPORTED_MEDIA_TYPE: a POST body that is not JSON

The class name is the public `error_type`. `classify()` turns any other exception into one of
these, so nothing unexpected ever reaches a caller with its message, SQL or a connection string.
"""

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypedDict

import pydantic
from sqlalchemy import exc as sa_exc

logger = logging.getLogger(__name__)


class FieldError(TypedDict):
    field: str
    message: str


class TaskAPIError(Exception):
    """Base of every error the service raises on purpose."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    graphql_code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    default_detail: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    @property
    def error_type(self) -> str:
        return type(self).__name__


class ValidationError(TaskAPIError):
    status_code = 400
    title = "Bad Request"
    graphql_code = "BAD_USER_INPUT"
    default_detail = "Invalid input"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = list(errors)
        summary = "; ".join(f"{error['field']}: {error['message']}" for error in self.errors)
        super().__init__(detail or summary or None)

    @classmethod
    def from_pydantic(
        cls, errors: Iterable[Mapping[str, Any]], skip_locations: int = 0
    ) -> "ValidationError":
        """Build from pydantic's errors; `skip_locations` drops FastAPI's `body`/`path` prefix."""
        field_errors: list[FieldError] = []
        for error in errors:
            location = [str(part) for part in error.get("loc", ())[skip_locations:]]
            message = str(error.get("msg", "invalid value"))
            # pydantic prefixes messages from our own validators with "Value error, ".
            message = message.removeprefix("Value error, ")
            field_errors.append({"field": ".".join(location) or "body", "message": message})
        return cls(field_errors)


class AuthenticationError(TaskAPIError):
    status_code = 401
    title = "Unauthorized"
    graphql_code = "UNAUTHENTICATED"
    default_detail = "A bearer token is required"

    def __init__(self, detail: str | None = None, *, invalid_token: bool = True) -> None:
        super().__init__(detail)
        # RFC 6750 3.1: a request without credentials gets a bare challenge; one whose token
        # is bad gets error="invalid_token".
        self.invalid_token = invalid_token

    @property
    def challenge(self) -> str:
        """The `WWW-Authenticate` header value."""
        if not self.invalid_token:
            return "Bearer"
        return f'Bearer error="invalid_token", error_description="{self.detail}"'


class AuthorizationError(TaskAPIError):
    status_code = 403
    title = "Forbidden"
    graphql_code = "FORBIDDEN"
    default_detail = "The token does not grant access to this user's tasks"


class NotFoundError(TaskAPIError):
    status_code = 404
    title = "Not Found"
    graphql_code = "NOT_FOUND"
    default_detail = "Task not found"


class PreconditionFailedError(TaskAPIError):
    """A conditional write (If-Match, expectedVersion) named a version the task is no longer at."""

    status_code = 412
    title = "Precondition Failed"
    graphql_code = "CONFLICT"
    default_detail = "The task has changed since the version given; read it again and retry"


class DatabaseError(TaskAPIError):
    status_code = 503
    title = "Service Unavailable"
    graphql_code = "SERVICE_UNAVAILABLE"
    default_detail = "The database is unavailable; try again shortly"


class PayloadTooLargeError(TaskAPIError):
    status_code = 413
    title = "Content Too Large"
    graphql_code = "BAD_REQUEST"
    default_detail = "The request body is too large"


class SigningKeysUnavailableError(TaskAPIError):
    status_code = 503
    title = "Service Unavailable"
    graphql_code = "SERVICE_UNAVAILABLE"
    default_detail = "The token signing keys cannot be fetched; try again shortly"


class InternalError(TaskAPIError):
    pass


class RequestError(TaskAPIError):
    """The HTTP request cannot be read as a GraphQL request; nothing was executed."""


class BadRequestError(RequestError):
    status_code = 400
    title = "Bad Request"
    graphql_code = "BAD_REQUEST"
    default_detail = "The request is not a well-formed GraphQL request"


class MethodNotAllowedError(RequestError):
    status_code = 405
    title = "Method Not Allowed"
    graphql_code = "METHOD_NOT_ALLOWED"
    default_detail = "Method not allowed"

    def __init__(self, allow: Sequence[str], detail: str | None = None) -> None:
        self.allow = tuple(allow)  # the methods that would work, for the Allow header
        super().__init__(detail)


class NotAcceptableError(RequestError):
    status_code = 406
    title = "Not Acceptable"
    graphql_code = "NOT_ACCEPTABLE"
    default_detail = "None of the media types in the Accept header can be produced"


class UnsupportedMediaTypeError(RequestError):
    status_code = 415
    title = "Unsupported Media Type"
    graphql_code = "UNSUPPORTED_MEDIA_TYPE"
    default_detail = "Unsupported media type"


# SQLite's messages for a database it cannot open or lock right now.
_SQLITE_UNAVAILABLE = ("unable to open database", "database is locked", "disk i/o error")


def _is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached, as opposed to a bug."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection became free in time
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, ConnectionError)):
            return True
        if isinstance(current, sqlite3.OperationalError) and any(
            text in str(current).lower() for text in _SQLITE_UNAVAILABLE
        ):
            return True
        # asyncpg's connection-level failures: class 08 (connection exception), 53 (insufficient
        # resources, e.g. too many connections) and 57P0x (server shutting down / starting up).
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(("08", "53", "57P")):
            return True
        if type(current).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
            type(current).__module__.startswith("asyncpg")
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def classify(exc: BaseException) -> TaskAPIError:
    """The public error for any exception; unexpected ones are logged here, once."""
    if isinstance(exc, TaskAPIError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        return ValidationError.from_pydantic(exc.errors())
    if _is_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return DatabaseError()
    logger.error("unexpected error", exc_info=exc)
    return InternalError()
