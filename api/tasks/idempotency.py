"""Idempotent creates: a (user, key) pair claimed in the same transaction as the task it creates.

A keyed create inserts its claim with ON CONFLICT DO NOTHING before the task, in one transaction:
of many concurrent requests with one key exactly one claim (and so one task) commits, and the
others wait for it, then answer with the task it stored. The claim keeps the first answer (the
task as created) and a fingerprint of the request, so a retry gets the same body and a different
request with the same key is refused. Claims expire after `TTL`; every keyed create deletes a
bounded batch of expired ones, so no separate cleanup process is needed.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import pydantic
from sqlalchemy import delete, tuple_
from sqlmodel import col, select

from api.observe import metrics
from api.storage.columns import utcnow
from api.storage.statements import insert_ignoring_duplicates
from api.storage.store import StoreSession
from api.storage.tables import IdempotencyKey, Task
from api.tasks import errors
from api.tasks.shapes import IdempotencyKeyValue, TaskCreate, TaskRead, folded_columns

logger = logging.getLogger(__name__)

# How long a key answers with the task its first request created.
TTL = timedelta(hours=24)
# Expired keys deleted per keyed create: bounded, so the purge never makes a create slow.
PURGE_BATCH = 100

_key_adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(IdempotencyKeyValue)


def validate_key(key: str) -> str:
    """The key as given, or a ValidationError naming the `idempotency_key` field."""
    try:
        return _key_adapter.validate_python(key)
    except pydantic.ValidationError:
        raise errors.ValidationError(
            [
                {
                    "field": "idempotency_key",
                    "message": "must be 1-255 printable ASCII characters",
                }
            ]
        ) from None


def fingerprint(data: TaskCreate) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _snapshot(task: Task) -> str:
    return TaskRead.model_validate(task, from_attributes=True).model_dump_json()


def _from_snapshot(snapshot: str) -> Task:
    values = dict(TaskRead.model_validate_json(snapshot))
    return Task(**values, **folded_columns(values))


async def create_once(
    db: StoreSession,
    user_id: str,
    key: str,
    data: TaskCreate,
    new_task: Callable[[], Task],
) -> Task:
    """Claim (user, key) and insert the task in one transaction, or answer as the claimant did."""
    request = fingerprint(data)
    session, dialect = db.orm, db.dialect_name
    # Three rounds cover the only reasons to go again: an expired key was just deleted, or the
    # row that blocked the claim vanished (its own expiry) before it could be read.
    for _ in range(3):
        task = new_task()
        claim = insert_ignoring_duplicates(
            dialect,
            IdempotencyKey,
            {
                "user_id": user_id,
                "key": key,
                "fingerprint": request,
                "task_id": task.id,
                "response": _snapshot(task),
                "created_at": task.created_at,
            },
        ).returning(col(IdempotencyKey.key))
        if (await session.exec(claim)).first() is not None:
            session.add(task)
            await session.commit()
            return task
        existing = (
            await session.exec(
                select(IdempotencyKey)
                .where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key) == key)
                .execution_options(populate_existing=True)
            )
        ).first()
        if existing is None:
            continue
        if existing.created_at <= utcnow() - TTL:
            # Expired but not purged yet: it no longer counts, so take the key over.
            await session.exec(
                delete(IdempotencyKey).where(
                    col(IdempotencyKey.user_id) == user_id,
                    col(IdempotencyKey.key) == key,
                    col(IdempotencyKey.created_at) == existing.created_at,
                )
            )
            continue
        if existing.fingerprint != request:
            raise errors.ValidationError(
                [
                    {
                        "field": "idempotency_key",
                        "message": "already used with a different request body",
                    }
                ],
                "Idempotency-Key was already used with a different request body",
            )
        await session.commit()
        metrics.IDEMPOTENCY_REPLAYS.inc()
        return _from_snapshot(existing.response)
    raise RuntimeError("idempotency key could not be claimed or read")


async def purge_expired(db: StoreSession) -> None:
    """Delete a bounded batch of expired keys of any user; best effort, after the create committed.

    SKIP LOCKED lets concurrent purges take disjoint rows instead of waiting on (or deadlocking
    with) each other; SQLite has one writer at a time and ignores it.
    """
    cutoff: datetime = utcnow() - TTL
    expired = (
        select(col(IdempotencyKey.user_id), col(IdempotencyKey.key))
        .where(col(IdempotencyKey.created_at) < cutoff)
        .order_by(col(IdempotencyKey.created_at))
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    statement = delete(IdempotencyKey).where(
        tuple_(col(IdempotencyKey.user_id), col(IdempotencyKey.key)).in_(expired)
    )
    # On a connection of its own: a failure here must not roll back (and so expire) the objects
    # of the request's session, which the caller is about to answer with.
    try:
        async with db.own_transaction() as connection:
            await connection.execute(statement)
    except Exception as exc:
        # The create has committed and must be answered as such; the next keyed create purges.
        logger.warning("purging expired idempotency keys failed: %s", type(exc).__name__)
