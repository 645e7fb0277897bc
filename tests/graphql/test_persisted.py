"""Documents by reference: automatic persisted queries and trusted documents.

Every request runs on two apps over one database: one with compiled operations (its hits are
served by graphql_schema/endpoint.py) and one on the framework's path only. They must answer
alike, byte for byte; the second app also stands for another process that shares the database.
"""

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlmodel import func, select

from api.main import create_app
from api.storage.tables import PersistedDocument
from graphql_schema.endpoint import AnswerCounts
from tests.apps import assert_same_bytes
from tests.conftest import client_for, make_settings

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
TASKS = 'query Tasks { tasks(userId: "alice") { id title } }'
CREATE = 'mutation Create { createTask(userId: "alice", input: {title: "new"}) { title } }'


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def by_hash(text: str, *, with_text: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}
    }
    if with_text:
        body["query"] = text
    return body


class Pair:
    """The compiled app and the framework-only app, over one database."""

    def __init__(self, compiled: httpx.AsyncClient, framework: httpx.AsyncClient, app: FastAPI):
        self.compiled = compiled
        self.framework = framework
        self.app = app

    @property
    def counts(self) -> AnswerCounts:
        counts: AnswerCounts = self.app.state.graphql_answers
        return counts

    async def both(
        self, body: dict[str, Any], accept: str = JSON, method: str = "POST"
    ) -> httpx.Response:
        """`body` on both apps; their answers (status, media type, bytes) must be equal."""
        answers = [await _send(client, body, accept, method) for client in self.clients]
        compiled, framework = answers
        assert_same_bytes(compiled, framework, body)
        return compiled

    @property
    def clients(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return self.compiled, self.framework

    async def stored(self) -> int:
        async with self.app.state.store.sessionmaker() as session:
            count = select(func.count()).select_from(PersistedDocument)
            return int((await session.exec(count)).one())


async def _send(
    client: httpx.AsyncClient, body: dict[str, Any], accept: str, method: str
) -> httpx.Response:
    headers = {"accept": accept}
    if method == "GET":
        params = {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in body.items()
        }
        return await client.get("/graphql", params=params, headers=headers)
    return await client.post("/graphql", json=body, headers=headers)


@contextlib.asynccontextmanager
async def pair_of(database_url: str, **settings: Any) -> AsyncIterator[Pair]:
    compiled_app = create_app(make_settings(database_url, **settings))
    framework_app = create_app(make_settings(database_url, graphql_compiled=False, **settings))
    async with (
        LifespanManager(compiled_app),
        LifespanManager(framework_app),
        client_for(compiled_app) as compiled,
        client_for(framework_app) as framework,
    ):
        yield Pair(compiled, framework, compiled_app)


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


# --- automatic persisted queries -----------------------------------------------------------


async def test_a_hash_is_unknown_then_registered_then_enough(database_url: str) -> None:
    async with pair_of(database_url) as pair:
        for accept, status in ((JSON, 200), (GRAPHQL_RESPONSE_JSON, 404)):
            missed = await pair.both(by_hash(TASKS), accept)
            assert missed.status_code == status
            assert missed.json() == {
                "errors": [
                    {
                        "message": "PersistedQueryNotFound",
                        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                    }
                ]
            }
        # The framework-only app registers it; the other process finds it in the database.
        registered = await _send(pair.framework, by_hash(TASKS, with_text=True), JSON, "POST")
        assert registered.json() == {"data": {"tasks": []}}
        assert await pair.stored() == 1
        for method in ("POST", "GET", "GET", "POST"):
            hit = await pair.both(by_hash(TASKS), JSON, method)
            assert hit.json() == {"data": {"tasks": []}}
        # Hits after the first sighting are the compiled path's own.
        before = pair.counts.compiled
        await pair.both(by_hash(TASKS), GRAPHQL_RESPONSE_JSON, "GET")
        assert pair.counts.compiled == before + 1
        assert await pair.stored() == 1


async def test_a_codegen_document_id_names_the_same_hash(database_url: str) -> None:
    async with pair_of(database_url) as pair:
        document_id = f"sha256:{sha256(TASKS)}"
        missed = await pair.both({"documentId": document_id})
        assert codes(missed) == ["PERSISTED_QUERY_NOT_FOUND"]
        registered = await pair.both({"documentId": document_id, "query": TASKS})
        assert registered.json() == {"data": {"tasks": []}}
        for body in ({"documentId": document_id}, by_hash(TASKS), {"documentId": document_id}):
            assert (await pair.both(body)).json() == {"data": {"tasks": []}}
        assert await pair.stored() == 1


async def test_a_mutation_by_hash_runs_by_post_only(database_url: str) -> None:
    async with pair_of(database_url) as pair:
        created = await pair.compiled.post("/graphql", json=by_hash(CREATE, with_text=True))
        assert created.json() == {"data": {"createTask": {"title": "new"}}}
        refused = await pair.both(by_hash(CREATE), JSON, "GET")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "POST"
        assert (await pair.compiled.post("/graphql", json=by_hash(CREATE))).json() == {
            "data": {"createTask": {"title": "new"}}
        }
        tasks = (await pair.compiled.get("/api/alice/tasks")).json()
        assert [task["title"] for task in tasks] == ["new", "new"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{ tasks(userId: ", "GRAPHQL_VALIDATION_FAILED"),  # does not parse
        ('{ tasks(userId: "a") { nope } }', "GRAPHQL_VALIDATION_FAILED"),  # does not validate
        (
            '{ tasks(userId: "a") { id } '
            + " ".join(f'a{n}: task(userId: "a", id: "x") {id}' for n in range(16))
            + " }",
            "GRAPHQL_VALIDATION_FAILED",
        ),  # over the alias limit
    ],
)
async def test_only_documents_that_pass_every_rule_are_stored(
    database_url: str, text: str, code: str
) -> None:
    async with pair_of(database_url) as pair:
        for _ in range(2):
            answer = await pair.both(by_hash(text, with_text=True), GRAPHQL_RESPONSE_JSON)
            assert answer.status_code == 400
            assert codes(answer) == [code]
        assert await pair.stored() == 0
        assert codes(await pair.both(by_hash(text))) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}, "version must be 1"),
        ({"persistedQuery": {"version": 1}}, "sha256Hash must be a string"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "ABC"}}, "SHA-256 in lowercase hex"),
        ({"persistedQuery": "abc"}, "must be an object"),
    ],
)
async def test_a_malformed_reference_is_a_400(
    database_url: str, extensions: dict[str, Any], message: str
) -> None:
    async with pair_of(database_url) as pair:
        for accept in (JSON, GRAPHQL_RESPONSE_JSON):
            answer = await pair.both({"extensions": extensions}, accept)
            assert answer.status_code == 400
            assert codes(answer) == ["BAD_REQUEST"]
            assert message in answer.json()["errors"][0]["message"]


