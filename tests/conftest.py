"""Fixtures: every behaviour test runs on SQLite and on PostgreSQL, against the real app.

PostgreSQL comes from TEST_DATABASE_URL (default: the local server's `test` database). The suite
makes its own scratch database there and drops it at the end, so it never touches other data.
Where no PostgreSQL answers, the PostgreSQL half skips with the reason, except under CI=true,
where that is a failure.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from api.config import Settings
from api.main import create_app

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _asyncpg_dsn(url: str) -> str:
    """A plain libpq DSN for asyncpg from any SQLAlchemy-style PostgreSQL URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _create_scratch_database(admin_dsn: str, name: str, options: str = "") -> None:
    connection = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}" {options}')
    finally:
        await connection.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this test run, as a URL the app accepts."""
    yield from _scratch_postgres("task_api_test")


@pytest.fixture(scope="session")
def postgres_c_locale_url() -> Iterator[str]:
    """A scratch PostgreSQL database whose locale is C (LC_CTYPE and LC_COLLATE), beside the
    other: there the database knows no case beyond ASCII and sorts by bytes."""
    yield from _scratch_postgres(
        "task_api_test_c",
        "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
    )


def _scratch_postgres(prefix: str, options: str = "") -> Iterator[str]:
    base_url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    admin_dsn = _asyncpg_dsn(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_create_scratch_database(admin_dsn, name, options))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL at TEST_DATABASE_URL is not reachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{reason}; under CI=true the PostgreSQL tests must run")
        pytest.skip(reason)
    try:
        yield _with_database(base_url, name)
    finally:
        asyncio.run(_drop_database(admin_dsn, name))


async def reset_postgres(url: str) -> None:
    """An empty database: the app's start-up migration builds the schema again."""
    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `postgres` every test that runs on PostgreSQL: the `postgresql` half of the
    `database_url` parametrisation, and every test that takes the `postgres_url` fixture."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        if on_postgres or "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean database of each kind, as a URL (the migration has not run yet)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}"
    url: str = request.getfixturevalue("postgres_url")
    # A sync fixture, so no event loop runs yet and the session fixture above may use one.
    asyncio.run(reset_postgres(url))
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: no .env file and no environment leaks in beyond what is given."""
    return Settings(_env_file=None, database_url=database_url, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http_client:
        yield http_client
