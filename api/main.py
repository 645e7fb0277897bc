"""The application: assembles the layers (storage, the service, auth, both faces, the edge)."""

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from api.auth import create_verifier
from api.collector import serving_collector
from api.config import Settings
from api.observe import metrics, tracing
from api.rest import events as event_routes
from api.rest import health, routes
from api.rest.endpoint import RestEndpoint
from api.rest.errors import add_exception_handlers
from api.rest.openapi import use_openapi_document
from api.rest.routing import DirectAnswers
from api.startup import ReadableStartupFailure, app_or_exit, prepare_database
from api.storage.documents import DocumentStore
from api.storage.migrate import upgrade_database
from api.storage.store import TaskStore
from api.tasks.cursors import CursorCodec
from api.tasks.events import TaskEvents
from api.tasks.service import TaskService
from api.web import docs_pages, metrics_page
from api.web.assets import mount_assets
from api.web.edge import (
    BodySizeLimit,
    HeadAsGet,
    SecurityHeaders,
    StrictCORS,
    WebSocketRoutes,
)
from api.web.observation import ObserveRequests
from graphql_schema.compiled import OperationCache
from graphql_schema.endpoint import AnswerCounts, GraphQLEndpoint
from graphql_schema.http import TaskGraphQLRouter
from graphql_schema.persisted import PersistedDocuments, TrustedDocuments
from graphql_schema.schema import TaskSchema, build_schema

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
    events = TaskEvents.from_settings(store, settings)
    tasks = TaskService(
        store, CursorCodec(cursor_secret.get_secret_value() if cursor_secret else None), events
    )

    request_metrics = metrics.RequestMetrics() if settings.metrics_enabled else None

    def publish_metrics() -> None:
        """This process's pool use now, and the requests it answered since the last call."""
        store.publish_pool_use()
        if request_metrics is not None:
            request_metrics.publish()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_auth_mode(settings)
        await prepare_database(settings, store, upgrade_database)
        await events.start()
        try:
            async with metrics.sampling(publish_metrics):
                with serving_collector(), _streams_closed_on_sigterm(events):
                    yield
        finally:
            # Runs on SIGTERM too, after uvicorn has let the requests in flight finish.
            await events.stop()
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
        # The service traces and counts its requests itself (api.observe, api.web.observation),
        # with the provider it is given, never OpenTelemetry's global one: FastAPI's own
        # telemetry would add a second span per request wherever a global provider is set, and
        # it looks for one on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.verifier = verifier
    app.state.store = store
    # Called by /metrics before it reads the workers' files (api.web.metrics_page).
    app.state.publish_metrics = publish_metrics
    app.state.tasks = tasks
    # Counted when on, read by the task routes (api.rest.routing); None turns them off.
    app.state.rest_direct_answers = DirectAnswers() if settings.rest_direct else None
    app.state.events = events
    add_exception_handlers(app)
    # Before the task routes: `/events` is not a task id.
    app.include_router(event_routes.router)
    app.include_router(routes.router)
    app.include_router(health.router)
    schema = build_schema(settings)
    documents = _persisted_documents(settings, schema, store)
    graphql_router = TaskGraphQLRouter(
        schema,
        tasks,
        documents,
        graphiql=settings.graphql_introspection
        and (documents.trusted is None or documents.trusted.others_allowed),
        retry_after=settings.retry_after_seconds,
        max_subscriptions_per_connection=settings.events_max_subscriptions_per_connection,
        allowed_origins=settings.cors_allowed_origins,
    )
    app.include_router(graphql_router, prefix="/graphql", include_in_schema=False)
    app.include_router(docs_pages.router)
    app.include_router(metrics_page.router)
    mount_assets(app)
    use_openapi_document(app, settings)
    # The last added runs first: HEAD as GET, the request's id, metrics and span, headers on
    # every answer, then CORS, then the body limit, then compiled GraphQL operations and the
    # ordinary REST lists and creates, in front of the framework's routing.
    if app.state.rest_direct_answers is not None:
        app.add_middleware(
            RestEndpoint, routes=routes.router.routes, answers=app.state.rest_direct_answers
        )
    if settings.graphql_compiled:
        app.state.graphql_answers = AnswerCounts()
        app.add_middleware(
            GraphQLEndpoint,
            schema=schema,
            tasks=tasks,
            documents=documents,
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
            request_metrics=request_metrics,
            access_log=settings.access_log,
            tracer=tracer,
        )
    # Outermost: HEAD runs through everything above as GET, then loses its body. GraphQL over
    # HTTP answers its own methods (HEAD there is a 405 naming GET and POST).
    app.add_middleware(HeadAsGet, except_prefixes=("/graphql",))
    # Start-up failures reach uvicorn as one line instead of a traceback (api.startup).
    app.add_middleware(ReadableStartupFailure)
    # In front of everything: GraphQL's WebSocket, which none of the above acts on, holds less
    # per open socket when nothing else stays suspended around it.
    app.add_middleware(WebSocketRoutes, routes={"/graphql": graphql_router.serve_websocket})
    return app


def _persisted_documents(
    settings: Settings, schema: TaskSchema, store: TaskStore
) -> PersistedDocuments:
    """Documents by reference, over the one document cache both /graphql paths share."""
    trusted = None
    if settings.graphql_trusted_documents is not None:
        trusted = TrustedDocuments.from_file(
            settings.graphql_trusted_documents,
            others_allowed=settings.graphql_trusted_documents_graphiql,
        )
        logger.info("GraphQL: only the %d trusted documents run", len(trusted.by_id))
    saved = None
    if settings.graphql_persisted_queries:
        saved = DocumentStore(store, settings.graphql_persisted_max_documents)
    return PersistedDocuments(OperationCache(schema), saved, trusted)


@contextmanager
def _streams_closed_on_sigterm(events: TaskEvents) -> Iterator[None]:
    """End the open event streams as soon as SIGTERM arrives, then let uvicorn handle it.

    uvicorn waits for every response in flight to finish before it runs the lifespan's
    shutdown, and an event stream never finishes by itself: without this, SIGTERM would wait
    forever. Streams end with a reason, and clients resume with their last event id elsewhere.
    Only where uvicorn installed its handler (the main thread of a served process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        yield
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(events.close_streams)
        previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)


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
