"""Errors of the HTTP request itself, beside the service's tree (`api.tasks.errors`).

TaskAPIError (api.tasks.errors)
├── PayloadTooLargeError          the request body is over the size limit
└── RequestError                  the request cannot be read as a GraphQL request
    ├── BadRequestError               not a well-formed GraphQL request
    ├── MethodNotAllowedError         e.g. a mutation sent with GET
    ├── NotAcceptableError            no response media type the client takes
    ├── UnsupportedMediaTypeError     a POST body that is not JSON
    └── DocumentRefusedError          the document is refused before it is parsed
        ├── PersistedQueryNotFoundError   a document id (hash) the service does not know
        └── UntrustedDocumentError        a document the trusted documents list does not hold
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


class DocumentRefusedError(RequestError):
    """The document the request names or sends is refused before it is parsed. Like a document
    that does not validate, it is answered 200 in application/json and 4xx in
    application/graphql-response+json."""


class PersistedQueryNotFoundError(DocumentRefusedError):
    # The message Apollo's persisted-query protocol defines (clients match it, or the code).
    default_detail = "PersistedQueryNotFound"


class UntrustedDocumentError(DocumentRefusedError):
    default_detail = (
        "Only trusted documents are accepted here: send the id of a document from the "
        "trusted documents manifest (extensions.persistedQuery.sha256Hash or documentId)"
    )
