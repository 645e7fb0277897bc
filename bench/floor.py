"""The floor beside the repository (`../shared/floor`, see its README): where it is, and what a
copy of the service's database needs before the floor creates tasks in it.

Both benchmarks that run it (`peers.py` as a server, `executor.py` in its own process) take it
from there; it is never copied into the repository.
"""

from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
# Relative to the repository's root, as the floor's README runs it (`--app-dir`).
FLOOR_APP_DIR = "../shared/floor"
FLOOR_APP = ROOT / FLOOR_APP_DIR / "app.py"


async def let_floor_create(connection: asyncpg.Connection) -> None:
    """Make the service's `tasks` table take the floor's INSERT, which names the task's own
    columns only: the search column gets a default (still written into its index); the rest of
    the table, its indexes and its outbox trigger stay the service's."""
    await connection.execute("ALTER TABLE tasks ALTER COLUMN title_folded SET DEFAULT ''")
