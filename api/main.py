"""The application: REST facade, GraphQL and health on one FastAPI app."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import auth, docs_pages, health, rest
from api.assets import mount_assets
from api.collector import serving_collector
from api.config import Settings
from api.cursors import CursorCodec
from api.db import (
    BEHIND_POOLER,
    behind_pooler,
    create_engine,
    create_sessionmaker,
    session_slots,
)
from api.edge import BodySizeLimit, SecurityHeaders, StrictCORS
from api.error_handlers import PROBLEM_JSON, add_exception_handlers
from api.migrate import upgrade_database
from graphql_schema.router import TaskGraphQLRouter
from graphql_schema.schema import build_schema

logger = logging.getLogger(__name__)


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER_SCHEME = "bearerAuth"


def _problem(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}, **extra}


def _add_edge_responses(operation: dict[str, Any], settings: Settings) -> None:
    """The answers the edge and authentication give, which no route declares itself."""
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation:
        responses["413"] = _problem(
            f"The body is over {settings.max_body_bytes} bytes (PayloadTooLargeError)"
        )
    if not settings.auth_enabled:
        return
    operation["security"] = [{BEARER_SCHEME: []}]
    responses["401"] = _problem(
        "No bearer token, or one that is malformed, expired, not yet valid, wrongly signed, "
        "or for another issuer or audience (AuthenticationError)",
        headers={
            "WWW-Authenticate": {
                "description": 'The Bearer challenge (RFC 6750), with error="invalid_token" '
                "when a token was sent",
                "schema": {"type": "string"},
            }
        },
    )
    responses["403"] = _problem(
        "A valid token for another user than the one in the path (AuthorizationError)"
    )
    if settings.auth_jwks_url is not None:
        responses["503"]["description"] += (
            ", or the token signing keys cannot be fetched (SigningKeysUnavailableError)"
        )


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


def _openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's document, made to say what the server sends: no 422, errors as problem+json."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, path_item in document.get("paths", {}).items():
            for operation in path_item.values():
                for parameter in operation.get("parameters", []):
                    _without_null(parameter["schema"])
                if path.startswith("/api/"):
                    _add_edge_responses(operation, settings)
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for status, response in responses.items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        if settings.auth_enabled:
            document["components"]["securitySchemes"] = {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT whose user id claim "
                    f"(`{settings.auth_user_id_claim}`) is the `user_id` in the path",
                }
            }
        app.openapi_schema = document
    return app.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or Settings()

    verifier = auth.create_verifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_auth_mode(settings)
        if settings.migrate_on_startup:
            await upgrade_database(settings)
        engine = create_engine(settings)
        codec = CursorCodec(
            secret.get_secret_value() if (secret := settings.cursor_secret) else None
        )
        app.state.engine = engine
        app.state.session_slots = session_slots(settings)
        app.state.sessionmaker = create_sessionmaker(
            engine, {"cursor_codec": codec, BEHIND_POOLER: behind_pooler(settings)}
        )
        try:
            with serving_collector():
                yield
        finally:
            # Runs on SIGTERM too, after uvicorn has let the requests in flight finish.
            await engine.dispose()
            if verifier is not None:
                await verifier.aclose()
            logger.info("database connection pool closed")

    app = FastAPI(
        title="Task API",
        version="0.1.0",
        description="Tasks for many users: GraphQL at /graphql and this REST facade.",
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from CDNs; api/docs_pages.py serves ours.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.verifier = verifier
    add_exception_handlers(app)
    app.include_router(rest.router)
    app.include_router(health.router)
    app.include_router(
        TaskGraphQLRouter(
            build_schema(settings),
            graphiql=settings.graphql_introspection,
            retry_after=settings.retry_after_seconds,
        ),
        prefix="/graphql",
        include_in_schema=False,
    )
    app.include_router(docs_pages.router)
    mount_assets(app)
    app.openapi = lambda: _openapi_schema(app, settings)  # type: ignore[method-assign]
    # The last added runs first: headers on every answer, then CORS, then the body limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        StrictCORS,
        allow_origins=settings.cors_allowed_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Location", "Retry-After", "WWW-Authenticate"],
        max_age=600,
    )
    app.add_middleware(SecurityHeaders)
    return app


def _log_auth_mode(settings: Settings) -> None:
    """Say once, at start-up, how callers are authenticated (never the secret itself)."""
    if settings.auth_jwt_secret is not None:
        logger.info("authentication: JWT signed with the shared secret (%s)", _algorithms(settings))
    elif settings.auth_jwks_url is not None:
        logger.info(
            "authentication: JWT signed with keys from the JWKS URL (%s)", _algorithms(settings)
        )
    else:
        logger.warning(
            "authentication is OFF: every user's tasks are open to anyone who knows the user id. "
            "Set TASK_API_AUTH_JWT_SECRET or TASK_API_AUTH_JWKS_URL to require a JWT."
        )


def _algorithms(settings: Settings) -> str:
    return ", ".join(settings.accepted_algorithms)


app = create_app()
