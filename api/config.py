"""Settings, read from the environment and an optional `.env`; every one has a working default."""

from functools import cached_property

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./tasks.db"


class Settings(BaseSettings):
    """The service's configuration; `Settings()` runs with no environment at all."""

    model_config = SettingsConfigDict(
        env_prefix="TASK_API_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
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
    db_max_overflow: int = Field(default=10, ge=0)
    # Seconds a client is told to wait (Retry-After) when the database is unavailable.
    retry_after_seconds: int = Field(default=5, ge=1)
    # Largest request body accepted (REST and GraphQL); larger ones get 413 before being read
    # whole. A valid task is at most a few tens of KiB.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    log_level: str = "INFO"

    @cached_property
    def migration_url(self) -> str:
        """The URL migrations run on: the direct URL when one is given."""
        chosen = self.database_direct_url or self.database_url
        return chosen.get_secret_value()
