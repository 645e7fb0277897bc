"""A 401 on POST /graphql answers in the media type the caller accepts, on both databases.

Authentication is on (a shared secret) and no token is sent. The response media type is
negotiated first: a caller that accepts neither GraphQL media type gets 406, not 401.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.apps import app_of, client_of, stored_tasks
from tests.tokens import AUDIENCE, ISSUER, SECRET, bearer

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
CREATE = 'mutation { createTask(userId: "alice", input: {title: "x"}) { id } }'
AUTHENTICATION_ON: dict[str, Any] = {
    "auth_jwt_secret": SECRET,
    "auth_issuer": ISSUER,
    "auth_audience": AUDIENCE,
}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(database_url, **AUTHENTICATION_ON) as authenticated:
        yield authenticated


async def post(
    client: httpx.AsyncClient, accept: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": CREATE}, headers={"Accept": accept, **(headers or {})}
    )


def only_error(response: httpx.Response, code: str) -> dict[str, Any]:
    """The body is exactly {"errors": [{"message": ..., "extensions": {"code": code}}]}."""
    body: dict[str, Any] = response.json()
    assert list(body) == ["errors"], body
    [error] = body["errors"]
    assert set(error) == {"message", "extensions"}, body
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"] == {"code": code}, body
    return error


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE_JSON, JSON])
async def test_401_answers_in_the_accepted_media_type(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await post(client, accept)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"
    assert response.headers["www-authenticate"] == "Bearer"
    only_error(response, "UNAUTHENTICATED")
    assert await stored_tasks(app_of(client)) == []


@pytest.mark.parametrize("headers", [{}, bearer("not-a-jwt")], ids=["no token", "malformed token"])
async def test_an_unacceptable_accept_is_406_before_authentication(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await post(client, "text/plain", headers)
    assert response.status_code == 406, response.text
    assert response.headers["content-type"].startswith(JSON)
    assert "www-authenticate" not in response.headers
    error = only_error(response, "NOT_ACCEPTABLE")
    assert GRAPHQL_RESPONSE_JSON in error["message"]
    assert await stored_tasks(app_of(client)) == []
