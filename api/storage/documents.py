"""Persisted GraphQL documents: text by its SHA-256, one table shared by every process.

The store knows nothing of GraphQL: it keeps texts under their hashes, at most `max_documents`
of them (the oldest go first), and answers a hash with its text. Whoever saves a text has
checked it first (graphql_schema.persisted saves only documents that passed every limit).
"""

from sqlalchemy import delete, func, select
from sqlmodel import col

from api.storage import failures
from api.storage.columns import utcnow
from api.storage.statements import insert_ignoring_duplicates
from api.storage.store import TaskStore
from api.storage.tables import PersistedDocument

_TABLE = PersistedDocument.__table__  # type: ignore[attr-defined]


class DocumentStore:
    """The persisted documents of one database, at most `max_documents` of them."""

    def __init__(self, store: TaskStore, max_documents: int) -> None:
        self.store = store
        self.max_documents = max_documents

    async def load(self, sha256: str) -> str | None:
        """The text stored under `sha256`, or None; DatabaseError when the database is down."""
        statement = select(col(PersistedDocument.document)).where(
            col(PersistedDocument.sha256) == sha256
        )
        with failures.domain_errors():
            async with self.store.session() as db, db.own_transaction() as connection:
                return (await connection.execute(statement)).scalar_one_or_none()

    async def save(self, sha256: str, document: str) -> None:
        """Store `document` under `sha256` (kept as it is if already there), then drop the oldest
        beyond `max_documents`. One transaction; a concurrent save of the same hash is a no-op."""
        values = {"sha256": sha256, "document": document, "created_at": utcnow()}
        with failures.domain_errors():
            async with self.store.session() as db, db.own_transaction() as connection:
                insert = insert_ignoring_duplicates(db.dialect_name, _TABLE, values)
                if (await connection.execute(insert)).rowcount == 0:
                    return  # another request or process stored it first
                counted = await connection.execute(select(func.count()).select_from(_TABLE))
                count = counted.scalar_one()
                if count <= self.max_documents:
                    return
                oldest = (
                    select(col(PersistedDocument.sha256))
                    .order_by(col(PersistedDocument.created_at), col(PersistedDocument.sha256))
                    .limit(count - self.max_documents)
                )
                await connection.execute(
                    delete(PersistedDocument).where(col(PersistedDocument.sha256).in_(oldest))
                )
