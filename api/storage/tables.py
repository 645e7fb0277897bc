"""The tables: tasks, idempotency keys, persisted GraphQL documents and the task events
outbox (`service_secrets`, made by the first migration, holds the cursor key and is read by
the service with a plain statement).

Column lengths are the domain's limits, so a value the rules accept always fits.
"""

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from api.storage.columns import UTCDateTime, utcnow
from api.tasks.shapes import IDEMPOTENCY_KEY_MAX, TITLE_MAX, USER_ID_MAX

# Title order compares code points on every database: SQLite's default (BINARY) does, PostgreSQL
# does with the "C" collation, whatever the database's locale.
BINARY_TITLE = String(TITLE_MAX).with_variant(String(TITLE_MAX, collation="C"), "postgresql")
BINARY_TEXT = Text().with_variant(Text(collation="C"), "postgresql")


class Task(SQLModel, table=True):
    """A stored task (table `tasks`); written only by the service."""

    __tablename__ = "tasks"
    # One index per list order (see the migrations), each serving one user's pages.
    __table_args__ = (
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_updated_at_id", "user_id", "updated_at", "id"),
        # Not the title as written too: an index row must fit in a third of a PostgreSQL page
        # (2704 bytes), and a 500-character title beside its folded form can outgrow that.
        Index("ix_tasks_user_id_title_folded_id", "user_id", "title_folded", "id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: str = Field(sa_column=Column(String(USER_ID_MAX), nullable=False))
    title: str = Field(sa_column=Column(BINARY_TITLE, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # `api.tasks.shapes.fold` of title and description, kept by the service on every write: search
    # and the title order compare these, so case is ignored alike on every database.
    title_folded: str = Field(sa_column=Column(BINARY_TEXT, nullable=False))
    description_folded: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed: bool = Field(default=False, nullable=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    # Optimistic concurrency: 1 on creation, +1 on every write that changes the task.
    version: int = Field(
        default=1, sa_column=Column(Integer, nullable=False, server_default=text("1"))
    )


class IdempotencyKey(SQLModel, table=True):
    """A keyed create (table `idempotency_keys`), kept so that a retry answers as the first did."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    user_id: str = Field(sa_column=Column(String(USER_ID_MAX), primary_key=True))
    key: str = Field(sa_column=Column(String(IDEMPOTENCY_KEY_MAX), primary_key=True))
    # sha256 of the validated request, so the same key with another body is told apart.
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    task_id: UUID = Field(nullable=False)
    # The task as the first request created it (TaskRead JSON): a replay answers with exactly this,
    # even after the task was changed or deleted.
    response: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class PersistedDocument(SQLModel, table=True):
    """A GraphQL document registered by its SHA-256 (automatic persisted queries), stored once
    for every process; only documents that passed the limits and validation are kept."""

    __tablename__ = "persisted_documents"
    __table_args__ = (Index("ix_persisted_documents_created_at", "created_at"),)

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    document: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class TaskEvent(SQLModel, table=True):
    """One committed change of a task (table `task_events`), written only by the triggers of
    migration 0005 in the change's own transaction: the transactional outbox that live updates
    are read from. `seq` numbers one user's events 1, 2, 3... with no gaps, in commit order."""

    __tablename__ = "task_events"
    __table_args__ = (Index("ix_task_events_at", "at"),)

    user_id: str = Field(sa_column=Column(String(USER_ID_MAX), primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # created, updated, deleted
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # The task after the change (before it, for a deletion).
    task_id: UUID = Field(nullable=False)
    title: str = Field(sa_column=Column(BINARY_TITLE, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))


class TaskEventHead(SQLModel, table=True):
    """Each user's last event number (table `task_event_heads`); kept after retention purges
    the events themselves, so a resume from a purged event can be told apart."""

    __tablename__ = "task_event_heads"

    user_id: str = Field(sa_column=Column(String(USER_ID_MAX), primary_key=True))
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
