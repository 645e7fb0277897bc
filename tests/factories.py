"""Ways to make and read tasks in tests, through the app's real HTTP faces."""

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncEngine

TASK_FIELDS = "id userId title description completed createdAt updatedAt version"


async def create_task(
    client: httpx.AsyncClient, user_id: str = "alice", title: str = "Buy milk", **fields: Any
) -> dict[str, Any]:
    """Create a task through REST and return its JSON."""
    response = await client.post(f"/api/{user_id}/tasks", json={"title": title, **fields})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def graphql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    """Run a GraphQL operation over HTTP and return the whole response body."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def execute(app: FastAPI, statement: Executable) -> None:
    """Run one statement on the app's own database, in its own transaction (test set-up only)."""
    engine: AsyncEngine = app.state.store.engine
    async with engine.begin() as connection:
        await connection.execute(statement)


async def fetch_all(app: FastAPI, statement: Executable) -> list[Any]:
    """The rows one statement returns from the app's own database."""
    engine: AsyncEngine = app.state.store.engine
    async with engine.connect() as connection:
        return list((await connection.execute(statement)).all())
