"""Indexes for every list order, and the stored key that signs list cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Within one user, each order reads a page straight from an index, never by sorting.
    op.create_index("ix_tasks_user_id_updated_at_id", "tasks", ["user_id", "updated_at", "id"])
    op.create_index("ix_tasks_user_id_title_id", "tasks", ["user_id", "title", "id"])
    service_secrets = op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )
    # Made once per database, so every process and instance over it signs cursors alike.
    op.bulk_insert(service_secrets, [{"name": "cursor_key", "value": secrets.token_urlsafe(32)}])


def downgrade() -> None:
    op.drop_table("service_secrets")
    op.drop_index("ix_tasks_user_id_title_id", table_name="tasks")
    op.drop_index("ix_tasks_user_id_updated_at_id", table_name="tasks")
