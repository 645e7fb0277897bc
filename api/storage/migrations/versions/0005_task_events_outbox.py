"""The task events outbox: every committed change of a task, numbered per user, written by trigger.

`task_events` holds one row per change (created, updated, deleted) with the task as it is after
the change (before it, for a deletion); `task_event_heads` holds each user's last event number.
Triggers on `tasks` write both in the transaction of the change itself, whichever statement or
process made it (the ORM, the asyncpg hot path, a manual fix in psql), so an event exists exactly
when its change committed. Bumping the user's head row locks it until commit, so one user's
events commit in the order of their numbers and the numbers have no gaps; readers rely on both.
An UPDATE that changes nothing (the version stays) makes no event.

The wake-up of other processes (PostgreSQL's NOTIFY) is not sent from here but after the
commit, by the writing process's LISTEN connection (`api.storage.events.Notifications`): a
NOTIFY inside the writing transaction holds PostgreSQL's global notification lock through that
transaction's commit and its WAL flush, so every writing transaction would commit one after
another (measured here: creates fell from about 3,000 to 500 a second). After the commit, the
NOTIFY is a transaction of its own that writes nothing, and holds that lock only for a moment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TASK_COLUMNS = "id, title, description, completed, created_at, updated_at, version"
EVENT_COLUMNS = (
    "user_id, seq, kind, at, task_id, title, description, completed, created_at, updated_at, "
    "version"
)

POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION record_task_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed tasks%ROWTYPE;
    event_kind text;
    next_seq bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
        event_kind := 'deleted';
    ELSIF TG_OP = 'INSERT' THEN
        changed := NEW;
        event_kind := 'created';
    ELSE
        changed := NEW;
        event_kind := 'updated';
    END IF;
    INSERT INTO task_event_heads AS head (user_id, last_seq) VALUES (changed.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET last_seq = head.last_seq + 1
        RETURNING head.last_seq INTO next_seq;
    INSERT INTO task_events ({EVENT_COLUMNS})
    VALUES (changed.user_id, next_seq, event_kind, clock_timestamp(), changed.id, changed.title,
            changed.description, changed.completed, changed.created_at, changed.updated_at,
            changed.version);
    RETURN NULL;
END
$$
"""


def _sqlite_trigger(name: str, when: str, kind: str, row: str) -> str:
    """A SQLite trigger: bump the user's head, then write the event numbered by it."""
    values = ", ".join(f"{row}.{column.strip()}" for column in TASK_COLUMNS.split(","))
    # An UPDATE that changed nothing keeps the version, and makes no event.
    condition = " WHEN OLD.version IS NOT NEW.version" if kind == "updated" else ""
    return f"""
CREATE TRIGGER {name} {when} ON tasks FOR EACH ROW{condition}
BEGIN
    INSERT OR IGNORE INTO task_event_heads (user_id, last_seq) VALUES ({row}.user_id, 0);
    UPDATE task_event_heads SET last_seq = last_seq + 1 WHERE user_id = {row}.user_id;
    INSERT INTO task_events ({EVENT_COLUMNS})
    SELECT {row}.user_id, last_seq, '{kind}', strftime('%Y-%m-%d %H:%M:%f', 'now'), {values}
    FROM task_event_heads WHERE user_id = {row}.user_id;
END
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    binary = {"collation": "C"} if postgresql else {}
    op.create_table(
        "task_event_heads",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "task_events",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(500, **binary), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    # Serves the retention purge, oldest first.
    op.create_index("ix_task_events_at", "task_events", ["at"])
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(
            "CREATE TRIGGER task_events_on_insert_or_delete AFTER INSERT OR DELETE ON tasks "
            "FOR EACH ROW EXECUTE FUNCTION record_task_event()"
        )
        op.execute(
            "CREATE TRIGGER task_events_on_update AFTER UPDATE ON tasks FOR EACH ROW "
            "WHEN (OLD.version IS DISTINCT FROM NEW.version) "
            "EXECUTE FUNCTION record_task_event()"
        )
    else:
        op.execute(_sqlite_trigger("task_events_on_insert", "AFTER INSERT", "created", "NEW"))
        op.execute(_sqlite_trigger("task_events_on_update", "AFTER UPDATE", "updated", "NEW"))
        op.execute(_sqlite_trigger("task_events_on_delete", "AFTER DELETE", "deleted", "OLD"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER task_events_on_update ON tasks")
        op.execute("DROP TRIGGER task_events_on_insert_or_delete ON tasks")
        op.execute("DROP FUNCTION record_task_event()")
    else:
        for name in ("task_events_on_insert", "task_events_on_update", "task_events_on_delete"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_task_events_at", table_name="task_events")
    op.drop_table("task_events")
    op.drop_table("task_event_heads")
