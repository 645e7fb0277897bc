"""The application: REST facade, GraphQL and health on one FastAPI app."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import health, rest
from api.body_limit import BodySizeLimit
from api.config import Settings
from api.db import create_engine, create_sessionmaker, session_slots
from api.error_handlers import PROBLEM_JSON, add_exception_handlers
from api.migrate import upgrade_database
from graphql_schema.router import graphql_router

logger = logging.getLogger(__name__)


def _without_null(schema: dict[str, Any]) -> None:
    """Make `str | None` a plain string: an optional parameter is absent, never null."""
    options = schema.pop("anyOf", None)
    if options is None:
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def _openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, made to say what the server sends: no 422, errors as problem+json."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                for parameter in operation.get("parameters", []):
                    _without_null(parameter["schema"])
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for status, response in responses.items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            await upgrade_database(settings)
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.session_slots = session_slots(settings)
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            # Runs on SIGTERM too, after uvicorn has let the requests in flight finish.
            await engine.dispose()
            logger.info("database connection pool closed")

    app = FastAPI(
        title="Task API",
        version="0.1.0",
        description="Tasks for many users: GraphQL at /graphql and this REST facade.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.settings = settings
    add_exception_handlers(app)
    app.include_router(rest.router)
    app.include_router(health.router)
    app.include_router(graphql_router(), prefix="/graphql", include_in_schema=False)
    app.openapi = lambda: _openapi_schema(app)  # type: ignore[method-assign]
    return app


app = create_app()
