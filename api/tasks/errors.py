"""The service's error tree. Each face renders it in its own shape, from a table of its own
(REST: `api.web.statuses`, GraphQL: `graphql_schema.errors`); nothing here knows HTTP or GraphQL.

    TaskAPIError                  base of every error raised on purpose
    ├── ValidationError           input out of range, mistyped or malformed; lists the fields
    ├── AuthenticationError       no bearer token, or one that does not verify
    ├── AuthorizationError        a valid token, but for another user than the one addressed
    ├── NotFoundError             no such task for this user (or an id that is not a UUID)
    ├── PreconditionFailedError   the task is not at the version the caller holds; nothing changed
    ├── DatabaseError             the database cannot be reached now
    ├── SigningKeysUnavailableError
    │                             the JWKS endpoint cannot be reached, so a token cannot be
    │                             checked (its fault is unknown, so not an AuthenticationError)
    ├── EventsExpiredError        a resume point older than the events kept (or unknown): reload
    ├── StreamClosedError         an event stream ended by the service; resume after its last id
    │   ├── SubscriberTooSlowError    the subscriber did not keep up with its events
    │   └── ServiceRestartingError    the process is shutting down
    ├── TooManyStreamsError       the process holds as many event streams as it may
    └── InternalError             anything unexpected

The class name is the public `error_type`. `classify()` turns any other exception into one of
these, so nothing unexpected ever reaches a caller with its message, SQL or a connection string.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypedDict

import pydantic

logger = logging.getLogger(__name__)


class FieldError(TypedDict):
    field: str
    message: str


class TaskAPIError(Exception):
    """Base of every error the service raises on purpose."""

    default_detail: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    @property
    def error_type(self) -> str:
        return type(self).__name__


class ValidationError(TaskAPIError):
    default_detail = "Invalid input"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors = list(errors)
        summary = "; ".join(f"{error['field']}: {error['message']}" for error in self.errors)
        super().__init__(detail or summary or None)

    @classmethod
    def from_pydantic(
        cls, errors: Iterable[Mapping[str, Any]], skip_locations: int = 0
    ) -> "ValidationError":
        """Build from pydantic's errors; `skip_locations` drops a `body`/`path` prefix."""
        field_errors: list[FieldError] = []
        for error in errors:
            location = [str(part) for part in error.get("loc", ())[skip_locations:]]
            message = str(error.get("msg", "invalid value"))
            # pydantic prefixes messages from our own validators with "Value error, ".
            message = message.removeprefix("Value error, ")
            field_errors.append({"field": ".".join(location) or "body", "message": message})
        return cls(field_errors)

    def renamed(self, name: Callable[[str], str]) -> "ValidationError":
        """The same errors with each field named by `name`: how a face's caller spells it (the
        service names fields as its models do). The summary is rebuilt from the new names."""
        return ValidationError(
            [{"field": name(error["field"]), "message": error["message"]} for error in self.errors]
        )


class AuthenticationError(TaskAPIError):
    default_detail = "A bearer token is required"

    def __init__(self, detail: str | None = None, *, invalid_token: bool = True) -> None:
        super().__init__(detail)
        # False when no credentials were sent at all (RFC 6750 3.1 answers that differently
        # from a token that was sent and is bad).
        self.invalid_token = invalid_token


class AuthorizationError(TaskAPIError):
    default_detail = "The token does not grant access to this user's tasks"


class NotFoundError(TaskAPIError):
    default_detail = "Task not found"


class PreconditionFailedError(TaskAPIError):
    """A conditional write (If-Match, expectedVersion) named a version the task is no longer at."""

    default_detail = "The task has changed since the version given; read it again and retry"


class DatabaseError(TaskAPIError):
    default_detail = "The database is unavailable; try again shortly"


class SigningKeysUnavailableError(TaskAPIError):
    default_detail = "The token signing keys cannot be fetched; try again shortly"


class EventsExpiredError(TaskAPIError):
    default_detail = (
        "The events after this id are no longer kept (or the id is unknown); "
        "reload the list and subscribe without one"
    )


class StreamClosedError(TaskAPIError):
    """An event stream the service ended; nothing is lost: resume after the last id received."""

    default_detail = "The event stream was closed; resume after the last event id received"


class SubscriberTooSlowError(StreamClosedError):
    default_detail = (
        "The subscriber did not keep up with its events and was closed; "
        "resume after the last event id received"
    )


class ServiceRestartingError(StreamClosedError):
    default_detail = "The service is restarting; resume after the last event id received"


class TooManyStreamsError(TaskAPIError):
    default_detail = "Too many open event streams on this server; try again shortly"


class InternalError(TaskAPIError):
    pass


def classify(exc: BaseException) -> TaskAPIError:
    """The public error for any exception; unexpected ones are logged here, once."""
    if isinstance(exc, TaskAPIError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        return ValidationError.from_pydantic(exc.errors())
    logger.error("unexpected error", exc_info=exc)
    return InternalError()
