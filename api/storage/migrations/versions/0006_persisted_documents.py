"""Add the persisted GraphQL documents (automatic persisted queries), shared by every process.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persisted_documents",
        # The SHA-256 of the document text, in lowercase hex, as clients send it.
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Serves the trim of the oldest documents when there are too many.
    op.create_index("ix_persisted_documents_created_at", "persisted_documents", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_persisted_documents_created_at", table_name="persisted_documents")
    op.drop_table("persisted_documents")
