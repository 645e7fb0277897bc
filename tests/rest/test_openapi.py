"""The OpenAPI document says what the server sends."""

from typing import Any

import httpx

TASK_ROUTES = {
    ("/api/{user_id}/tasks", "get"): "200",
    ("/api/{user_id}/tasks", "post"): "201",
    ("/api/{user_id}/tasks/{task_id}", "get"): "200",
    ("/api/{user_id}/tasks/{task_id}", "put"): "200",
    ("/api/{user_id}/tasks/{task_id}/complete", "patch"): "200",
    ("/api/{user_id}/tasks/{task_id}", "delete"): "204",
}


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


CONDITIONAL = {
    ("/api/{user_id}/tasks/{task_id}", "get"): {"304"},
    ("/api/{user_id}/tasks/{task_id}", "put"): {"412"},
    ("/api/{user_id}/tasks/{task_id}/complete", "patch"): {"412"},
    ("/api/{user_id}/tasks/{task_id}", "delete"): {"412"},
}
WITH_A_BODY = {
    ("/api/{user_id}/tasks", "post"),
    ("/api/{user_id}/tasks/{task_id}", "put"),
    ("/api/{user_id}/tasks/{task_id}/complete", "patch"),
}


async def test_every_route_documents_the_contract_errors(client: httpx.AsyncClient) -> None:
    paths = (await openapi(client))["paths"]
    for (path, method), success in TASK_ROUTES.items():
        responses = paths[path][method]["responses"]
        conditional = CONDITIONAL.get((path, method), set())
        expected = {success, "400", "500", "503"} | ({"404"} if "{task_id}" in path else set())
        if (path, method) in WITH_A_BODY:
            expected.add("413")
        assert set(responses) == expected | conditional, (path, method)
        for status in expected - {success}:
            schema = responses[status]["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
        assert "Retry-After" in responses["503"]["headers"]


async def test_no_422_anywhere(client: httpx.AsyncClient) -> None:
    document = await openapi(client)
    assert "422" not in str(document["paths"])
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_create_documents_the_location_header(client: httpx.AsyncClient) -> None:
    created = (await openapi(client))["paths"]["/api/{user_id}/tasks"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]


async def test_problem_schema_has_the_legacy_fields(client: httpx.AsyncClient) -> None:
    problem = (await openapi(client))["components"]["schemas"]["Problem"]
    assert {"title", "status", "detail", "error_type"} <= set(problem["required"])
    assert "errors" in problem["properties"]


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


class TestConditionalRequests:
    async def test_single_task_answers_document_the_etag(self, client: httpx.AsyncClient) -> None:
        paths = (await openapi(client))["paths"]
        for path, method, status in [
            ("/api/{user_id}/tasks", "post", "201"),
            ("/api/{user_id}/tasks/{task_id}", "get", "200"),
            ("/api/{user_id}/tasks/{task_id}", "get", "304"),
            ("/api/{user_id}/tasks/{task_id}", "put", "200"),
            ("/api/{user_id}/tasks/{task_id}/complete", "patch", "200"),
        ]:
            assert "ETag" in paths[path][method]["responses"][status]["headers"], (path, method)

    async def test_writes_document_if_match_and_412(self, client: httpx.AsyncClient) -> None:
        paths = (await openapi(client))["paths"]
        for (path, method), statuses in CONDITIONAL.items():
            header = "If-None-Match" if "304" in statuses else "If-Match"
            names = {p["name"] for p in paths[path][method]["parameters"] if p["in"] == "header"}
            assert header in names, (path, method)
            if "412" in statuses:
                problem = paths[path][method]["responses"]["412"]["content"]
                assert problem["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }

    async def test_304_has_no_body(self, client: httpx.AsyncClient) -> None:
        get = (await openapi(client))["paths"]["/api/{user_id}/tasks/{task_id}"]["get"]
        assert "content" not in get["responses"]["304"]

    async def test_create_documents_the_idempotency_key(self, client: httpx.AsyncClient) -> None:
        post = (await openapi(client))["paths"]["/api/{user_id}/tasks"]["post"]
        assert "Idempotency-Key" in {p["name"] for p in post["parameters"] if p["in"] == "header"}


async def test_unknown_body_fields_are_ignored_as_documented(client: httpx.AsyncClient) -> None:
    schemas = (await openapi(client))["components"]["schemas"]
    assert {
        name for name, schema in schemas.items() if schema.get("additionalProperties") is True
    } == {"TaskCreate", "TaskUpdate", "TaskCompletion"}
    unknown = {"colour": "red", "userId": "mallory", "priority": 1}
    created = await client.post("/api/alice/tasks", json={"title": "t", **unknown})
    assert created.status_code == 201
    task_url = created.headers["location"]
    updated = await client.put(task_url, json={"title": "u", **unknown})
    assert updated.status_code == 200
    completed = await client.patch(f"{task_url}/complete", json={"completed": True, **unknown})
    assert completed.status_code == 200
    answer = completed.json()
    assert (answer["title"], answer["user_id"], answer["completed"]) == ("u", "alice", True)
    assert not set(unknown) & set(answer)


async def test_the_event_stream_is_documented(client: httpx.AsyncClient) -> None:
    follow = (await openapi(client))["paths"]["/api/{user_id}/tasks/events"]["get"]
    assert set(follow["responses"]["200"]["content"]) == {"text/event-stream"}
    assert set(follow["responses"]) == {"200", "400", "410", "500", "503"}
    for status in ("400", "410", "500", "503"):
        schema = follow["responses"][status]["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}
    assert "Retry-After" in follow["responses"]["503"]["headers"]
    names = {(p["in"], p["name"]) for p in follow["parameters"]}
    assert {("path", "user_id"), ("query", "after"), ("header", "Last-Event-ID")} <= names
