"""GraphQL over HTTP, spoken by both /graphql handlers: the response media type `Accept` asks for,
the body's media type, the request parameters (checked the way the spec defines a well-formed
request), and the answer's JSON."""

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from strawberry.http import GraphQLRequestData

from api.web.errors import BadRequestError, UnsupportedMediaTypeError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# Offered in this order: on a tie (e.g. `*/*`) the first wins, so old callers keep their type.
_OFFERED = (JSON, GRAPHQL_RESPONSE_JSON)


def _media_ranges(header: str) -> list[tuple[str, float]]:
    """`Accept` as (media range, quality) pairs in the order given; malformed items skipped."""
    ranges = []
    for item in header.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        if "/" not in media_range:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            ranges.append((media_range.lower(), quality))
    return ranges


# Clients send the same few headers again and again: each outcome is kept (bounded, so that a
# flood of odd headers costs nothing lasting). A refusal raises, and is never kept.
@functools.lru_cache(maxsize=256)
def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, for an `Accept` header; None when none offered is acceptable.

    Each offered type takes the quality of the most specific range that matches it (RFC 9110
    12.5.1); the highest quality wins, then the more specific match, then the earlier one.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = _media_ranges(accept)
    best: tuple[float, int, int] | None = None
    chosen = None
    for offer in _OFFERED:
        kind = offer.split("/")[0]
        matches = [
            (specificity, -position, quality)
            for position, (media_range, quality) in enumerate(ranges)
            for specificity, pattern in ((2, offer), (1, f"{kind}/*"), (0, "*/*"))
            if media_range == pattern
        ]
        if not matches:
            continue
        specificity, negative_position, quality = max(matches)
        rank = (quality, specificity, negative_position)
        if quality > 0 and (best is None or rank > best):
            best, chosen = rank, offer
    return chosen


def prefers_html(accept: str) -> bool:
    """A browser navigating: it names text/html itself (a bare `*/*` is an API client)."""
    return any(
        media_range == "text/html" and quality > 0 for media_range, quality in _media_ranges(accept)
    )


@functools.lru_cache(maxsize=256)
def check_content_type(content_type: str | None) -> None:
    """A POST body must be JSON in UTF-8, the one request encoding the spec requires."""
    if content_type is None:
        raise UnsupportedMediaTypeError("A POST request needs Content-Type: application/json")
    media_type, *params = (part.strip() for part in content_type.split(";"))
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media_type.lower() != JSON or charset not in {"utf-8", "utf8"}:
        raise UnsupportedMediaTypeError(
            f"Unsupported Content-Type {content_type!r}; send application/json (UTF-8)"
        )


def decode_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # also invalid UTF-8 and absurd nesting
        raise BadRequestError(f"{what} is not valid JSON") from exc


def request_data(data: object) -> GraphQLRequestData:
    """The request parameters, checked the way the spec defines a well-formed request."""
    if not isinstance(data, Mapping):
        raise BadRequestError("The request must be a JSON object (batching is not supported)")
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise BadRequestError("extensions must be an object or null")
    document_id = data.get("documentId")
    if document_id is not None:
        # The persisted-documents form graphql-codegen's client preset sends: the same reference
        # as a persisted query's hash (graphql_schema.persisted).
        if not isinstance(document_id, str):
            raise BadRequestError("documentId must be a string")
        persisted = {"version": 1, "sha256Hash": document_id}
        extensions = {**(extensions or {}), "persistedQuery": persisted}
    query = data.get("query")
    if query is None and not (extensions and "persistedQuery" in extensions):
        raise BadRequestError("No GraphQL query found in the request")
    if not isinstance(query, str | None):
        raise BadRequestError("query must be a string")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise BadRequestError("operationName must be a string or null")
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise BadRequestError("variables must be an object or null")
    return GraphQLRequestData(
        query=query,
        variables=variables,
        # An empty operationName means none (the spec says so for GET; JSON follows suit).
        operation_name=operation_name or None,
        extensions=extensions,
    )


def query_request(params: Mapping[str, str]) -> GraphQLRequestData:
    """The request parameters of a GET, from its query string (`variables` and `extensions` are
    JSON there); BadRequestError when they do not make a well-formed request."""
    data: dict[str, object] = {
        "query": params.get("query"),
        "operationName": params.get("operationName"),
        "documentId": params.get("documentId"),
    }
    for name in ("variables", "extensions"):
        value = params.get(name)
        if isinstance(value, str):
            data[name] = decode_json(value, f"The {name} parameter")
    return request_data(data)


def encode_json(data: object) -> bytes:
    """Every GraphQL answer's JSON: orjson's, several times faster than the stdlib's."""
    try:
        return orjson.dumps(data)
    except TypeError:
        # What orjson refuses and the stdlib escapes: a lone surrogate echoed back from the
        # caller's request (e.g. in an error message), an integer past 64 bits.
        return json.dumps(data, separators=(",", ":"), default=_isoformat).encode()


def _isoformat(value: object) -> str:
    """What the stdlib cannot encode itself: a datetime the compiled path left for orjson."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
