"""The persisted documents table (migration 0006) and its store, on both databases."""

import pytest
import sqlalchemy as sa

from api.storage.documents import DocumentStore
from tests.apps import running
from tests.storage.test_migrations import execute, migrate

COUNT = sa.text("SELECT count(*) FROM persisted_documents")


async def test_migration_0006_goes_down_and_up_again(database_url: str) -> None:
    await migrate(database_url, "head")
    await execute(
        database_url,
        sa.text(
            "INSERT INTO persisted_documents (sha256, document, created_at) "
            "VALUES ('a', '{ x }', CURRENT_TIMESTAMP)"
        ),
    )
    await migrate(database_url, "0005", down=True)
    with pytest.raises(sa.exc.DBAPIError):  # the table is gone
        await execute(database_url, COUNT)
    await migrate(database_url, "head")
    assert (await execute(database_url, COUNT))[0][0] == 0


async def test_saves_keep_the_first_text_and_the_newest_documents(database_url: str) -> None:
    async with running(database_url) as app:
        documents = DocumentStore(app.state.store, max_documents=2)
        await documents.save("h1", "{ first }")
        await documents.save("h1", "{ not kept }")
        assert await documents.load("h1") == "{ first }"
        await documents.save("h2", "{ second }")
        await documents.save("h3", "{ third }")
        assert await documents.load("h1") is None
        assert [await documents.load(key) for key in ("h2", "h3")] == ["{ second }", "{ third }"]
        assert await documents.load("unknown") is None
