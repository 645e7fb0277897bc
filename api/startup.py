"""Start-up that fails in one line: which setting is wrong, where it points, what to do.

Two moments can fail. Building the app (`app_or_exit`, when uvicorn imports `api.main`): the
settings are read and the database URLs parsed; a refusal prints one line to stderr and exits
with `STARTUP_FAILURE`. Starting it (the lifespan, `prepare_database`): the database is
connected to and migrated; a refusal raises `StartupError`, and `ReadableStartupFailure` hands
uvicorn its one-line message in place of the traceback Starlette would send, so uvicorn logs it,
says "Application startup failed. Exiting." and exits with the same code.

`STARTUP_FAILURE` is uvicorn's own code for a failed start-up: its supervisor, running several
workers, stops them all on it instead of restarting a worker that would fail the same way. That
supervisor itself then ends with status 0, though; `python -m api.startup`, run before it, does
the whole start-up check (settings, database, migration) in one process and exits with
`STARTUP_FAILURE` when it fails, so a process manager sees the failure.
"""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import pydantic
from opentelemetry.trace import TracerProvider
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import Settings
from api.observe import logs, tracing
from api.storage.diagnosis import diagnose, parse
from api.storage.migrate import upgrade_database
from api.storage.store import TaskStore

logger = logging.getLogger(__name__)

STARTUP_FAILURE = 3

App = TypeVar("App")
App_co = TypeVar("App_co", covariant=True)


class StartupError(Exception):
    """Start-up cannot go on; the message says why in one line, with no secret in it."""


# Settings read under a name other than TASK_API_<FIELD>.
_ENVIRONMENT_NAMES = {"database_url": "DATABASE_URL", "database_direct_url": "DATABASE_DIRECT_URL"}


def environment_name(field: str) -> str:
    return _ENVIRONMENT_NAMES.get(field, f"TASK_API_{field.upper()}")


def settings_problem(exc: pydantic.ValidationError) -> str:
    """pydantic's refusal of the settings, one clause per setting, named as the environment
    names it (the value itself is never repeated: it may be a secret)."""
    clauses = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        location = error.get("loc", ())
        if location:
            clauses.append(f"{environment_name(str(location[0]))}: {message}")
        else:
            clauses.append(message)  # a rule over several settings names them itself
    return "invalid setting: " + "; ".join(clauses)


def load_settings() -> Settings:
    """The settings from the environment, with both database URLs parsed, or StartupError."""
    try:
        settings = Settings()
    except pydantic.ValidationError as exc:
        raise StartupError(settings_problem(exc)) from None
    for name in ("DATABASE_URL", "DATABASE_DIRECT_URL"):
        secret = getattr(settings, name.lower())
        if secret is None:
            continue
        try:
            parse(name, secret.get_secret_value(), settings.db_connect_timeout)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
    return settings


class AppFactory(Protocol[App_co]):
    def __call__(self, settings: Settings, *, tracer_provider: TracerProvider | None) -> App_co: ...


def app_or_exit(factory: AppFactory[App]) -> App:
    """The app for the environment's settings, logging as they ask, traced as the OTEL_*
    settings ask; on a refusal, one line on stderr and exit `STARTUP_FAILURE` (no traceback:
    the line says all there is to fix)."""
    try:
        settings = load_settings()
        if logs.served_by_uvicorn():
            logs.configure(settings.log_format, settings.log_level)
        try:
            tracer_provider = tracing.provider_from_environment()
        except tracing.TracingSettingsError as exc:
            raise StartupError(str(exc)) from None
        return factory(settings, tracer_provider=tracer_provider)
    except StartupError as exc:
        print(f"Start-up failed: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None


async def prepare_database(
    settings: Settings, store: TaskStore, migrate: Callable[[Settings], Awaitable[None]]
) -> None:
    """Connect once with the URL requests use, then migrate if the settings ask for it.

    A URL that cannot work (wrong password, no such database or host, SSL mismatch) stops
    start-up. A server that is merely down or starting stops it only when a migration has to
    run; otherwise the service starts, says so, and answers 503 until the database is back.
    """
    # As written (the engine's own URL has sslmode moved into the driver's arguments).
    request_url = make_url(settings.database_url.get_secret_value())
    try:
        async with store.engine.connect():
            pass
    except Exception as exc:
        found = diagnose("DATABASE_URL", request_url, exc, settings.db_connect_timeout)
        if found.transient and not settings.migrate_on_startup:
            logger.warning("%s; serving anyway, answering 503 until it is reachable", found.message)
            return
        raise StartupError(found.message) from None
    if not settings.migrate_on_startup:
        return
    try:
        await migrate(settings)
    except Exception as exc:
        setting = "DATABASE_DIRECT_URL" if settings.database_direct_url else "DATABASE_URL"
        found = diagnose(
            setting, make_url(settings.migration_url), exc, settings.db_connect_timeout
        )
        if found.specific:
            raise StartupError(found.message) from None
        raise  # not a connection problem: a migration's own failure keeps its traceback


class ReadableStartupFailure:
    """Hands uvicorn a `StartupError`'s one line instead of the traceback Starlette sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def holding_send(message: Message) -> None:
            # Starlette sends the failure, then raises the error: hold the message until the
            # error shows which it was.
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, holding_send)
        except StartupError as exc:
            await send({"type": "lifespan.startup.failed", "message": f"Start-up failed: {exc}"})
            raise
        except BaseException:
            for message in held:
                await send(message)
            raise


async def _check() -> None:
    settings = load_settings()
    store = TaskStore.from_settings(settings)
    try:
        await prepare_database(settings, store, upgrade_database)
    finally:
        await store.dispose()


def main() -> None:
    """Check the settings and the database and migrate, as a server's start-up would."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(_check())
    except StartupError as exc:
        print(f"Start-up failed: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE) from None


if __name__ == "__main__":
    main()
