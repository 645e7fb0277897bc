"""Authentication and the ownership rule, on both faces and both databases.

Every token here is minted by the test itself: HMAC ones with a shared secret, RSA and Ed25519
ones whose public keys a JWKS endpoint on 127.0.0.1 serves.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from strawberry.permission import PermissionExtension
from strawberry.types.base import StrawberryObjectDefinition

from api.auth import ANYONE, Caller
from api.tasks.errors import AuthorizationError
from graphql_schema.permissions import IsOwner
from graphql_schema.schema import schema
from tests.apps import app_of, client_of, sql_statements, stored_tasks
from tests.conftest import make_settings
from tests.tokens import (
    AUDIENCE,
    ED25519_KEY,
    ISSUER,
    OTHER_RSA_KEY,
    RSA_KEY,
    SECRET,
    JwksServer,
    bearer,
    closed_port_url,
    ed25519_token,
    hmac_token,
    hs256_signed_with_public_key,
    jwks_server,
    public_jwk,
    random_kid,
    rsa_token,
    unsigned_token,
)

HMAC_SETTINGS: dict[str, Any] = {
    "auth_jwt_secret": SECRET,
    "auth_issuer": ISSUER,
    "auth_audience": AUDIENCE,
}
SERVED_KEYS = (public_jwk(RSA_KEY, "rsa-1", "RS256"), public_jwk(ED25519_KEY, "ed-1"))

CREATE = """
mutation Create($userId: String!) { createTask(userId: $userId, input: {title: "x"}) { id } }"""
TASKS = "query Tasks($userId: String!) { tasks(userId: $userId) { id title } }"


# --- helpers -------------------------------------------------------------------------------


async def gql(
    client: httpx.AsyncClient, query: str, token: str | None = None, **variables: Any
) -> httpx.Response:
    headers = bearer(token) if token else {}
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def rest_create(client: httpx.AsyncClient, user_id: str, token: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/{user_id}/tasks", json={"title": f"{user_id}'s"}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def assert_rest_401(response: httpx.Response, *, bare_challenge: bool) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["error_type"] == "AuthenticationError"
    assert body["status"] == 401
    challenge = response.headers["www-authenticate"]
    if bare_challenge:
        assert challenge == "Bearer"
    else:
        assert challenge.startswith('Bearer error="invalid_token"'), challenge


def assert_graphql_401(response: httpx.Response, *, bare_challenge: bool) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert "data" not in body, body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]
    challenge = response.headers["www-authenticate"]
    if bare_challenge:
        assert challenge == "Bearer"
    else:
        assert challenge.startswith('Bearer error="invalid_token"'), challenge


# --- the tokens each configuration must refuse ---------------------------------------------

Header = Callable[[], dict[str, str] | list[tuple[str, str]]]

# (headers, bare challenge?) for an app configured with the shared secret, issuer and audience.
REFUSED_BY_HMAC: dict[str, tuple[Header, bool]] = {
    "no token": (lambda: {}, True),
    "basic scheme": (lambda: {"Authorization": "Basic YWxpY2U6cHc="}, True),
    "empty bearer": (lambda: {"Authorization": "Bearer "}, False),
    "malformed": (lambda: bearer("not-a-jwt"), False),
    "garbage segments": (lambda: bearer("a.b.c"), False),
    "bad signature": (lambda: bearer(hmac_token(secret="another-secret-" + "y" * 40)), False),
    "expired": (lambda: bearer(hmac_token(exp=int(time.time()) - 3600)), False),
    "not yet valid": (lambda: bearer(hmac_token(nbf=int(time.time()) + 3600)), False),
    "wrong issuer": (lambda: bearer(hmac_token(iss="https://evil.example")), False),
    "wrong audience": (lambda: bearer(hmac_token(aud="another-api")), False),
    "no issuer": (lambda: bearer(hmac_token(iss=None)), False),
    "no audience": (lambda: bearer(hmac_token(aud=None)), False),
    "no expiry": (lambda: bearer(hmac_token(exp=None)), False),
    "no user id": (lambda: bearer(hmac_token(sub=None)), False),
    "alg none": (lambda: bearer(unsigned_token()), False),
    "RS256 where HMAC is configured": (lambda: bearer(rsa_token()), False),
    "two authorization headers": (
        lambda: [("Authorization", f"Bearer {hmac_token()}")] * 2,
        False,
    ),
}

# For an app configured with the JWKS endpoint (RS256 key rsa-1, Ed25519 key ed-1).
REFUSED_BY_JWKS: dict[str, tuple[Header, bool]] = {
    "no token": (lambda: {}, True),
    "malformed": (lambda: bearer("not-a-jwt"), False),
    "unknown kid": (lambda: bearer(rsa_token(kid=random_kid())), False),
    "another key under a served kid": (lambda: bearer(rsa_token(key=OTHER_RSA_KEY)), False),
    "HS256 signed with the public key": (lambda: bearer(hs256_signed_with_public_key()), False),
    "HS256 with a shared secret": (lambda: bearer(hmac_token()), False),
    "alg none": (lambda: bearer(unsigned_token()), False),
    "RS256 naming the Ed25519 key": (lambda: bearer(rsa_token(kid="ed-1")), False),
    "expired": (lambda: bearer(rsa_token(exp=int(time.time()) - 3600)), False),
    "not yet valid": (lambda: bearer(ed25519_token(nbf=int(time.time()) + 3600)), False),
    "wrong issuer": (lambda: bearer(ed25519_token(iss="https://evil.example")), False),
    "wrong audience": (lambda: bearer(rsa_token(aud="another-api")), False),
}


@pytest.fixture
async def hmac_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(database_url, **HMAC_SETTINGS) as client:
        yield client


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with jwks_server(*SERVED_KEYS) as server:
        yield server


def jwks_settings(server_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "auth_jwks_url": server_url,
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
        **overrides,
    }


@pytest.fixture
async def jwks_client(database_url: str, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(database_url, **jwks_settings(jwks.url)) as client:
        yield client


# --- tests ---------------------------------------------------------------------------------


class TestSharedSecretRejections:
    @pytest.mark.parametrize("case", REFUSED_BY_HMAC)
    async def test_rest_refuses_with_401_and_writes_nothing(
        self, hmac_client: httpx.AsyncClient, case: str
    ) -> None:
        headers, bare = REFUSED_BY_HMAC[case]
        response = await hmac_client.post(
            "/api/alice/tasks", json={"title": "x"}, headers=headers()
        )
        assert_rest_401(response, bare_challenge=bare)
        assert await stored_tasks(app_of(hmac_client)) == []

    @pytest.mark.parametrize("case", REFUSED_BY_HMAC)
    async def test_graphql_refuses_with_unauthenticated_and_writes_nothing(
        self, hmac_client: httpx.AsyncClient, case: str
    ) -> None:
        headers, bare = REFUSED_BY_HMAC[case]
        response = await hmac_client.post(
            "/graphql",
            json={"query": CREATE, "variables": {"userId": "alice"}},
            headers=headers(),
        )
        assert_graphql_401(response, bare_challenge=bare)
        assert await stored_tasks(app_of(hmac_client)) == []

    async def test_an_algorithm_outside_the_configured_ones_is_refused(
        self, database_url: str
    ) -> None:
        settings = {**HMAC_SETTINGS, "auth_algorithms": "HS256"}
        async with client_of(database_url, **settings) as client:
            refused = await client.get("/api/alice/tasks", headers=bearer(hmac_token(alg="HS512")))
            accepted = await client.get("/api/alice/tasks", headers=bearer(hmac_token()))
        assert_rest_401(refused, bare_challenge=False)
        assert accepted.status_code == 200


class TestAudience:
    async def test_a_token_with_an_audience_needs_one_configured(self, database_url: str) -> None:
        async with client_of(database_url, auth_jwt_secret=SECRET) as client:
            with_aud = await client.get("/api/alice/tasks", headers=bearer(hmac_token()))
            without = await client.get(
                "/api/alice/tasks", headers=bearer(hmac_token(aud=None, iss=None))
            )
        assert_rest_401(with_aud, bare_challenge=False)
        assert without.status_code == 200

    async def test_the_configured_audience_may_be_one_of_several(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        token = hmac_token(aud=["https://userinfo.example", AUDIENCE])
        assert (await hmac_client.get("/api/alice/tasks", headers=bearer(token))).status_code == 200


class TestSharedSecretAcceptance:
    @pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
    async def test_valid_token_for_the_addressed_user_works_on_both_faces(
        self, hmac_client: httpx.AsyncClient, alg: str
    ) -> None:
        token = hmac_token("alice", alg=alg)
        created = await rest_create(hmac_client, "alice", token)
        body = (await gql(hmac_client, TASKS, token, userId="alice")).json()
        assert body == {"data": {"tasks": [{"id": created["id"], "title": "alice's"}]}}

    async def test_clock_skew_within_the_leeway_is_tolerated(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        token = hmac_token(exp=int(time.time()) - 5, nbf=int(time.time()) + 5)
        assert (await hmac_client.get("/api/alice/tasks", headers=bearer(token))).status_code == 200

    async def test_user_id_comes_from_the_configured_claim(self, database_url: str) -> None:
        settings = {**HMAC_SETTINGS, "auth_user_id_claim": "uid"}
        async with client_of(database_url, **settings) as client:
            token = hmac_token("not-alice", uid="alice")
            own = await client.get("/api/alice/tasks", headers=bearer(token))
            sub = await client.get("/api/not-alice/tasks", headers=bearer(token))
        assert own.status_code == 200
        assert sub.status_code == 403

    async def test_a_lowercase_bearer_scheme_is_accepted(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        headers = {"Authorization": f"bearer {hmac_token()}"}
        assert (await hmac_client.get("/api/alice/tasks", headers=headers)).status_code == 200


class TestJwksRejections:
    @pytest.mark.parametrize("case", REFUSED_BY_JWKS)
    async def test_rest_refuses_with_401_and_writes_nothing(
        self, jwks_client: httpx.AsyncClient, case: str
    ) -> None:
        headers, bare = REFUSED_BY_JWKS[case]
        response = await jwks_client.post(
            "/api/alice/tasks", json={"title": "x"}, headers=headers()
        )
        assert_rest_401(response, bare_challenge=bare)
        assert await stored_tasks(app_of(jwks_client)) == []

    @pytest.mark.parametrize("case", REFUSED_BY_JWKS)
    async def test_graphql_refuses_with_unauthenticated_and_writes_nothing(
        self, jwks_client: httpx.AsyncClient, case: str
    ) -> None:
        headers, bare = REFUSED_BY_JWKS[case]
        response = await jwks_client.post(
            "/graphql",
            json={"query": CREATE, "variables": {"userId": "alice"}},
            headers=headers(),
        )
        assert_graphql_401(response, bare_challenge=bare)
        assert await stored_tasks(app_of(jwks_client)) == []

    async def test_an_algorithm_outside_the_configured_ones_is_refused(
        self, database_url: str, jwks: JwksServer
    ) -> None:
        settings = jwks_settings(jwks.url, auth_algorithms=["EdDSA"])
        async with client_of(database_url, **settings) as client:
            refused = await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
            accepted = await client.get("/api/alice/tasks", headers=bearer(ed25519_token()))
        assert_rest_401(refused, bare_challenge=False)
        assert accepted.status_code == 200


class TestJwksAcceptance:
    @pytest.mark.parametrize("mint", [rsa_token, ed25519_token], ids=["RS256", "EdDSA"])
    async def test_valid_token_for_the_addressed_user_works_on_both_faces(
        self, jwks_client: httpx.AsyncClient, mint: Callable[..., str]
    ) -> None:
        token = mint("alice")
        created = await rest_create(jwks_client, "alice", token)
        body = (await gql(jwks_client, TASKS, token, userId="alice")).json()
        assert body == {"data": {"tasks": [{"id": created["id"], "title": "alice's"}]}}

    async def test_a_key_served_without_alg_takes_the_tokens_algorithm(
        self, database_url: str
    ) -> None:
        with jwks_server(public_jwk(RSA_KEY, "rsa-1")) as server:
            async with client_of(database_url, **jwks_settings(server.url)) as client:
                ps256 = await client.get("/api/alice/tasks", headers=bearer(rsa_token(alg="PS256")))
                rs256 = await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
        assert ps256.status_code == 200
        assert rs256.status_code == 200

    async def test_a_token_without_kid_uses_the_only_key(self, database_url: str) -> None:
        with jwks_server(public_jwk(RSA_KEY, "rsa-1")) as server:
            async with client_of(database_url, **jwks_settings(server.url)) as client:
                response = await client.get("/api/alice/tasks", headers=bearer(rsa_token(kid=None)))
        assert response.status_code == 200

    async def test_a_token_without_kid_is_refused_when_several_keys_are_served(
        self, jwks_client: httpx.AsyncClient
    ) -> None:
        response = await jwks_client.get("/api/alice/tasks", headers=bearer(rsa_token(kid=None)))
        assert_rest_401(response, bare_challenge=False)


class TestJwksFetching:
    async def test_keys_are_fetched_once_for_a_burst_of_requests(
        self, database_url: str, jwks: JwksServer
    ) -> None:
        # No minimum interval: only the single flight keeps the burst to one fetch.
        settings = jwks_settings(jwks.url, auth_jwks_min_refetch_seconds=0)
        async with client_of(database_url, **settings) as client:
            token = rsa_token()
            responses = await asyncio.gather(
                *[client.get("/api/alice/tasks", headers=bearer(token)) for _ in range(20)]
            )
        assert [response.status_code for response in responses] == [200] * 20
        assert jwks.fetches == 1

    async def test_unknown_kids_cannot_make_it_refetch_more_than_once_per_interval(
        self, jwks_client: httpx.AsyncClient, jwks: JwksServer
    ) -> None:
        await jwks_client.get("/api/alice/tasks", headers=bearer(rsa_token()))
        # The cache is fresh and the last fetch recent: made-up kids are refused at once.
        for _ in range(3):
            forged = await asyncio.gather(
                *[
                    jwks_client.get("/api/alice/tasks", headers=bearer(rsa_token(kid=random_kid())))
                    for _ in range(10)
                ]
            )
            assert {response.status_code for response in forged} == {401}
        assert jwks.fetches == 1

    async def test_a_new_kid_is_fetched_when_the_keys_rotate(
        self, database_url: str, jwks: JwksServer
    ) -> None:
        settings = jwks_settings(jwks.url, auth_jwks_min_refetch_seconds=0)
        async with client_of(database_url, **settings) as client:
            assert (
                await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
            ).status_code == 200
            jwks.keys = [public_jwk(OTHER_RSA_KEY, "rsa-2", "RS256")]
            rotated = bearer(rsa_token(kid="rsa-2", key=OTHER_RSA_KEY))
            assert (await client.get("/api/alice/tasks", headers=rotated)).status_code == 200
        assert jwks.fetches == 2

    async def test_an_unreachable_jwks_is_503_on_both_faces_without_hanging(
        self, database_url: str
    ) -> None:
        async with client_of(database_url, **jwks_settings(closed_port_url())) as client:
            rest = await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
            graphql = await gql(client, TASKS, rsa_token(), userId="alice")
        assert rest.status_code == 503, rest.text
        assert rest.json()["error_type"] == "SigningKeysUnavailableError"
        assert "retry-after" in rest.headers
        assert graphql.status_code == 503, graphql.text
        assert graphql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "retry-after" in graphql.headers

    async def test_a_jwks_that_never_answers_is_cut_off_by_the_timeout(
        self, database_url: str, jwks: JwksServer
    ) -> None:
        jwks.hang.set()
        settings = jwks_settings(jwks.url, auth_jwks_timeout_seconds=0.2)
        async with client_of(database_url, **settings) as client, asyncio.timeout(20):
            response = await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
        assert response.status_code == 503
        assert response.json()["error_type"] == "SigningKeysUnavailableError"

    async def test_cached_keys_keep_working_while_the_jwks_is_down(
        self, database_url: str, jwks: JwksServer
    ) -> None:
        # Keys are stale at once and may be refetched every time: every request tries, and fails.
        settings = jwks_settings(
            jwks.url, auth_jwks_cache_seconds=1e-9, auth_jwks_min_refetch_seconds=0
        )
        async with client_of(database_url, **settings) as client:
            assert (
                await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
            ).status_code == 200
            jwks.stop()
            response = await client.get("/api/alice/tasks", headers=bearer(ed25519_token()))
        assert response.status_code == 200


class TestOwnership:
    """A valid token for alice addressing bob: 403 / FORBIDDEN, and the database is untouched."""

    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [
            ("GET", "", None),
            ("POST", "", {"title": "planted"}),
            ("GET", "/{id}", None),
            ("PUT", "/{id}", {"title": "hijacked", "completed": True}),
            ("PATCH", "/{id}/complete", None),
            ("DELETE", "/{id}", None),
        ],
    )
    async def test_rest_is_403_before_any_sql_and_changes_nothing(
        self,
        hmac_client: httpx.AsyncClient,
        method: str,
        suffix: str,
        body: dict[str, Any] | None,
    ) -> None:
        app = app_of(hmac_client)
        task = await rest_create(hmac_client, "bob", hmac_token("bob"))
        before = await stored_tasks(app)
        path = "/api/bob/tasks" + suffix.format(id=task["id"])
        with sql_statements(app) as statements:
            response = await hmac_client.request(
                method, path, json=body, headers=bearer(hmac_token("alice"))
            )
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["error_type"] == "AuthorizationError"
        assert "bob's" not in response.text
        assert statements == []
        assert await stored_tasks(app) == before

    @pytest.mark.parametrize(
        "operation",
        [
            "query($u: String!) { tasks(userId: $u) { id title } }",
            "query($u: String!, $id: ID!) { task(userId: $u, id: $id) { id title } }",
            'mutation($u: String!) { createTask(userId: $u, input: {title: "planted"}) { id } }',
            "mutation($u: String!, $id: ID!) "
            '{ updateTask(userId: $u, id: $id, input: {title: "hijacked"}) { id } }',
            "mutation($u: String!, $id: ID!) { completeTask(userId: $u, id: $id) { id } }",
            "mutation($u: String!, $id: ID!) { deleteTask(userId: $u, id: $id) { id } }",
        ],
        ids=["tasks", "task", "createTask", "updateTask", "completeTask", "deleteTask"],
    )
    async def test_graphql_is_forbidden_before_any_sql_and_changes_nothing(
        self, hmac_client: httpx.AsyncClient, operation: str
    ) -> None:
        app = app_of(hmac_client)
        task = await rest_create(hmac_client, "bob", hmac_token("bob"))
        before = await stored_tasks(app)
        variables = {"u": "bob"} | ({"id": task["id"]} if "$id" in operation else {})
        with sql_statements(app) as statements:
            response = await gql(hmac_client, operation, hmac_token("alice"), **variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"]
        assert body["data"] is None or set(body["data"].values()) == {None}, body
        assert "bob's" not in response.text
        assert statements == []
        assert await stored_tasks(app) == before

    @pytest.mark.parametrize(
        ("document", "variables"),
        [
            (
                'mutation { mine: createTask(userId: "alice", input: {title: "mine"}) { id } '
                'theirs: createTask(userId: "bob", input: {title: "planted"}) { id } }',
                {},
            ),
            ('{ mine: tasks(userId: "alice") { id } theirs: tasks(userId: "bob") { id } }', {}),
            ('query($u: String! = "bob") { tasks(userId: $u) { id } }', {}),
            (
                'query($u: String!) { mine: tasks(userId: "alice") { id } '
                "tasks(userId: $u) { id } }",
                {"u": "bob"},
            ),
            ('query { ...Theirs } fragment Theirs on Query { tasks(userId: "bob") { id } }', {}),
        ],
        ids=["mixed mutation", "mixed query", "variable default", "variable", "fragment"],
    )
    async def test_an_operation_addressing_another_user_runs_nothing_at_all(
        self, hmac_client: httpx.AsyncClient, document: str, variables: dict[str, str]
    ) -> None:
        app = app_of(hmac_client)
        with sql_statements(app) as statements:
            response = await gql(hmac_client, document, hmac_token("alice"), **variables)
        body = response.json()
        assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"], body
        assert body["data"] is None
        assert statements == []
        assert await stored_tasks(app) == []

    async def test_a_userid_in_variables_is_checked_like_one_inline(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        inline = await gql(hmac_client, '{ tasks(userId: "bob") { id } }', hmac_token("alice"))
        assert inline.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    async def test_the_user_id_must_match_exactly(self, hmac_client: httpx.AsyncClient) -> None:
        token = hmac_token("alice")
        for other in ["Alice", "alice ", "alic", "alice2"]:
            response = await hmac_client.get(f"/api/{other}/tasks", headers=bearer(token))
            assert response.status_code == 403, other

    async def test_forbidden_comes_before_validation(self, hmac_client: httpx.AsyncClient) -> None:
        # A caller learns nothing about another user's resources, not even what is invalid.
        response = await hmac_client.post(
            "/api/bob/tasks",
            content=b"{not json",
            headers={**bearer(hmac_token("alice")), "content-type": "application/json"},
        )
        assert response.status_code == 403

    async def test_unauthenticated_comes_before_validation(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        response = await hmac_client.post(
            "/api/alice/tasks", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_rest_401(response, bare_challenge=True)


class TestIsOwner:
    """The per-field guard on its own (the operation-level check usually answers first)."""

    @staticmethod
    def info(caller: Caller | None) -> Any:
        return SimpleNamespace(context=SimpleNamespace(caller=caller))

    def test_the_caller_may_address_itself(self) -> None:
        assert IsOwner().has_permission(None, self.info(Caller("alice")), user_id="alice")

    def test_another_user_is_forbidden(self) -> None:
        with pytest.raises(AuthorizationError):
            IsOwner().has_permission(None, self.info(Caller("alice")), user_id="bob")

    def test_with_authentication_off_every_user_is_open(self) -> None:
        assert IsOwner().has_permission(None, self.info(ANYONE), user_id="bob")


class TestEveryRootFieldIsGuarded:
    @pytest.mark.parametrize("type_name", ["Query", "Mutation"])
    def test_every_root_field_takes_user_id_and_applies_is_owner(self, type_name: str) -> None:
        # A field added later without the guard would be open to every caller: fail here.
        root = schema.get_type_by_name(type_name)
        assert isinstance(root, StrawberryObjectDefinition)
        for field in root.fields:
            guards = [
                permission
                for extension in field.extensions
                if isinstance(extension, PermissionExtension)
                for permission in extension.permissions
            ]
            assert "user_id" in [argument.python_name for argument in field.arguments], field
            assert any(isinstance(guard, IsOwner) for guard in guards), field.python_name


class TestOpenEndpoints:
    @pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json"])
    async def test_open_without_a_token(self, hmac_client: httpx.AsyncClient, path: str) -> None:
        assert (await hmac_client.get(path)).status_code == 200

    async def test_graphiql_page_is_open(self, hmac_client: httpx.AsyncClient) -> None:
        response = await hmac_client.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()

    @pytest.mark.parametrize("query", ["{ __typename }", "{ __schema { queryType { name } } }"])
    async def test_every_graphql_operation_needs_a_token(
        self, hmac_client: httpx.AsyncClient, query: str
    ) -> None:
        assert_graphql_401(await gql(hmac_client, query), bare_challenge=True)
        response = await hmac_client.get("/graphql", params={"query": query})
        assert_graphql_401(response, bare_challenge=True)

    async def test_graphql_over_get_with_a_token_works(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        response = await hmac_client.get(
            "/graphql",
            params={"query": '{ tasks(userId: "alice") { id } }'},
            headers=bearer(hmac_token("alice")),
        )
        assert response.json() == {"data": {"tasks": []}}


class TestAuthenticationOff:
    async def test_every_user_is_open_and_tokens_are_ignored(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            alice = await client.post("/api/alice/tasks", json={"title": "a"})
            as_bob = await client.get(
                "/api/alice/tasks", headers=bearer(hmac_token("bob", secret="whatever-" * 4))
            )
            graphql = await gql(client, TASKS, userId="alice")
        assert alice.status_code == 201
        assert as_bob.status_code == 200
        assert [task["id"] for task in as_bob.json()] == [alice.json()["id"]]
        assert graphql.json()["data"]["tasks"][0]["id"] == alice.json()["id"]

    async def test_start_up_warns_once_that_tasks_are_open(
        self, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            async with client_of(database_url) as client:
                await client.get("/api/alice/tasks")
                await client.get("/api/bob/tasks")
        warnings = [
            record for record in caplog.records if "authentication is OFF" in record.message
        ]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert "every user's tasks are open" in warnings[0].message

    async def test_no_warning_when_authentication_is_on(
        self, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO):
            async with client_of(database_url, **HMAC_SETTINGS):
                pass
        assert not [record for record in caplog.records if "OFF" in record.message]
        assert [record for record in caplog.records if "shared secret" in record.message]

    async def test_openapi_declares_no_security(self, database_url: str) -> None:
        async with client_of(database_url) as client:
            document = (await client.get("/openapi.json")).json()
        assert "securitySchemes" not in document["components"]
        assert "401" not in str(document["paths"])


class TestOpenApiWhenOn:
    async def test_bearer_scheme_and_401_403_on_every_route(
        self, hmac_client: httpx.AsyncClient
    ) -> None:
        document = (await hmac_client.get("/openapi.json")).json()
        scheme = document["components"]["securitySchemes"]["bearerAuth"]
        assert scheme == scheme | {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        operations = [
            operation
            for path, item in document["paths"].items()
            if path.startswith("/api/")
            for operation in item.values()
        ]
        assert len(operations) == 7  # the six task routes and the event stream
        for operation in operations:
            assert operation["security"] == [{"bearerAuth": []}]
            responses = operation["responses"]
            for status in ("401", "403"):
                schema = responses[status]["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
            assert "WWW-Authenticate" in responses["401"]["headers"]
        assert "security" not in document["paths"]["/health"]["get"]


class TestSettings:
    def test_secret_and_jwks_url_together_are_refused(self) -> None:
        with pytest.raises(ValidationError, match="not both"):
            make_settings("sqlite://", auth_jwt_secret=SECRET, auth_jwks_url="https://x/jwks")

    def test_a_short_secret_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            make_settings("sqlite://", auth_jwt_secret="short")

    @pytest.mark.parametrize(
        ("settings", "algorithms"),
        [
            ({"auth_jwt_secret": SECRET}, "RS256"),
            ({"auth_jwks_url": "https://x/jwks"}, "HS256"),
            ({"auth_jwks_url": "https://x/jwks"}, "none"),
        ],
    )
    def test_algorithms_must_fit_the_key(self, settings: dict[str, str], algorithms: str) -> None:
        with pytest.raises(ValidationError, match="do not fit"):
            make_settings("sqlite://", auth_algorithms=algorithms, **settings)

    def test_the_secret_length_decides_the_default_hmac_algorithms(self) -> None:
        assert make_settings("sqlite://", auth_jwt_secret="k" * 40).accepted_algorithms == (
            "HS256",
        )
        assert make_settings("sqlite://", auth_jwt_secret="k" * 64).accepted_algorithms == (
            "HS256",
            "HS384",
            "HS512",
        )

    def test_an_algorithm_the_secret_is_too_short_for_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="too short"):
            make_settings("sqlite://", auth_jwt_secret="k" * 40, auth_algorithms="HS512")

    def test_a_refused_setting_prints_no_secret(self) -> None:
        with pytest.raises(ValidationError) as refused:
            make_settings("postgresql://u:db-password@db/x", auth_jwt_secret="short-secret")
        assert "short-secret" not in str(refused.value)
        assert "db-password" not in str(refused.value)

    def test_empty_values_mean_off(self) -> None:
        settings = make_settings("sqlite://", auth_jwt_secret="", auth_jwks_url=" ")
        assert not settings.auth_enabled

    def test_lists_are_read_comma_separated(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TASK_API_CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
        monkeypatch.setenv("TASK_API_AUTH_ALGORITHMS", '["RS256", "EdDSA"]')
        monkeypatch.setenv("TASK_API_AUTH_JWKS_URL", "https://x/jwks")
        settings = make_settings("sqlite://")
        assert settings.cors_allowed_origins == ["https://a.example", "https://b.example"]
        assert settings.accepted_algorithms == ("RS256", "EdDSA")


class TestSecretsStayOutOfLogs:
    async def test_no_token_secret_or_password_is_logged(
        self, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        password = "db-password-never-logged"
        url = database_url.replace("postgres@", f"postgres:{password}@")
        leaks = {password, SECRET}
        with caplog.at_level(logging.DEBUG):
            async with client_of(url, **HMAC_SETTINGS) as client:
                for user, token in [("alice", hmac_token()), ("bob", hmac_token())]:
                    leaks.add(token)
                    await client.get(f"/api/{user}/tasks", headers=bearer(token))
                for headers, _ in REFUSED_BY_HMAC.values():
                    sent = headers()
                    pairs = sent.items() if isinstance(sent, dict) else sent
                    leaks.update(value.removeprefix("Bearer ") for _, value in pairs)
                    await client.get("/api/alice/tasks", headers=sent)
            jwks_url = closed_port_url() + "?client_secret=jwks-url-secret"
            leaks.add("jwks-url-secret")
            async with client_of(url, **jwks_settings(jwks_url)) as client:
                await client.get("/api/alice/tasks", headers=bearer(rsa_token()))
            down = "postgresql://postgres:" + password + "@127.0.0.1:1/nothing"
            async with client_of(down, migrate_on_startup=False, db_connect_timeout=1) as client:
                assert (await client.get("/api/alice/tasks")).status_code == 503
        logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
        assert caplog.records, "expected some logging to inspect"
        for leak in leaks - {"", "Bearer", "Bearer "}:
            assert leak not in logged, leak
