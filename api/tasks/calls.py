"""What every service call goes through: one translation of failures, and one retry for reads.

Both wrap a `TaskService` method whose first argument after `self` is the request's session.
"""

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from api.storage import failures
from api.storage.store import StoreSession

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
# A TaskService method (its `self` is left untyped here, to keep this module below the service).
Method = Callable[Concatenate[Any, StoreSession, P], Awaitable[R]]


def service_call(method: Method[P, R]) -> Method[P, R]:
    """Roll back on any failure and let only `errors.TaskAPIError` leave the service."""

    @functools.wraps(method)
    async def wrapper(self: Any, db: StoreSession, *args: P.args, **kwargs: P.kwargs) -> R:
        with failures.domain_errors():
            try:
                return await method(self, db, *args, **kwargs)
            except BaseException:
                # The connection may be gone already; the original error is what matters.
                with contextlib.suppress(Exception):
                    await db.reset()
                raise

    return wrapper


def retried_read(method: Method[P, R]) -> Method[P, R]:
    """Run a read-only call again, once, when it failed because its connection had died.

    The pool pings only connections that sat idle (api.storage.engine); this catches one that
    died unnoticed (a database restart, a killed backend). A read changes nothing, so a second
    try on a fresh connection is safe. Never use this on a write: the first try may have
    committed.
    """

    @functools.wraps(method)
    async def wrapper(self: Any, db: StoreSession, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, db, *args, **kwargs)
        except Exception as exc:
            if not failures.connection_died(exc):
                raise
            logger.info("read failed on a dead connection; retrying once on a fresh one")
            # Releases the invalidated connection; the next statement checks out a new one.
            await db.reset()
        return await method(self, db, *args, **kwargs)

    return wrapper
