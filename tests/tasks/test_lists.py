"""Filtered, ordered and paged lists on both faces, on both databases."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from api.storage.tables import Task
from api.tasks.shapes import folded_columns
from tests.factories import TASK_FIELDS, create_task, error_codes, graphql

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
GRAPHQL_ORDERS = {
    "created_at": ("CREATED_AT", "ASC"),
    "-created_at": ("CREATED_AT", "DESC"),
    "updated_at": ("UPDATED_AT", "ASC"),
    "-updated_at": ("UPDATED_AT", "DESC"),
    "title": ("TITLE", "ASC"),
    "-title": ("TITLE", "DESC"),
}


async def seed(app: FastAPI, user_id: str, count: int) -> list[Task]:
    """Tasks with many ties in every sort key, so only the id makes each order total."""
    tasks = []
    for n in range(count):
        text = {
            "title": f"task {n % 40:02d}",
            "description": "Buy MILK" if n % 5 == 0 else f"note {n}",
        }
        tasks.append(
            Task(
                user_id=user_id,
                **text,
                **folded_columns(text),
                completed=n % 3 == 0,
                created_at=BASE_TIME + timedelta(seconds=n // 3),
                updated_at=BASE_TIME + timedelta(seconds=(n * 7) % 50),
            )
        )
    async with app.state.store.sessionmaker() as session:
        session.add_all(tasks)
        await session.commit()
    return tasks


def expected_ids(tasks: list[Task], sort: str) -> list[str]:
    field = sort.removeprefix("-")
    ordered = sorted(tasks, key=lambda task: (getattr(task, field), str(task.id)))
    if sort.startswith("-"):
        ordered.reverse()
    return [str(task.id) for task in ordered]


async def walk_rest(client: httpx.AsyncClient, url: str) -> tuple[list[str], int]:
    """Follow `Link: rel="next"` from `url`; return every id seen and the number of pages."""
    ids: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        ids += [task["id"] for task in response.json()]
        pages += 1
        assert pages < 1000
        next_url = response.links.get("next", {}).get("url")
    return ids, pages


class TestRestLegacyList:
    async def test_no_parameters_returns_everything_oldest_first(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 30)
        response = await client.get("/api/alice/tasks")
        assert [task["id"] for task in response.json()] == expected_ids(tasks, "created_at")
        assert "link" not in response.headers


class TestRestFilters:
    async def test_completed_filters_both_ways(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 30)
        for value, wanted in [("true", True), ("false", False)]:
            listed = (await client.get(f"/api/alice/tasks?completed={value}")).json()
            assert {t["id"] for t in listed} == {str(t.id) for t in tasks if t.completed == wanted}
            assert all(task["completed"] is wanted for task in listed)

    async def test_search_is_case_insensitive_over_title_and_description(
        self, client: httpx.AsyncClient
    ) -> None:
        in_title = await create_task(client, title="Oat MILK")
        in_description = await create_task(client, title="Groceries", description="some milk")
        await create_task(client, title="Bread", description="butter")
        listed = (await client.get("/api/alice/tasks", params={"search": "mIlK"})).json()
        assert [task["id"] for task in listed] == [in_title["id"], in_description["id"]]

    @pytest.mark.parametrize(
        ("search", "match"),
        [("%", "100% done"), ("_", "a_b"), ("\\", "c\\d"), ("/", "e/f"), ("/%", "g/%h")],
    )
    async def test_wildcards_match_themselves(
        self, client: httpx.AsyncClient, search: str, match: str
    ) -> None:
        wanted = await create_task(client, title=match)
        await create_task(client, title="plain words")
        listed = (await client.get("/api/alice/tasks", params={"search": search})).json()
        assert [task["id"] for task in listed] == [wanted["id"]]

    async def test_empty_search_is_no_search(self, client: httpx.AsyncClient) -> None:
        first = await create_task(client, title="one")
        second = await create_task(client, title="two")
        listed = (await client.get("/api/alice/tasks?search=")).json()
        assert [task["id"] for task in listed] == [first["id"], second["id"]]

    async def test_filters_combine(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        tasks = await seed(app, "alice", 30)
        listed = (await client.get("/api/alice/tasks?completed=true&search=milk")).json()
        wanted = {str(t.id) for t in tasks if t.completed and "MILK" in (t.description or "")}
        assert {task["id"] for task in listed} == wanted
        assert wanted

    async def test_other_users_tasks_never_match(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await seed(app, "bob", 20)
        assert (await client.get("/api/alice/tasks?search=milk&limit=5")).json() == []


class TestRestOrderAndPages:
    @pytest.mark.parametrize("sort", SORTS)
    async def test_sort_orders_with_id_breaking_ties(
        self, app: FastAPI, client: httpx.AsyncClient, sort: str
    ) -> None:
        tasks = await seed(app, "alice", 60)
        listed = (await client.get(f"/api/alice/tasks?sort={sort}")).json()
        assert [task["id"] for task in listed] == expected_ids(tasks, sort)

    @pytest.mark.parametrize("sort", SORTS)
    async def test_following_links_walks_the_list_once(
        self, app: FastAPI, client: httpx.AsyncClient, sort: str
    ) -> None:
        tasks = await seed(app, "alice", 250)
        ids, pages = await walk_rest(client, f"/api/alice/tasks?sort={sort}&limit=17")
        assert ids == expected_ids(tasks, sort)
        assert pages == 15  # 14 full pages and one of 12: no empty page at the end

    async def test_filtered_walk_keeps_the_filter(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 120)
        ids, _ = await walk_rest(
            client, "/api/alice/tasks?completed=false&search=note&sort=-title&limit=9"
        )
        matching = [t for t in tasks if not t.completed and "note" in (t.description or "")]
        assert ids == expected_ids(matching, "-title")

    async def test_link_carries_every_parameter_and_the_cursor(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await seed(app, "alice", 30)
        response = await client.get(
            "/api/alice/tasks?completed=false&search=note&sort=-updated_at&limit=3"
        )
        assert response.headers["link"].endswith('>; rel="next"')
        query = parse_qs(urlsplit(response.links["next"]["url"]).query)
        assert query["completed"] == ["false"]
        assert query["search"] == ["note"]
        assert query["sort"] == ["-updated_at"]
        assert query["limit"] == ["3"]
        assert query["cursor"][0]

    async def test_no_link_when_nothing_follows(self, client: httpx.AsyncClient) -> None:
        await create_task(client)
        response = await client.get("/api/alice/tasks?limit=1")
        assert len(response.json()) == 1
        assert "link" not in response.headers

    async def test_inserts_and_deletes_between_pages_lose_nothing(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 40)
        ordered = expected_ids(tasks, "title")
        first = await client.get("/api/alice/tasks?sort=title&limit=10")
        seen = [task["id"] for task in first.json()]
        # Delete the page's last task (the cursor's boundary) and one not yet seen; add new ones.
        deleted = {seen[-1], ordered[25]}
        for task_id in deleted:
            assert (await client.delete(f"/api/alice/tasks/{task_id}")).status_code == 204
        added = [await create_task(client, title=f"task {n:02d}") for n in (0, 20, 39)]
        rest, _ = await walk_rest(client, first.links["next"]["url"])
        survivors = [task_id for task_id in ordered if task_id not in deleted]
        assert seen[:-1] + [i for i in rest if i in survivors] == survivors
        assert len(rest) == len(set(rest))
        assert not set(seen) & set(rest)
        # New tasks past the boundary show up; the one before it belongs to a page already read.
        assert [task["id"] in rest for task in added] == [False, True, True]


class TestRestBadParameters:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("completed=maybe", "completed"),
            ("completed=1", "completed"),
            ("sort=priority", "sort"),
            ("sort=--title", "sort"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            (f"search={'x' * 501}", "search"),
            ("search=%00", "search"),
            ("cursor=garbage", "cursor"),
            ("cursor=a.b.c", "cursor"),
            ("cursor=", "cursor"),
        ],
    )
    async def test_is_400_validation_error(
        self, client: httpx.AsyncClient, query: str, field: str
    ) -> None:
        response = await client.get(f"/api/alice/tasks?{query}")
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error_type"] == "ValidationError"
        assert field in {error["field"] for error in body["errors"]}

    async def next_cursor(self, client: httpx.AsyncClient, url: str) -> str:
        response = await client.get(url)
        return parse_qs(urlsplit(response.links["next"]["url"]).query)["cursor"][0]

    async def test_tampered_cursor_is_400(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        await seed(app, "alice", 10)
        cursor = await self.next_cursor(client, "/api/alice/tasks?limit=2")
        payload, mac = cursor.split(".")
        flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
        for forged in [f"{flipped}.{mac}", f"{payload}.{mac[:-1]}", f"{payload}."]:
            response = await client.get("/api/alice/tasks", params={"limit": 2, "cursor": forged})
            assert response.status_code == 400, forged
            assert response.json()["error_type"] == "ValidationError"

    async def test_cursor_of_another_order_is_400(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await seed(app, "alice", 10)
        cursor = await self.next_cursor(client, "/api/alice/tasks?limit=2&sort=title")
        for sort in ["-title", "created_at", "updated_at"]:
            response = await client.get(
                "/api/alice/tasks", params={"limit": 2, "cursor": cursor, "sort": sort}
            )
            assert response.status_code == 400
            assert response.json()["errors"][0]["field"] == "cursor"

    async def test_cursor_of_another_user_is_400(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await seed(app, "alice", 10)
        await seed(app, "mallory", 10)
        cursor = await self.next_cursor(client, "/api/alice/tasks?limit=2")
        response = await client.get("/api/mallory/tasks", params={"limit": 2, "cursor": cursor})
        assert response.status_code == 400
        assert response.json()["error_type"] == "ValidationError"


async def connection(
    client: httpx.AsyncClient, user_id: str = "alice", **arguments: Any
) -> dict[str, Any]:
    query = f"""
    query Page($userId: String!, $filter: TaskFilter, $orderBy: TaskOrder,
               $first: Int, $after: String, $last: Int, $before: String) {{
      tasksConnection(userId: $userId, filter: $filter, orderBy: $orderBy,
                      first: $first, after: $after, last: $last, before: $before) {{
        edges {{ cursor node {{ {TASK_FIELDS} }} }}
        nodes {{ id }}
        pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
      }}
    }}"""
    return await graphql(client, query, userId=user_id, **arguments)


def order_arg(sort: str) -> dict[str, str]:
    field, direction = GRAPHQL_ORDERS[sort]
    return {"field": field, "direction": direction}


class TestGraphQLTasksArguments:
    async def test_without_arguments_everything_oldest_first(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 25)
        body = await graphql(client, 'query { tasks(userId: "alice") { id } }')
        assert [t["id"] for t in body["data"]["tasks"]] == expected_ids(tasks, "created_at")

    @pytest.mark.parametrize("sort", SORTS)
    async def test_filter_order_and_limit(
        self, app: FastAPI, client: httpx.AsyncClient, sort: str
    ) -> None:
        tasks = await seed(app, "alice", 60)
        body = await graphql(
            client,
            """query($filter: TaskFilter, $orderBy: TaskOrder, $limit: Int) {
                 tasks(userId: "alice", filter: $filter, orderBy: $orderBy, limit: $limit) { id }
               }""",
            filter={"completed": False, "search": "NOTE"},
            orderBy=order_arg(sort),
            limit=10,
        )
        matching = [t for t in tasks if not t.completed and "note" in (t.description or "")]
        assert [t["id"] for t in body["data"]["tasks"]] == expected_ids(matching, sort)[:10]

    async def test_order_defaults_to_created_at_ascending(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 20)
        body = await graphql(
            client, 'query { tasks(userId: "alice", orderBy: {direction: DESC}) { id } }'
        )
        assert [t["id"] for t in body["data"]["tasks"]] == expected_ids(tasks, "-created_at")

    @pytest.mark.parametrize("limit", [0, -1, 1001])
    async def test_limit_out_of_range_is_bad_user_input(
        self, client: httpx.AsyncClient, limit: int
    ) -> None:
        body = await graphql(
            client,
            'query($limit: Int) { tasks(userId: "alice", limit: $limit) { id } }',
            limit=limit,
        )
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert "limit" in body["errors"][0]["message"]


class TestGraphQLConnection:
    @pytest.mark.parametrize("sort", SORTS)
    async def test_forward_walk_visits_every_task_once(
        self, app: FastAPI, client: httpx.AsyncClient, sort: str
    ) -> None:
        tasks = await seed(app, "alice", 230)
        ids: list[str] = []
        after = None
        for _ in range(100):
            body = await connection(client, orderBy=order_arg(sort), first=23, after=after)
            page = body["data"]["tasksConnection"]
            ids += [edge["node"]["id"] for edge in page["edges"]]
            assert page["nodes"] == [{"id": edge["node"]["id"]} for edge in page["edges"]]
            assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert ids == expected_ids(tasks, sort)

    @pytest.mark.parametrize("sort", SORTS)
    async def test_backward_walk_visits_every_task_once(
        self, app: FastAPI, client: httpx.AsyncClient, sort: str
    ) -> None:
        tasks = await seed(app, "alice", 230)
        ids: list[str] = []
        before = None
        for _ in range(100):
            body = await connection(client, orderBy=order_arg(sort), last=23, before=before)
            page = body["data"]["tasksConnection"]
            ids = [edge["node"]["id"] for edge in page["edges"]] + ids
            assert page["pageInfo"]["hasNextPage"] is (before is not None)
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        assert ids == expected_ids(tasks, sort)

    async def test_cursors_are_the_edges_positions(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 20)
        page = (await connection(client, first=5))["data"]["tasksConnection"]
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        third = page["edges"][2]["cursor"]
        following = (await connection(client, first=2, after=third))["data"]["tasksConnection"]
        assert [e["node"]["id"] for e in following["edges"]] == expected_ids(tasks, "created_at")[
            3:5
        ]

    async def test_default_page_is_50(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        await seed(app, "alice", 60)
        page = (await connection(client))["data"]["tasksConnection"]
        assert len(page["edges"]) == 50
        assert page["pageInfo"]["hasNextPage"] is True

    async def test_empty_list(self, client: httpx.AsyncClient) -> None:
        page = (await connection(client, first=5))["data"]["tasksConnection"]
        assert page == {
            "edges": [],
            "nodes": [],
            "pageInfo": {
                "hasNextPage": False,
                "hasPreviousPage": False,
                "startCursor": None,
                "endCursor": None,
            },
        }

    async def test_total_count_counts_the_filtered_set(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 40)
        await seed(app, "bob", 10)
        body = await graphql(
            client,
            """query($filter: TaskFilter) {
                 tasksConnection(userId: "alice", filter: $filter, first: 3) {
                   totalCount edges { cursor }
                 }
               }""",
            filter={"completed": True},
        )
        assert body["data"]["tasksConnection"]["totalCount"] == sum(t.completed for t in tasks)
        assert len(body["data"]["tasksConnection"]["edges"]) == 3

    @pytest.mark.parametrize(
        "arguments",
        [
            {"first": 0},
            {"first": 101},
            {"last": 0},
            {"last": 101},
            {"first": 2, "last": 2},
            {"first": 2, "after": "garbage"},
            {"last": 2, "before": "x.y"},
            {"filter": {"search": "a\u0000"}},
        ],
    )
    async def test_bad_arguments_are_bad_user_input(
        self, client: httpx.AsyncClient, arguments: dict[str, Any]
    ) -> None:
        body = await connection(client, **arguments)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body["data"] is None

    async def test_cursor_of_another_user_or_order_is_bad_user_input(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await seed(app, "alice", 10)
        await seed(app, "mallory", 10)
        cursor = (await connection(client, first=2))["data"]["tasksConnection"]["pageInfo"][
            "endCursor"
        ]
        foreign = await connection(client, "mallory", first=2, after=cursor)
        other_order = await connection(client, first=2, after=cursor, orderBy=order_arg("title"))
        assert error_codes(foreign) == ["BAD_USER_INPUT"]
        assert error_codes(other_order) == ["BAD_USER_INPUT"]

    async def test_rest_and_graphql_cursors_are_interchangeable(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tasks = await seed(app, "alice", 10)
        response = await client.get("/api/alice/tasks?limit=4&sort=-updated_at")
        cursor = parse_qs(urlsplit(response.links["next"]["url"]).query)["cursor"][0]
        page = await connection(client, first=3, after=cursor, orderBy=order_arg("-updated_at"))
        ids = [edge["node"]["id"] for edge in page["data"]["tasksConnection"]["edges"]]
        assert ids == expected_ids(tasks, "-updated_at")[4:7]


def test_seed_ids_are_uuids() -> None:
    assert uuid.UUID(str(Task(user_id="u", title="t").id))
