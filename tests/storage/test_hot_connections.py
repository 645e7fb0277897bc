"""How a connection for asyncpg's own statements goes back to the pool (api/storage/hot.py).

PostgreSQL only: SQLite's statements go through SQLAlchemy. A connection the pool has room for
goes back without SQLAlchemy's greenlet (nothing to do but queue it); one opened past the pool's
size goes back through it and is closed, as SQLAlchemy closes it; the pool stays whole either way.
No transaction is ever begun on such a connection, so it goes back as one whose transaction is
already reset: the pool's own rollback-on-return (a no-op there) is skipped.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.pool import PoolResetState

from api.storage import hot
from api.storage.store import TaskStore
from tests.conftest import make_settings


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[Callable[..., Any]]:
    """What the hot path handed to SQLAlchemy's greenlet to return a connection."""
    calls: list[Callable[..., Any]] = []
    spawn = hot.greenlet_spawn

    def counted(function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        calls.append(function)
        return spawn(function, *args)

    monkeypatch.setattr(hot, "greenlet_spawn", counted)
    return calls


async def test_a_connection_the_pool_has_room_for_goes_back_without_the_greenlet(
    postgres_url: str, spawned: list[Callable[..., Any]]
) -> None:
    store = TaskStore.from_settings(make_settings(postgres_url, db_pool_size=2))
    pool = store.engine.sync_engine.pool
    try:
        for _ in range(3):
            async with hot.checked_out(store.engine) as connection:
                assert await connection.driver.fetchval("SELECT 1") == 1
            assert (pool.checkedout(), pool.checkedin()) == (0, 1)
        assert spawned == []
    finally:
        await store.dispose()


async def test_a_connection_past_the_pool_size_is_closed_through_the_greenlet(
    postgres_url: str, spawned: list[Callable[..., Any]]
) -> None:
    store = TaskStore.from_settings(make_settings(postgres_url, db_pool_size=1, db_max_overflow=1))
    pool = store.engine.sync_engine.pool
    closed: list[object] = []
    event.listen(store.engine.sync_engine, "close", lambda *args: closed.append(args))
    try:
        async with hot.checked_out(store.engine) as first:
            async with hot.checked_out(store.engine) as second:
                assert first.driver is not second.driver
            # The second went back into the pool's one place, without the greenlet.
            assert (spawned, closed, pool.checkedin()) == ([], [], 1)
        # The first had no place left: closed, through the greenlet.
        assert len(spawned) == len(closed) == 1
        assert (pool.checkedout(), pool.checkedin()) == (0, 1)
        # The pool still hands out a working connection.
        async with hot.checked_out(store.engine) as again:
            assert await again.driver.fetchval("SELECT 2") == 2
    finally:
        await store.dispose()


async def test_a_connection_goes_back_without_the_pools_rollback(postgres_url: str) -> None:
    store = TaskStore.from_settings(make_settings(postgres_url, db_pool_size=2))
    resets: list[bool] = []

    def on_reset(_dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        resets.append(state.transaction_was_reset)

    event.listen(store.engine.sync_engine.pool, "reset", on_reset)
    try:
        async with hot.checked_out(store.engine) as connection:
            assert await connection.driver.fetchval("SELECT 1") == 1
        # Returned with nothing left to roll back; a later statement still runs on it.
        assert resets == [True]
        async with hot.checked_out(store.engine) as again:
            assert await again.driver.fetchval("SELECT 3") == 3
            assert await again.driver.fetchval("SELECT txid_current_if_assigned()") is None
        assert resets == [True, True]
    finally:
        await store.dispose()
