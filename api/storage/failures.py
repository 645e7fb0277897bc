"""Driver exceptions, told apart: the database cannot be reached now, or something else failed.

The service turns the first kind into the domain's `DatabaseError` (503 / SERVICE_UNAVAILABLE)
and everything else into an internal error; only this module knows what each driver raises.
"""

import contextlib
import logging
import sqlite3
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

from api.observe import metrics
from api.tasks import errors
from api.tasks.errors import DatabaseError

logger = logging.getLogger(__name__)

# SQLite's messages for a database it cannot open or lock right now.
_SQLITE_UNAVAILABLE = ("unable to open database", "database is locked", "disk i/o error")


class ConnectionLost(Exception):
    """A statement sent through the driver itself (api.storage.hot) failed because its
    connection broke; the pooled connection has been dropped, as SQLAlchemy drops its own."""


def connection_died(exc: BaseException) -> bool:
    """True when a statement failed because its pooled connection had died (and was dropped)."""
    if isinstance(exc, ConnectionLost):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached, as opposed to a bug."""
    if isinstance(exc, DatabaseError | ConnectionLost | sa_exc.TimeoutError):
        return True  # already ours; or no pooled connection became free in time
    if connection_died(exc):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | TimeoutError | ConnectionError):
            return True
        if isinstance(current, sqlite3.OperationalError) and any(
            text in str(current).lower() for text in _SQLITE_UNAVAILABLE
        ):
            return True
        # asyncpg's connection-level failures: class 08 (connection exception), 53 (insufficient
        # resources, e.g. too many connections) and 57P0x (server shutting down / starting up).
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(("08", "53", "57P")):
            return True
        if type(current).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
            type(current).__module__.startswith("asyncpg")
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Let only the domain's errors out: a database that cannot be reached becomes
    `DatabaseError` (503 / SERVICE_UNAVAILABLE, logged and counted), anything else unexpected an
    internal error (`errors.classify`). Every service call, the events and the persisted
    documents go through it."""
    try:
        yield
    except errors.TaskAPIError:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            logger.warning("database unavailable: %s", type(exc).__name__)
            metrics.unavailable("database_unreachable")
            raise errors.DatabaseError() from exc
        raise errors.classify(exc) from exc
