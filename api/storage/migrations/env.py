"""Alembic environment: used by the app at start-up and by `alembic upgrade head`."""

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import api.storage.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from api.config import Settings
from api.storage.migrate import migration_engine, run_locked

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    engine = migration_engine(Settings())
    try:
        await run_locked(engine, run_migrations)
    finally:
        await engine.dispose()


shared_connection = context.config.attributes.get("connection")
if shared_connection is not None:
    # Called by api.storage.migrate inside its locked transaction.
    run_migrations(shared_connection)
elif context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
else:
    asyncio.run(run_from_command_line())
