"""Bring the database to the newest Alembic migration, safely from many processes at once."""

from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from api.config import Settings
from api.storage.urls import engine_options

# Any constant works; it only has to be the same in every process of this service.
MIGRATION_LOCK_KEY = 7_361_222_001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "api.storage:migrations")
    return config


def migration_engine(settings: Settings) -> AsyncEngine:
    """A one-connection engine on the direct URL (a pooler cannot hold a migration's locks)."""
    options = engine_options(settings.migration_url, settings.db_connect_timeout)
    engine = create_async_engine(options.url, connect_args=options.connect_args, poolclass=NullPool)
    if options.is_sqlite:
        # pysqlite defers BEGIN until the first write; BEGIN IMMEDIATE instead takes SQLite's write
        # lock up front, so two processes migrating at once run one after the other.
        @event.listens_for(engine.sync_engine, "connect")
        def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def run_locked(engine: AsyncEngine, migrate: Callable[[Connection], None]) -> None:
    """Run `migrate` in one transaction that holds the migration lock until it commits.

    A transaction-scoped advisory lock (not a session lock) also works through a transaction-mode
    pooler, and PostgreSQL's transactional DDL makes a failed migration leave nothing behind.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(migrate)


def _upgrade_to_head(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_database(settings: Settings) -> None:
    engine = migration_engine(settings)
    try:
        await run_locked(engine, _upgrade_to_head)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    # A release step that migrates before the app starts (with TASK_API_MIGRATE_ON_STARTUP=false):
    # `python -m api.storage.migrate`, equivalent to `alembic upgrade head` beside alembic.ini.
    import asyncio

    asyncio.run(upgrade_database(Settings()))
