"""The HTTP answer to each error of the tree: its status, and the headers that go with it.

One table for both faces: REST renders it as problem+json, GraphQL over HTTP as a GraphQL
response with the same status. An error class not listed takes its nearest listed base's.
"""

from collections.abc import Mapping
from typing import TypeVar

from api.tasks import errors
from api.web.errors import (
    BadRequestError,
    MethodNotAllowedError,
    NotAcceptableError,
    PayloadTooLargeError,
    PersistedQueryNotFoundError,
    UnsupportedMediaTypeError,
    UntrustedDocumentError,
)

STATUS: dict[type[errors.TaskAPIError], int] = {
    errors.TaskAPIError: 500,
    errors.ValidationError: 400,
    errors.AuthenticationError: 401,
    errors.AuthorizationError: 403,
    errors.NotFoundError: 404,
    errors.PreconditionFailedError: 412,
    errors.DatabaseError: 503,
    errors.SigningKeysUnavailableError: 503,
    errors.EventsExpiredError: 410,
    errors.StreamClosedError: 503,
    errors.TooManyStreamsError: 503,
    PayloadTooLargeError: 413,
    BadRequestError: 400,
    MethodNotAllowedError: 405,
    NotAcceptableError: 406,
    UnsupportedMediaTypeError: 415,
    PersistedQueryNotFoundError: 404,
    UntrustedDocumentError: 400,
}

# RFC 9110's reason phrases (Python 3.11's HTTPStatus still says "Request Entity Too Large").
TITLE = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


T = TypeVar("T")


def nearest(table: Mapping[type[errors.TaskAPIError], T], kind: type[errors.TaskAPIError]) -> T:
    """The entry of `kind` in a face's table, or of its nearest listed base (the tree's root is
    always listed)."""
    return next(table[base] for base in kind.__mro__ if base in table)


def status_for(error_class: type[errors.TaskAPIError]) -> int:
    return nearest(STATUS, error_class)


def status_of(error: errors.TaskAPIError) -> int:
    return status_for(type(error))


def challenge(error: errors.AuthenticationError) -> str:
    """The `WWW-Authenticate` value (RFC 6750 3.1): a request without credentials gets a bare
    challenge; one whose token is bad gets error="invalid_token"."""
    if not error.invalid_token:
        return "Bearer"
    return f'Bearer error="invalid_token", error_description="{error.detail}"'


def error_headers(error: errors.TaskAPIError, retry_after: int) -> dict[str, str]:
    """The headers an error answer carries on either face: a challenge, a time to retry, the
    methods that would work."""
    headers: dict[str, str] = {}
    if isinstance(error, errors.AuthenticationError):
        headers["WWW-Authenticate"] = challenge(error)
    if isinstance(error, MethodNotAllowedError):
        headers["Allow"] = ", ".join(error.allow)
    if status_of(error) == 503:
        headers["Retry-After"] = str(retry_after)
    return headers
