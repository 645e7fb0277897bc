"""Errors of the HTTP request itself, beside the service's tree (`api.tasks.errors`).

TaskAPIError (api.tasks.errors)
├── PayloadTooLargeError          the request body is over the size limit
└── RequestError                  the request cannot be read as a GraphQL request
    ├── BadRequestError               not a well-formed GraphQL request
    ├── MethodNotAllowedError         e.g. a mutation sent with GET
    ├── NotAcceptableError            no response media type the client takes
    └── UnsupportedMediaTypeError     a POST body that is not JSON
"""

from collections.abc import Sequence

from api.tasks.errors import TaskAPIError


class PayloadTooLargeError(TaskAPIError):
    default_detail = "The request body is too large"


class RequestError(TaskAPIError):
    """The HTTP request cannot be read as a GraphQL request; nothing was executed."""


class BadRequestError(RequestError):
    default_detail = "The request is not a well-formed GraphQL request"


class MethodNotAllowedError(RequestError):
    default_detail = "Method not allowed"

    def __init__(self, allow: Sequence[str], detail: str | None = None) -> None:
        self.allow = tuple(allow)  # the methods that would work, for the Allow header
        super().__init__(detail)


class NotAcceptableError(RequestError):
    default_detail = "None of the media types in the Accept header can be produced"


class UnsupportedMediaTypeError(RequestError):
    default_detail = "Unsupported media type"
