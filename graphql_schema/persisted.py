"""Documents sent by reference: automatic persisted queries and trusted documents.

Automatic persisted queries (Apollo's protocol, which urql speaks too): a request carries
`extensions.persistedQuery = {"version": 1, "sha256Hash": ...}`, with or without `query`.
- Without `query`, the hash names a document registered before, by any process (the
  `persisted_documents` table); an unknown one is answered `PERSISTED_QUERY_NOT_FOUND`, and the
  client sends the request again with the text.
- With `query`, the text must hash to `sha256Hash` (otherwise 400). It then runs as any document
  does, through every limit and validation rule, and is stored only if it passed them all.
A hash is a key of the process's one document cache (`OperationCache`): a hash seen before is
found there without a database read, and its compiled operation with it.

Trusted documents: with `TASK_API_GRAPHQL_TRUSTED_DOCUMENTS` naming a manifest (the JSON object
`{id: document}` that graphql-codegen's client preset and Relay's persisted-queries output
write), requests name a listed document by `extensions.persistedQuery.sha256Hash` or
`documentId`, or send the text of a listed one. Anything else is refused before it is parsed,
and nothing is ever registered. `TASK_API_GRAPHQL_TRUSTED_DOCUMENTS_GRAPHIQL=true` accepts
other documents too, so that GraphiQL works (for development and staging, not production).
"""

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from strawberry.http import GraphQLRequestData

from api.storage.documents import DocumentStore
from api.tasks import errors
from api.web.errors import (
    BadRequestError,
    PersistedQueryNotFoundError,
    UntrustedDocumentError,
)
from graphql_schema.compiled import OperationCache

logger = logging.getLogger(__name__)

PERSISTED_QUERY = "persistedQuery"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def _hash_key(document_id: str) -> str:
    """A persisted query's hash as stored: graphql-codegen's ids say `sha256:<hex>`."""
    return document_id.removeprefix("sha256:")


def requested_id(request: GraphQLRequestData) -> str | None:
    """The document id a request names (`extensions.persistedQuery.sha256Hash`), or None;
    BadRequestError when the extension is malformed."""
    extension = (request.extensions or {}).get(PERSISTED_QUERY)
    if extension is None:
        return None
    if not isinstance(extension, Mapping):
        raise BadRequestError("extensions.persistedQuery must be an object")
    if extension.get("version") != 1:
        raise BadRequestError("extensions.persistedQuery.version must be 1")
    document_id = extension.get("sha256Hash")
    if not isinstance(document_id, str) or not document_id:
        raise BadRequestError("extensions.persistedQuery.sha256Hash must be a string")
    return document_id


class TrustedDocuments:
    """The allow-list: document ids and texts from a manifest."""

    def __init__(self, documents: Mapping[str, str], *, others_allowed: bool = False) -> None:
        self.by_id = dict(documents)
        self.texts = frozenset(self.by_id.values())
        # True: documents not listed are accepted as well (GraphiQL works).
        self.others_allowed = others_allowed

    @classmethod
    def from_file(cls, path: Path, *, others_allowed: bool = False) -> "TrustedDocuments":
        """The manifest at `path`; ValueError saying what is wrong with it otherwise."""
        where = f"the trusted documents manifest {path}"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{where} cannot be read: {exc.strerror}") from exc
        except ValueError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from exc
        if not isinstance(manifest, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in manifest.items()
        ):
            raise ValueError(
                f"the trusted documents manifest {path} must be a JSON object of document ids "
                "to document texts, as graphql-codegen's persisted documents and Relay's "
                "persisted queries write it"
            )
        return cls(manifest, others_allowed=others_allowed)


class PersistedDocuments:
    """Turns a request that names its document by reference into one that carries the text."""

    def __init__(
        self,
        operations: OperationCache,
        store: DocumentStore | None,
        trusted: TrustedDocuments | None = None,
    ) -> None:
        self.operations = operations
        # None: automatic persisted queries are off (and with trusted documents, never stored).
        self.store = store if trusted is None else None
        self.trusted = trusted

    def known(self, request: GraphQLRequestData) -> GraphQLRequestData | None:
        """The request with its text, when everything needed is at hand without a database
        read and nothing is wrong with it; None otherwise (then `resolve` gives the answer)."""
        try:
            document_id = requested_id(request)
        except errors.TaskAPIError:
            return None
        trusted = self.trusted
        if document_id is None:
            if trusted is not None and not trusted.others_allowed:
                return request if request.query in trusted.texts else None
            return request
        if trusted is not None:
            text = trusted.by_id.get(document_id)
        else:
            text = self.operations.text_of(_hash_key(document_id))
        if text is None or (request.query is not None and request.query != text):
            return None
        return replace(request, query=text)

    async def resolve(self, request: GraphQLRequestData) -> GraphQLRequestData:
        """The request with its text; PersistedQueryNotFoundError for an unknown id,
        BadRequestError for a text that does not match its hash, UntrustedDocumentError for a
        document the allow-list does not hold. Nothing here parses the document."""
        document_id = requested_id(request)
        if self.trusted is not None:
            return self._trusted(request, document_id, self.trusted)
        if document_id is None:
            return request
        if self.store is None:
            # The protocol's message: Apollo's link then stops hashing and sends every text.
            raise BadRequestError("PersistedQueryNotSupported")
        document_id = _hash_key(document_id)
        if not _SHA256_HEX.fullmatch(document_id):
            raise BadRequestError(
                "extensions.persistedQuery.sha256Hash must be a SHA-256 in lowercase hex"
            )
        if request.query is not None:
            if sha256_of(request.query) != document_id:
                raise BadRequestError("The query does not match its sha256Hash")
            return request
        text = self.operations.text_of(document_id)
        if text is None:
            text = await self.store.load(document_id)
            if text is None:
                raise PersistedQueryNotFoundError()
            self.operations.remember_text(document_id, text)
        return replace(request, query=text)

    def _trusted(
        self, request: GraphQLRequestData, document_id: str | None, trusted: TrustedDocuments
    ) -> GraphQLRequestData:
        if document_id is not None:
            text = trusted.by_id.get(document_id)
            if text is None and request.query is None:
                raise PersistedQueryNotFoundError()
            if text is not None:
                if request.query is not None and request.query != text:
                    raise BadRequestError("The query is not the listed document of that id")
                return replace(request, query=text)
        # A text, with no id or one the manifest does not list: only a listed text runs.
        if trusted.others_allowed or request.query in trusted.texts:
            return request
        raise UntrustedDocumentError()

    async def register(self, request: GraphQLRequestData) -> None:
        """Store a document sent with its hash, once it has passed every limit and rule. A
        database that cannot store it now only means the client sends the text once more."""
        if self.store is None or request.query is None:
            return
        document_id = requested_id(request)
        if document_id is None:
            return
        document_id = _hash_key(document_id)
        if self.operations.text_of(document_id) is not None:
            return
        try:
            await self.store.save(document_id, request.query)
        except errors.TaskAPIError as exc:
            logger.warning("persisted document not stored: %s", exc.detail)
            return
        self.operations.remember_text(document_id, request.query)
