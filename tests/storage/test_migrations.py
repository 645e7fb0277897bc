"""Migrations 0003 and 0004 on a database that already holds tasks, on both databases."""

import uuid
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from alembic import command
from asgi_lifespan import LifespanManager

from api.main import create_app
from api.storage.migrate import alembic_config, migration_engine, run_locked
from api.tasks.shapes import fold
from tests.conftest import client_for, make_settings

# The tasks table as migration 0001 made it, before any later revision.
TASKS_0001 = sa.Table(
    "tasks",
    sa.MetaData(),
    sa.Column("id", sa.Uuid()),
    sa.Column("user_id", sa.String(255)),
    sa.Column("title", sa.String(500)),
    sa.Column("description", sa.Text()),
    sa.Column("completed", sa.Boolean()),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


async def migrate(database_url: str, revision: str, *, down: bool = False) -> None:
    def run(connection: sa.Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    engine = migration_engine(make_settings(database_url))
    try:
        await run_locked(engine, run)
    finally:
        await engine.dispose()


async def execute(database_url: str, statement: sa.Executable) -> list[sa.Row[tuple[object, ...]]]:
    engine = migration_engine(make_settings(database_url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(statement)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


class TestMigration0003:
    async def test_existing_tasks_get_version_1_and_stay_writable(self, database_url: str) -> None:
        await migrate(database_url, "0001")
        task_id = uuid.uuid4()
        now = datetime.now(UTC)
        await execute(
            database_url,
            sa.insert(TASKS_0001).values(
                id=task_id,
                user_id="alice",
                title="from before",
                description=None,
                completed=False,
                created_at=now,
                updated_at=now,
            ),
        )
        app = create_app(make_settings(database_url))  # its start-up migrates to the newest
        async with LifespanManager(app), client_for(app) as client:
            stored = await client.get(f"/api/alice/tasks/{task_id}")
            assert stored.json()["version"] == 1
            assert stored.headers["etag"] == f'"{task_id}.1"'
            changed = await client.put(
                f"/api/alice/tasks/{task_id}",
                json={"title": "after"},
                headers={"If-Match": f'"{task_id}.1"'},
            )
            assert changed.json()["version"] == 2

    async def test_version_is_not_null(self, database_url: str) -> None:
        await migrate(database_url, "head")
        engine = migration_engine(make_settings(database_url))
        try:
            async with engine.connect() as connection:
                columns = await connection.run_sync(
                    lambda sync: {c["name"]: c for c in sa.inspect(sync).get_columns("tasks")}
                )
        finally:
            await engine.dispose()
        assert columns["version"]["nullable"] is False

    async def test_downgrade_to_0001_removes_what_0003_added(self, database_url: str) -> None:
        await migrate(database_url, "head")
        await migrate(database_url, "0001", down=True)
        engine = migration_engine(make_settings(database_url))
        try:
            async with engine.connect() as connection:
                tables, columns = await connection.run_sync(
                    lambda sync: (
                        sa.inspect(sync).get_table_names(),
                        [column["name"] for column in sa.inspect(sync).get_columns("tasks")],
                    )
                )
        finally:
            await engine.dispose()
        assert "idempotency_keys" not in tables
        assert "version" not in columns
        await migrate(database_url, "head")

    async def test_app_starts_on_a_database_at_0001(self, database_url: str) -> None:
        await migrate(database_url, "0001")
        app = create_app(make_settings(database_url))
        async with LifespanManager(app), client_for(app) as client:
            response = await client.post(
                "/api/alice/tasks", json={"title": "x"}, headers={"Idempotency-Key": "k"}
            )
            assert response.status_code == 201
            assert isinstance(client, httpx.AsyncClient)


class TestMigration0004:
    async def test_existing_tasks_are_folded_in_batches(self, database_url: str) -> None:
        await migrate(database_url, "0003")
        now = datetime.now(UTC)
        count = 2500  # more than one batch of the fill
        rows = [
            {
                "id": uuid.uuid4(),
                "user_id": "alice",
                "title": f"ÄPFEL {n:04d}" if n % 2 else f"Straße {n:04d}",
                "description": "für Ömer" if n % 5 == 0 else None,
                "completed": False,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(count)
        ]
        await execute(database_url, sa.insert(TASKS_0001).values(rows))
        await migrate(database_url, "head")
        stored = await execute(
            database_url,
            sa.text("SELECT title, description, title_folded, description_folded FROM tasks"),
        )
        assert len(stored) == count
        for title, description, title_folded, description_folded in stored:
            assert title_folded == fold(title)
            assert description_folded == (None if description is None else fold(description))
        app = create_app(make_settings(database_url))
        async with LifespanManager(app), client_for(app) as client:
            found = await client.get("/api/alice/tasks", params={"search": "äpfel 0001"})
            assert [task["title"] for task in found.json()] == ["ÄPFEL 0001"]
            found = await client.get("/api/alice/tasks", params={"search": "ömer", "limit": 1000})
            assert len(found.json()) == count // 5
            first = await client.get("/api/alice/tasks", params={"sort": "title", "limit": 2})
            # Folded, "strasse" comes before "äpfel" (code points: s < ä).
            assert [task["title"] for task in first.json()] == ["Straße 0000", "Straße 0002"]

    async def test_downgrade_to_0003_and_up_again(self, database_url: str) -> None:
        await migrate(database_url, "head")
        await migrate(database_url, "0003", down=True)
        columns = await _columns(database_url)
        assert "title_folded" not in columns
        await migrate(database_url, "head")
        columns = await _columns(database_url)
        assert columns["title_folded"]["nullable"] is False


async def _columns(database_url: str) -> dict[str, dict[str, object]]:
    engine = migration_engine(make_settings(database_url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: {c["name"]: c for c in sa.inspect(sync).get_columns("tasks")}
            )
    finally:
        await engine.dispose()
