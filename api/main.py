"""The application: assembles the layers (storage, the service, auth, both faces, the edge)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from api.auth import create_verifier
from api.collector import serving_collector
from api.config import Settings
from api.observe import metrics, tracing
from api.rest import health, routes
from api.rest.errors import add_exception_handlers
from api.rest.openapi import use_openapi_document
from api.startup import ReadableStartupFailure, app_or_exit, prepare_database
from api.storage.migrate import upgrade_database
from api.storage.store import TaskStore
from api.tasks.cursors import CursorCodec
from api.tasks.service import TaskService
from api.web import docs_pages, metrics_page
from api.web.assets import mount_assets
from api.web.edge import BodySizeLimit, HeadAsGet, SecurityHeaders, StrictCORS
from api.web.observation import ObserveRequests
from graphql_schema.endpoint import AnswerCounts, GraphQLEndpoint
from graphql_schema.http import TaskGraphQLRouter
from graphql_schema.schema import build_schema

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """Build the app for `settings` (default: from the environment); traced with
    `tracer_provider` when one is given (api.observe.tracing)."""
    settings = settings or Settings()
    verifier = create_verifier(settings)
    tracer = tracing.tracer_of(tracer_provider)
    # Made now, connected lazily: the engine opens its first connection on first use, after
    # the start-up migration below.
    store = TaskStore.from_settings(settings, tracer)
    cursor_secret = settings.cursor_secret
    tasks = TaskService(
        store, CursorCodec(cursor_secret.get_secret_value() if cursor_secret else None)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_auth_mode(settings)
        await prepare_database(settings, store, upgrade_database)
        try:
            async with metrics.sampling(store.publish_pool_use):
                with serving_collector():
                    yield
        finally:
            # Runs on SIGTERM too, after uvicorn has let the requests in flight finish.
            await store.dispose()
            if verifier is not None:
                await verifier.aclose()
            logger.info("database connection pool closed")
            metrics.process_exited()
            tracing.shutdown(tracer_provider)

    app = FastAPI(
        title="Task API",
        version="0.1.0",
        description="Tasks for many users: GraphQL at /graphql and this REST facade.",
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from CDNs; api/web/docs_pages.py serves ours.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.verifier = verifier
    app.state.store = store
    app.state.tasks = tasks
    add_exception_handlers(app)
    app.include_router(routes.router)
    app.include_router(health.router)
    schema = build_schema(settings)
    app.include_router(
        TaskGraphQLRouter(
            schema,
            tasks,
            graphiql=settings.graphql_introspection,
            retry_after=settings.retry_after_seconds,
        ),
        prefix="/graphql",
        include_in_schema=False,
    )
    app.include_router(docs_pages.router)
    app.include_router(metrics_page.router)
    mount_assets(app)
    use_openapi_document(app, settings)
    # The last added runs first: HEAD as GET, the request's id, metrics and span, headers on
    # every answer, then CORS, then the body limit, then compiled GraphQL operations, in front
    # of the framework's routing.
    if settings.graphql_compiled:
        app.state.graphql_answers = AnswerCounts()
        app.add_middleware(
            GraphQLEndpoint,
            schema=schema,
            tasks=tasks,
            verifier=verifier,
            counts=app.state.graphql_answers,
        )
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
    # Every answer counted, logged and traced once, with its request id (api.web.observation).
    if settings.request_ids or settings.metrics_enabled or settings.access_log or tracer:
        app.add_middleware(
            ObserveRequests,
            request_ids=settings.request_ids,
            request_metrics=metrics.RequestMetrics() if settings.metrics_enabled else None,
            access_log=settings.access_log,
            tracer=tracer,
        )
    # Outermost: HEAD runs through everything above as GET, then loses its body. GraphQL over
    # HTTP answers its own methods (HEAD there is a 405 naming GET and POST).
    app.add_middleware(HeadAsGet, except_prefixes=("/graphql",))
    # Start-up failures reach uvicorn as one line instead of a traceback (api.startup).
    app.add_middleware(ReadableStartupFailure)
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


# Bad settings end start-up here with one line on stderr (api.startup).
app = app_or_exit(create_app)
