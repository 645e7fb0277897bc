"""Search and title order ignore case in every alphabet, alike on SQLite, on PostgreSQL, and on
a PostgreSQL database whose locale is C; HEAD is answered wherever GET is."""

import asyncio
import base64
import hashlib
import hmac
import json
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.tasks.shapes import fold
from tests.conftest import reset_postgres
from tests.factories import create_task, graphql
from tests.tasks.test_lists import connection, walk_rest

TITLES = ["Banana", "Zed", "_under", "apple", "cherry", "Apple", "apple", "Éclair", "éclair", "Ω"]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-c-locale"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """This module's databases: SQLite, PostgreSQL, and PostgreSQL with the C locale."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}"
    fixture = "postgres_url" if request.param == "postgresql" else "postgres_c_locale_url"
    url: str = request.getfixturevalue(fixture)
    asyncio.run(reset_postgres(url))
    return url


async def search_rest(client: httpx.AsyncClient, search: str) -> list[str]:
    response = await client.get("/api/alice/tasks", params={"search": search})
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()]


async def search_graphql(
    client: httpx.AsyncClient, search: str
) -> tuple[list[str], list[str], int]:
    body = await graphql(
        client,
        """query($filter: TaskFilter) {
          tasks(userId: "alice", filter: $filter) { title }
          tasksConnection(userId: "alice", filter: $filter) { totalCount nodes { title } }
        }""",
        filter={"search": search},
    )
    data = body["data"]
    listed = [task["title"] for task in data["tasks"]]
    paged = [task["title"] for task in data["tasksConnection"]["nodes"]]
    return listed, paged, data["tasksConnection"]["totalCount"]


class TestFold:
    def test_one_rule_for_every_alphabet(self) -> None:
        assert fold("Äpfel") == fold("äpfel")
        assert fold("ΣΟΦΙΑ") == fold("σοφια") == fold("σοφιας")[:5]
        assert fold("STRASSE") == fold("Straße") == "strasse"
        assert fold("e\u0301") == fold("\u00e9") == "\u00e9"
        # NFC, not NFKC: compatibility characters stay themselves.
        assert fold("²") != fold("2")
        assert unicodedata.is_normalized("NFC", fold("ǰ\u0323"))


class TestSearch:
    @pytest.mark.parametrize(
        ("search", "title", "description"),
        [
            ("äpfel", "Äpfel kaufen", None),
            ("ÖMER", "Besuch", "für Ömer"),
            ("σοφια", "ΣΟΦΙΑ", None),
            ("straße", "STRASSE fegen", None),
            ("STRASSE", "Straße fegen", None),
            ("caf\u00e9", "CAFE\u0301 au lait", None),
            ("cafe\u0301", "Caf\u00e9 noir", None),
        ],
    )
    async def test_finds_across_case_and_normal_forms(
        self, client: httpx.AsyncClient, search: str, title: str, description: str | None
    ) -> None:
        await create_task(client, title=title, description=description)
        await create_task(client, title="something else", description="entirely")
        assert await search_rest(client, search) == [title]
        assert await search_graphql(client, search) == ([title], [title], 1)

    async def test_updates_keep_the_folded_text(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, title="plain", description="nothing")
        response = await client.put(
            f"/api/alice/tasks/{task['id']}", json={"title": "ÄPFEL", "description": "ΣΟΦΙΑ"}
        )
        assert response.status_code == 200
        assert "title_folded" not in response.json()
        assert await search_rest(client, "äpfel") == ["ÄPFEL"]
        assert await search_rest(client, "σοφια") == ["ÄPFEL"]
        assert await search_rest(client, "plain") == []
        await client.put(f"/api/alice/tasks/{task['id']}", json={"description": None})
        assert await search_rest(client, "σοφια") == []

    async def test_idempotent_create_is_searchable(self, client: httpx.AsyncClient) -> None:
        for _ in range(2):
            response = await client.post(
                "/api/alice/tasks", json={"title": "Ärger"}, headers={"Idempotency-Key": "k-1"}
            )
            assert response.status_code == 201
            assert set(response.json()) == {
                "id", "user_id", "title", "description", "completed", "created_at",
                "updated_at", "version",
            }  # fmt: skip
        assert await search_rest(client, "ärger") == ["Ärger"]

    @pytest.mark.parametrize(("search", "match"), [("50%", "50% off"), ("a_b", "a_b c"),
                                                  ("C:\\Ü", "c:\\ü dir")])  # fmt: skip
    async def test_wildcards_and_backslashes_match_themselves(
        self, client: httpx.AsyncClient, search: str, match: str
    ) -> None:
        await create_task(client, title=match)
        await create_task(client, title="500 off axb c:/ü")
        assert await search_rest(client, search) == [match]


