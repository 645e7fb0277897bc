"""Settings, read from the environment and an optional `.env`; every one has a working default."""

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./tasks.db"

# RFC 7518 3.2: an HMAC key must be at least as long as the hash it is used with.
HMAC_MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
HMAC_ALGORITHMS = tuple(HMAC_MIN_SECRET_BYTES)
# What JWKS-served public keys sign with: RSA, RSA-PSS, ECDSA and Ed25519 (Better Auth's default).
PUBLIC_KEY_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
MIN_SECRET_BYTES = HMAC_MIN_SECRET_BYTES["HS256"]

# A list setting read from the environment as comma-separated text ("a, b") or a JSON array.
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """The service's configuration; `Settings()` runs with no environment at all."""

    model_config = SettingsConfigDict(
        env_prefix="TASK_API_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        # A refused setting must not print the others (secrets, database URLs) in its error.
        hide_input_in_errors=True,
    )

    # DATABASE_URL keeps its conventional unprefixed name: hosting platforms set exactly that.
    # SecretStr keeps the password out of reprs and logs.
    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
    )
    # Neon's non-pooler host: migrations need a session-level connection, not a pooler.
    database_direct_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_DIRECT_URL", "database_direct_url"),
    )
    # Upgrade the schema to the newest migration on start-up; turn off where a release step
    # runs `alembic upgrade head` itself.
    migrate_on_startup: bool = True
    # Seconds to wait for a new database connection before answering 503.
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # Seconds a request waits for a free pooled connection before answering 503.
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1)
    # Connections opened beyond the pool under load, closed again after use: each costs a
    # connect, and the database is sized for the pool, so none by default.
    db_max_overflow: int = Field(default=0, ge=0)
    # A pooled connection idle longer than this many seconds is pinged before reuse (a dead one
    # is replaced); a recently used one is trusted, saving a round trip per request. 0 pings
    # on every checkout.
    db_ping_after_idle: float = Field(default=5.0, ge=0)
    # Seconds a client is told to wait (Retry-After) when the database is unavailable.
    retry_after_seconds: int = Field(default=5, ge=1)
    # The key that signs list cursors; unset, a key stored in the database by the first
    # migration is used, which every process over that database shares.
    cursor_secret: SecretStr | None = None

    # --- authentication: a shared HMAC secret or a JWKS URL; neither means it is off -----------
    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    # Accepted `alg` values; empty means every one of the configured key's family (HS* for a
    # secret, the public-key ones for a JWKS URL). Families never mix: no HS/RS confusion.
    auth_algorithms: CommaList = Field(default_factory=list)
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # The claim that holds the user id that must match the path or `userId` argument.
    auth_user_id_claim: str = "sub"
    # Clock skew tolerated on exp / nbf / iat, in seconds.
    auth_leeway_seconds: float = Field(default=30.0, ge=0)
    # JWKS: how long fetched keys are trusted before a refresh, the least time between two
    # fetches (an unknown `kid` refetches, but a storm of them cannot), and the fetch timeout.
    auth_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    auth_jwks_min_refetch_seconds: float = Field(default=10.0, ge=0)
    auth_jwks_timeout_seconds: float = Field(default=3.0, gt=0)

    # --- GraphQL limits, checked before anything executes --------------------------------------
    graphql_max_query_length: int = Field(default=65_536, ge=1)  # characters of query text
    graphql_max_tokens: int = Field(default=500, ge=1)
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=15, ge=0)
    # Off: no introspection and no GraphiQL page, for deployments that want neither.
    graphql_introspection: bool = True
    # Serve documents seen before from compiled operations, below the framework's routing
    # (graphql_schema/endpoint.py); off, every request takes Strawberry's own path.
    graphql_compiled: bool = True
    # Answer an ordinary REST list (no query string) or create (a valid JSON task, no
    # Idempotency-Key) without FastAPI's parameter parsing and dependency solving
    # (api/rest/routing.py); off, every request takes the routes' own handlers.
    rest_direct: bool = True
    # Automatic persisted queries (graphql_schema/persisted.py): documents registered by their
    # SHA-256, in the database for every process, at most this many (the oldest go first).
    graphql_persisted_queries: bool = True
    graphql_persisted_max_documents: int = Field(default=10_000, ge=1)
    # A manifest of trusted documents (JSON: id -> document, as graphql-codegen's client preset
    # and Relay write it): set, only those documents run.
    graphql_trusted_documents: Path | None = None
    # With trusted documents, accept other documents too, so that GraphiQL works (staging).
    graphql_trusted_documents_graphiql: bool = False

    # --- live updates (GraphQL subscriptions, the REST event stream) ---------------------------
    # How long committed changes are kept for clients that resume after an event id.
    events_retention_hours: float = Field(default=24.0, gt=0)
    # How often each process purges events older than that, and how many rows per statement.
    events_purge_interval_seconds: float = Field(default=60.0, gt=0)
    events_purge_batch: int = Field(default=1000, ge=1)
    # Events a subscriber may have waiting; one that falls further behind is closed (and
    # resumes with its last id, losing nothing).
    events_queue_size: int = Field(default=256, ge=1)
    # Long-lived connections a process holds open for live updates: WebSockets at /graphql and
    # event streams (REST and GraphQL over HTTP).
    events_max_connections: int = Field(default=10_000, ge=1)
    # Operations one WebSocket may run at once.
    events_max_subscriptions_per_connection: int = Field(default=100, ge=1)
    # PostgreSQL: seconds between checks for events whose NOTIFY never came (a process that
    # died just after its commit, a change made outside the service); the most they are late.
    events_sweep_seconds: float = Field(default=2.0, gt=0)
    # PostgreSQL: the least time between two NOTIFYs of a process. Under a stream of changes the
    # wake-ups of such an interval go out in one (sent one after another, they took about a
    # quarter of a create's CPU); after a quiet interval one goes at once. The most it delays an
    # event; 0 sends every batch as soon as the one before is done.
    events_notify_interval_ms: float = Field(default=20.0, ge=0, le=1000)
    # Seconds between keep-alive comments on the REST event stream (WebSockets are kept alive
    # by the server's own pings: uvicorn --ws-ping-interval, 20 s by default).
    events_keepalive_seconds: float = Field(default=15.0, gt=0)

    # --- HTTP edge -----------------------------------------------------------------------------
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    # Browser origins allowed to call the API (CORS), e.g. "https://app.example.com"; none by
    # default, so no CORS header is ever sent.
    cors_allowed_origins: CommaList = Field(default_factory=list)

    # --- seeing what it does: logs, request ids, metrics (traces: the standard OTEL_* settings) ---
    # One line per event: "text" for people, "json" (one object per line) for log collectors.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # One line per answered request: method, route template, status, duration, request id. Off
    # by default: a line per request costs CPU, and the proxy in front logs requests anyway
    # (with the X-Request-ID it passes on).
    access_log: bool = False
    # Take X-Request-ID from the caller (a proxy) when well-formed, else make one; echo it in the
    # answer, its log lines and problem+json bodies.
    request_ids: bool = True
    # Count requests, latencies and the pool's use; GET /metrics serves them (Prometheus text).
    metrics_enabled: bool = True
    # GET /metrics asks for `Authorization: Bearer <token>` when set; unset, it answers 404
    # unless TASK_API_METRICS_PUBLIC is on (for a port only the scraper reaches).
    metrics_token: SecretStr | None = None
    metrics_public: bool = False

    @field_validator("auth_algorithms", "cors_allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(
        "auth_jwt_secret", "auth_jwks_url", "auth_issuer", "auth_audience", "metrics_token"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `FOO=` in a .env or a deployment template means "not set", not "the empty string".
        if isinstance(value, SecretStr) and not value.get_secret_value():
            return None
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("graphql_trusted_documents", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 16:
            raise ValueError("TASK_API_METRICS_TOKEN must be at least 16 characters")
        if self.auth_jwt_secret is not None and self.auth_jwks_url is not None:
            raise ValueError(
                "set either TASK_API_AUTH_JWT_SECRET or TASK_API_AUTH_JWKS_URL, not both"
            )
        if self.auth_jwt_secret is not None:
            if len(self.auth_jwt_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"TASK_API_AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
                )
            family = HMAC_ALGORITHMS
        elif self.auth_jwks_url is not None:
            if not self.auth_jwks_url.startswith(("https://", "http://")):
                raise ValueError("TASK_API_AUTH_JWKS_URL must be an http(s) URL")
            family = PUBLIC_KEY_ALGORITHMS
        else:
            return self
        unknown = [name for name in self.auth_algorithms if name not in family]
        if unknown:
            raise ValueError(f"algorithms {unknown} do not fit the configured key; use {family}")
        short = [name for name in self.auth_algorithms if name not in self.accepted_algorithms]
        if short:
            raise ValueError(f"TASK_API_AUTH_JWT_SECRET is too short for {short}")
        if not self.auth_user_id_claim:
            raise ValueError("TASK_API_AUTH_USER_ID_CLAIM must name a claim")
        return self

    @property
    def auth_enabled(self) -> bool:
        """Authentication is on when a secret or a JWKS URL is configured."""
        return self.auth_jwt_secret is not None or self.auth_jwks_url is not None

    @property
    def accepted_algorithms(self) -> tuple[str, ...]:
        """The `alg` values a token may carry (empty when authentication is off)."""
        if self.auth_jwt_secret is not None:
            # Only those the secret is long enough for (PyJWT refuses a shorter key anyway).
            length = len(self.auth_jwt_secret.get_secret_value().encode())
            fitting = [name for name, least in HMAC_MIN_SECRET_BYTES.items() if length >= least]
            return tuple(name for name in self.auth_algorithms or fitting if name in fitting)
        if self.auth_algorithms:
            return tuple(self.auth_algorithms)
        if self.auth_jwks_url is not None:
            return PUBLIC_KEY_ALGORITHMS
        return ()

    @cached_property
    def migration_url(self) -> str:
        """The URL migrations run on: the direct URL when one is given."""
        chosen = self.database_direct_url or self.database_url
        return chosen.get_secret_value()