async def test_a_text_that_does_not_match_its_hash_is_a_400(database_url: str) -> None:
    async with pair_of(database_url) as pair:
        body = by_hash(TASKS) | {"query": TASKS + " "}
        for accept in (JSON, GRAPHQL_RESPONSE_JSON):
            answer = await pair.both(body, accept)
            assert answer.status_code == 400
            assert (
                answer.json()["errors"][0]["message"] == "The query does not match its sha256Hash"
            )
        assert await pair.stored() == 0


async def test_stored_documents_are_bounded_oldest_first(database_url: str) -> None:
    documents = [f'query Q{n} {{ tasks(userId: "alice") {{ id }} }}' for n in range(3)]
    async with pair_of(database_url, graphql_persisted_max_documents=2) as pair:
        for text in documents:
            answer = await pair.framework.post("/graphql", json=by_hash(text, with_text=True))
            assert answer.json() == {"data": {"tasks": []}}
        assert await pair.stored() == 2
    # A process started afterwards knows only the two newest.
    async with pair_of(database_url, graphql_persisted_max_documents=2) as pair:
        assert codes(await pair.both(by_hash(documents[0]))) == ["PERSISTED_QUERY_NOT_FOUND"]
        for text in documents[1:]:
            assert (await pair.both(by_hash(text))).json() == {"data": {"tasks": []}}


