"""Property-based fuzzing of both faces with schemathesis, against the real app and database.

The REST facade is fuzzed from the app's own OpenAPI document, with schema-valid and
schema-violating requests: no response may be a 5xx, every response must be what the document
declares (status code, content type, headers, body), schema-valid requests must be accepted and
schema-violating ones rejected. GraphQL is fuzzed from its schema: no 5xx, and every error is one
the contract gives a caller (never INTERNAL_SERVER_ERROR). Both run on SQLite and PostgreSQL;
hypothesis settings bound the whole file to about a minute.
"""

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

FUZZ_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # The same examples on every run, so CI cannot pass or fail by chance.
    derandomize=True,
    database=None,
)
# The GraphQL error codes that answer a caller's mistake (contract and graphql-core's own).
CLIENT_ERROR_CODES = {"BAD_USER_INPUT", "NOT_FOUND", "CONFLICT", "GRAPHQL_VALIDATION_FAILED"}
KEY_REUSED = [{"field": "idempotency_key", "message": "already used with a different request body"}]


@pytest.fixture
def fuzz_app(database_url: str) -> FastAPI:
    # schemathesis runs the app's lifespan (migrations, pool) itself and ends it after each test.
    return create_app(make_settings(database_url))


@pytest.fixture
def openapi_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


@pytest.fixture
def graphql_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.graphql.from_asgi("/graphql", fuzz_app)


# The event stream answers with a stream that ends only when the client leaves, which a
# request-and-response fuzzer cannot read; its answers are tested in tests/tasks/test_events.py and
# tests/test_live_updates.py.
rest = schemathesis.pytest.from_fixture("openapi_schema").exclude(
    path="/api/{user_id}/tasks/events"
)
graphql = schemathesis.pytest.from_fixture("graphql_schema")


def _wholly_positive(case: schemathesis.Case) -> bool:
    """True when every part of the request is schema-valid.

    The coverage phase can label a case positive while one of its parts (the body) was made
    invalid on purpose; acceptance is only owed to requests valid in every part.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return False
    return all(info.mode.is_positive for info in meta.components.values())


@rest.parametrize()
@FUZZ_SETTINGS
def test_rest_answers_as_its_openapi_document_says(case: schemathesis.Case) -> None:
    keyed = "Idempotency-Key" in (case.headers or {})
    # A cursor is opaque and signed: a string the generator makes is schema-valid but names no
    # position, and its one documented rejection is a cursor error.
    with_cursor = bool((case.query or {}).get("cursor") is not None)
    owed = _wholly_positive(case) and not keyed and not with_cursor
    excluded = [] if owed else [positive_data_acceptance]
    response = case.call_and_validate(excluded_checks=excluded)
    if with_cursor and _wholly_positive(case) and response.status_code == 400:
        assert {e["field"] for e in response.json()["errors"]} == {"cursor"}, response.text
    if keyed and _wholly_positive(case) and response.status_code == 400:
        # A key is valid until a request with another body reuses it: the one documented
        # rejection of a valid keyed create (the generator repeats short keys).
        assert response.json()["errors"] == KEY_REUSED, response.text


@graphql.parametrize()
@FUZZ_SETTINGS
def test_graphql_never_fails_unexpectedly(case: schemathesis.Case) -> None:
    # GraphQL types cannot carry the lengths and other rules of the inputs, so "valid by the
    # schema" does not mean valid; and schemathesis counts every resolver error that it does not
    # know as a server error, NOT_FOUND and CONFLICT included. So those two checks are replaced
    # by this test's own: no 5xx, and every error is one the contract gives a caller.
    response = case.call_and_validate(
        excluded_checks=[positive_data_acceptance, not_a_server_error]
    )
    assert response.status_code < 500, response.text
    body = response.json()
    codes = {error.get("extensions", {}).get("code") for error in body.get("errors") or []}
    assert codes <= CLIENT_ERROR_CODES, body
