"""Folded title and description: search and title order ignore case alike on every database.

Adds `title_folded` and `description_folded` (`api.tasks.shapes.fold` of each, which SQL cannot
compute the same way on every database, so existing rows are filled here in Python, in bounded
batches), and replaces the title index with one on (user_id, title_folded, id): not the title as
written too, since an index row must fit in a third of a PostgreSQL page (2704 bytes) and a long
title beside its folded form may not (ties of the folded title are sorted as a page is read). On
PostgreSQL both title columns compare with the "C" collation (code points), as SQLite does.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.tasks.shapes import fold

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows read and written per round trip while filling the new columns.
BATCH = 1000

tasks = sa.table(
    "tasks",
    sa.column("id", sa.Uuid()),
    sa.column("title", sa.String()),
    sa.column("description", sa.Text()),
    sa.column("title_folded", sa.Text()),
    sa.column("description_folded", sa.Text()),
)


def _fill_folded_columns() -> None:
    """Fold every existing task's title and description, in batches by id (keyset)."""
    bind = op.get_bind()
    last = None
    fill = (
        sa.update(tasks)
        .where(tasks.c.id == sa.bindparam("task_id"))
        .values(
            title_folded=sa.bindparam("new_title_folded"),
            description_folded=sa.bindparam("new_description_folded"),
        )
    )
    while True:
        page = sa.select(tasks.c.id, tasks.c.title, tasks.c.description).order_by(tasks.c.id)
        if last is not None:
            page = page.where(tasks.c.id > last)
        rows = bind.execute(page.limit(BATCH)).all()
        if not rows:
            return
        bind.execute(
            fill,
            [
                {
                    "task_id": row.id,
                    "new_title_folded": fold(row.title),
                    "new_description_folded": (
                        None if row.description is None else fold(row.description)
                    ),
                }
                for row in rows
            ],
        )
        last = rows[-1].id


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    binary = {"collation": "C"} if postgresql else {}
    op.drop_index("ix_tasks_user_id_title_id", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("title_folded", sa.Text(**binary), nullable=True))
        batch.add_column(sa.Column("description_folded", sa.Text(), nullable=True))
    _fill_folded_columns()
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("title_folded", existing_type=sa.Text(**binary), nullable=False)
        if postgresql:
            batch.alter_column(
                "title",
                type_=sa.String(500, collation="C"),
                existing_type=sa.String(500),
                existing_nullable=False,
            )
    op.create_index("ix_tasks_user_id_title_folded_id", "tasks", ["user_id", "title_folded", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_user_id_title_folded_id", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        if op.get_bind().dialect.name == "postgresql":
            batch.alter_column(
                "title",
                type_=sa.String(500),
                existing_type=sa.String(500, collation="C"),
                existing_nullable=False,
            )
        batch.drop_column("description_folded")
        batch.drop_column("title_folded")
    op.create_index("ix_tasks_user_id_title_id", "tasks", ["user_id", "title", "id"])