async def test_persisted_queries_can_be_turned_off(database_url: str) -> None:
    async with pair_of(database_url, graphql_persisted_queries=False) as pair:
        answer = await pair.both(by_hash(TASKS, with_text=True))
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["message"] == "PersistedQueryNotSupported"
        assert await pair.stored() == 0


# --- trusted documents ---------------------------------------------------------------------


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A manifest as graphql-codegen's client preset writes it: {sha256: document}."""
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({sha256(TASKS): TASKS, "relay-id-1": CREATE}))
    return path


async def test_trusted_documents_run_by_id_or_text(database_url: str, manifest: Path) -> None:
    async with pair_of(database_url, graphql_trusted_documents=manifest) as pair:
        for body, method in (
            (by_hash(TASKS), "POST"),
            (by_hash(TASKS), "GET"),
            ({"documentId": sha256(TASKS)}, "POST"),
            ({"documentId": sha256(TASKS)}, "GET"),
            ({"query": TASKS}, "POST"),
            (by_hash(TASKS), "POST"),  # now compiled
        ):
            assert (await pair.both(body, JSON, method)).json() == {"data": {"tasks": []}}
        created = await pair.both({"documentId": "relay-id-1"})
        assert created.json() == {"data": {"createTask": {"title": "new"}}}
        assert pair.counts.compiled >= 2
        assert await pair.stored() == 0  # nothing is registered in trusted mode


async def test_anything_else_is_refused_before_parsing(database_url: str, manifest: Path) -> None:
    async with pair_of(database_url, graphql_trusted_documents=manifest) as pair:
        for text in ('{ tasks(userId: "alice") { id } }', "{ not even GraphQL", TASKS + " "):
            for accept, status in ((JSON, 200), (GRAPHQL_RESPONSE_JSON, 400)):
                refused = await pair.both({"query": text}, accept)
                assert refused.status_code == status
                [error] = refused.json()["errors"]
                assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
                assert error["message"].startswith("Only trusted documents are accepted")
            # Registering it by hash is refused as well, and nothing is stored.
            refused = await pair.both(by_hash(text, with_text=True))
            assert codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
        unknown = await pair.both({"documentId": "nope"}, GRAPHQL_RESPONSE_JSON)
        assert unknown.status_code == 404
        assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
        mismatch = await pair.both({"documentId": "relay-id-1", "query": TASKS})
        assert mismatch.status_code == 400
        assert await pair.stored() == 0
        # No GraphiQL: its documents would all be refused.
        page = await pair.compiled.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 400
        assert page.json()["errors"][0]["message"].startswith("GraphiQL is off")


async def test_graphiql_works_only_when_the_setting_says_so(
    database_url: str, manifest: Path
) -> None:
    settings = {"graphql_trusted_documents": manifest, "graphql_trusted_documents_graphiql": True}
    async with pair_of(database_url, **settings) as pair:
        page = await pair.compiled.get("/graphql", headers={"accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html")
        free = await pair.both({"query": '{ tasks(userId: "alice") { id } }'})
        assert free.json() == {"data": {"tasks": []}}
        assert (await pair.both(by_hash(TASKS))).json() == {"data": {"tasks": []}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("{not json", "is not JSON"),
        ('["a list"]', "must be a JSON object of document ids to document texts"),
        ('{"id": 1}', "must be a JSON object of document ids to document texts"),
    ],
)
def test_a_bad_manifest_stops_the_start(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 't.db'}", graphql_trusted_documents=path
    )
    with pytest.raises(ValueError, match=message):
        create_app(settings)