class TestTitleOrder:
    async def test_order_ignores_case_ties_by_title_then_id(
        self, client: httpx.AsyncClient
    ) -> None:
        created = [await create_task(client, title=title) for title in TITLES]
        expected = sorted(created, key=lambda t: (fold(t["title"]), t["title"], t["id"]))
        listed = (await client.get("/api/alice/tasks", params={"sort": "title"})).json()
        assert [t["id"] for t in listed] == [t["id"] for t in expected]
        # Code points put `_` before letters; ties in the folded title go by the title as written.
        assert [t["title"] for t in listed] == [
            "_under", "Apple", "apple", "apple", "Banana", "cherry", "Zed", "Éclair", "éclair", "Ω",
        ]  # fmt: skip
        backward = (await client.get("/api/alice/tasks", params={"sort": "-title"})).json()
        assert [t["id"] for t in backward] == [t["id"] for t in reversed(expected)]

    @pytest.mark.parametrize("sort", ["title", "-title"])
    async def test_rest_pages_follow_the_order(self, client: httpx.AsyncClient, sort: str) -> None:
        for title in TITLES * 2:
            await create_task(client, title=title)
        everything = (await client.get("/api/alice/tasks", params={"sort": sort})).json()
        ids, pages = await walk_rest(client, f"/api/alice/tasks?sort={sort}&limit=3")
        assert ids == [t["id"] for t in everything]
        assert pages == 7

    @pytest.mark.parametrize("direction", ["ASC", "DESC"])
    async def test_connection_pages_forward_and_backward(
        self, client: httpx.AsyncClient, direction: str
    ) -> None:
        for title in TITLES * 2:
            await create_task(client, title=title)
        order = {"field": "TITLE", "direction": direction}
        whole = (await connection(client, first=100, orderBy=order))["data"]["tasksConnection"]
        expected = [edge["node"]["id"] for edge in whole["edges"]]
        forward: list[str] = []
        after = None
        while True:
            page = (await connection(client, first=3, after=after, orderBy=order))["data"][
                "tasksConnection"
            ]
            forward += [edge["node"]["id"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert forward == expected
        backward: list[str] = []
        before = None
        while True:
            page = (await connection(client, last=4, before=before, orderBy=order))["data"][
                "tasksConnection"
            ]
            backward = [edge["node"]["id"] for edge in page["edges"]] + backward
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        assert backward == expected

    async def test_a_cursor_made_before_folding_still_reads_on(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        for title in ["b", "A", "a", "C"]:
            await create_task(client, title=title)
        listed = (await client.get("/api/alice/tasks", params={"sort": "title"})).json()
        boundary = listed[1]
        # The earlier cursor held the title alone as its key.
        payload = json.dumps(
            [1, "title:asc", boundary["title"], boundary["id"]], separators=(",", ":")
        ).encode()
        key = app.state.tasks.cursors._key
        if key is None:
            await client.get("/api/alice/tasks", params={"sort": "title", "limit": 1})
            key = app.state.tasks.cursors._key
        mac = hmac.new(key, b"alice\x00" + payload, hashlib.sha256).digest()[:16]

        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        response = await client.get(
            "/api/alice/tasks",
            params={"sort": "title", "limit": 10, "cursor": f"{b64(payload)}.{b64(mac)}"},
        )
        assert response.status_code == 200, response.text
        assert [t["id"] for t in response.json()] == [t["id"] for t in listed[2:]]


class TestHead:
    @staticmethod
    async def both(client: httpx.AsyncClient, url: str, **headers: str) -> list[Any]:
        # One request id for both, so that every header must be the same (it is echoed).
        headers = {"X-Request-ID": "head-and-get", **headers}
        get = await client.get(url, headers=headers)
        head = await client.head(url, headers=headers)
        assert head.content == b""
        assert head.status_code == get.status_code
        assert dict(head.headers) == dict(get.headers)
        return [get, head]

    async def test_head_mirrors_get_on_both_routes(self, client: httpx.AsyncClient) -> None:
        task = await create_task(client, title="Äpfel")
        url = f"/api/alice/tasks/{task['id']}"
        get, head = await self.both(client, url)
        assert head.status_code == 200
        assert head.headers["etag"] == get.headers["etag"]
        assert int(head.headers["content-length"]) == len(get.content) > 0
        _, head = await self.both(client, url, **{"If-None-Match": get.headers["etag"]})
        assert head.status_code == 304
        _, head = await self.both(client, "/api/alice/tasks/00000000-0000-0000-0000-000000000000")
        assert head.status_code == 404
        _, head = await self.both(client, "/api/alice/tasks?search=äpfel&limit=1")
        assert head.status_code == 200
        _, head = await self.both(client, "/api/alice/tasks?limit=0")
        assert head.status_code == 400


@pytest.mark.parametrize(
    "title",
    [
        "".join(chr(0x4E00 + n * 37) for n in range(500)),  # CJK, 3 bytes each
        "".join(chr(0x1F300 + n % 700) for n in range(500)),  # emoji, 4 bytes each
        "".join(chr(0x1F80 + n % 48) for n in range(500)),  # folds to 5 bytes from 3
        "և" * 500,  # folds to twice its bytes
    ],
    ids=["cjk", "emoji", "greek-iota-subscript", "armenian-ligature"],
)
async def test_the_longest_titles_fit_their_index(client: httpx.AsyncClient, title: str) -> None:
    user = "u" * 255
    task = await create_task(client, user_id=user, title=title)
    listed = (await client.get(f"/api/{user}/tasks", params={"sort": "title", "limit": 5})).json()
    assert [t["id"] for t in listed] == [task["id"]]
    found = (await client.get(f"/api/{user}/tasks", params={"search": title[-3:].upper()})).json()
    assert [t["id"] for t in found] == [task["id"]]
