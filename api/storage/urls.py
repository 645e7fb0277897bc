"""Database URLs as hosting providers hand them out, translated for SQLAlchemy's async drivers.

Hosted PostgreSQL providers hand out libpq URLs (`postgres://...?sslmode=require&channel_binding=
require`), often pointing at a transaction-mode pgbouncer; SQLAlchemy's asyncpg dialect passes
every query parameter to `asyncpg.connect()`, which rejects the libpq-only ones.
"""

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from sqlalchemy.engine import URL, make_url

logger = logging.getLogger(__name__)

# libpq parameters that asyncpg.connect() does not take; each is translated or dropped.
_LIBPQ_DROPPED = frozenset(
    {"channel_binding", "pgbouncer", "sslcert", "sslkey", "sslrootcert", "gssencmode"}
)


@dataclass(frozen=True)
class EngineOptions:
    """A URL SQLAlchemy's async dialects accept, plus the connect arguments it needs."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    behind_pooler: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"


def _unique_statement_name() -> str:
    # A transaction-mode pooler hands each transaction a different server connection, so
    # asyncpg's numbered statement names collide there; a random name per statement cannot.
    return f"__asyncpg_{uuid4()}__"


def engine_options(raw_url: str, connect_timeout: float = 5.0) -> EngineOptions:
    """Translate a database URL as providers hand it out into one the async drivers accept."""
    url = make_url(raw_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.drivername != "sqlite+aiosqlite":
            url = url.set(drivername="sqlite+aiosqlite")
        return EngineOptions(url=url)
    if backend not in {"postgresql", "postgres"}:
        raise ValueError(f"unsupported database backend {backend!r}: use PostgreSQL or SQLite")

    query = dict(url.query)
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    server_settings: dict[str, str] = {}

    pgbouncer = str(query.get("pgbouncer", "")).lower() in {"true", "1", "yes", "on"}
    behind_pooler = pgbouncer or "-pooler" in (url.host or "")

    if "sslmode" in query:
        # asyncpg's `ssl` takes libpq's mode names as they are.
        connect_args["ssl"] = query.pop("sslmode")
    if "connect_timeout" in query:
        connect_args["timeout"] = float(str(query.pop("connect_timeout")))
    if "options" in query:
        # libpq sends `options` as a startup parameter (Neon reads its endpoint id from it).
        server_settings["options"] = str(query.pop("options"))
    if "application_name" in query:
        server_settings["application_name"] = str(query.pop("application_name"))
    for name in _LIBPQ_DROPPED & query.keys():
        query.pop(name)
        # channel_binding and pgbouncer come in every hosted URL and have nothing to do here;
        # a dropped certificate setting is worth a word.
        if name not in {"channel_binding", "pgbouncer"}:
            logger.warning("database URL parameter %r is not supported by asyncpg; ignored", name)
    if server_settings:
        connect_args["server_settings"] = server_settings

    if behind_pooler:
        # The three settings SQLAlchemy's asyncpg docs prescribe for transaction-mode poolers.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
        query["prepared_statement_cache_size"] = "0"

    url = url.set(drivername="postgresql+asyncpg", query=query)
    return EngineOptions(url=url, connect_args=connect_args, behind_pooler=behind_pooler)
