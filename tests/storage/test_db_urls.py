"""Unit tests of the URL translation in `api.db.engine_options` and of the settings' defaults.

Hosting providers hand out libpq URLs; these tests pin down how each of their parameters is
translated into what SQLAlchemy's asyncpg dialect accepts, and that no password leaks.
"""

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from api.config import DEFAULT_DATABASE_URL, Settings
from api.storage.urls import engine_options
from tests.conftest import make_settings

NEON_POOLER_HOST = "ep-cool-name-123456-pooler.us-east-2.aws.neon.tech"
NEON_DIRECT_HOST = "ep-cool-name-123456.us-east-2.aws.neon.tech"
NEON_PASSWORD = "npg_Xy9sEcReT42"
NEON_URL = (
    f"postgresql://neondb_owner:{NEON_PASSWORD}@{NEON_POOLER_HOST}/neondb"
    "?sslmode=require&channel_binding=require"
)


class TestPostgresSchemes:
    @pytest.mark.parametrize(
        "raw_url",
        [
            "postgres://user:pw@db.example.com:5432/app",
            "postgresql://user:pw@db.example.com:5432/app",
            "postgresql+asyncpg://user:pw@db.example.com:5432/app",
            "postgresql+psycopg2://user:pw@db.example.com:5432/app",
        ],
    )
    def test_every_postgres_scheme_becomes_asyncpg(self, raw_url: str) -> None:
        options = engine_options(raw_url)

        assert options.url.drivername == "postgresql+asyncpg"
        assert options.url.host == "db.example.com"
        assert options.url.port == 5432
        assert options.url.database == "app"
        assert options.url.username == "user"
        assert options.url.password == "pw"
        assert not options.is_sqlite

    def test_connect_timeout_argument_becomes_the_asyncpg_timeout(self) -> None:
        options = engine_options("postgresql://db.example.com/app", connect_timeout=2.5)

        assert options.connect_args["timeout"] == 2.5

    def test_libpq_connect_timeout_in_the_url_wins_and_leaves_the_query(self) -> None:
        options = engine_options("postgresql://db.example.com/app?connect_timeout=7", 2.5)

        assert options.connect_args["timeout"] == 7.0
        assert "connect_timeout" not in options.url.query


class TestLibpqParameters:
    def test_sslmode_becomes_the_ssl_connect_argument(self) -> None:
        options = engine_options("postgresql://db.example.com/app?sslmode=require")

        assert options.connect_args["ssl"] == "require"
        assert "sslmode" not in options.url.query
        assert "ssl" not in options.url.query

    def test_channel_binding_is_dropped(self) -> None:
        options = engine_options(
            "postgresql://db.example.com/app?sslmode=require&channel_binding=require"
        )

        assert "channel_binding" not in options.url.query
        assert "channel_binding" not in options.connect_args
        assert options.connect_args["ssl"] == "require"

    def test_options_go_to_server_settings(self) -> None:
        options = engine_options("postgresql://db.example.com/app?options=endpoint%3Dep-x")

        assert options.connect_args["server_settings"] == {"options": "endpoint=ep-x"}
        assert "options" not in options.url.query

    def test_application_name_goes_to_server_settings(self) -> None:
        options = engine_options("postgresql://db.example.com/app?application_name=tasks")

        assert options.connect_args["server_settings"] == {"application_name": "tasks"}
        assert "application_name" not in options.url.query

    def test_plain_url_has_no_server_settings_and_no_query(self) -> None:
        options = engine_options("postgresql://db.example.com/app")

        assert "server_settings" not in options.connect_args
        assert "ssl" not in options.connect_args
        assert dict(options.url.query) == {}


class TestTransactionPoolers:
    @pytest.mark.parametrize(
        "raw_url",
        [
            "postgresql://user:pw@db.example.com:6432/app?pgbouncer=true",
            f"postgresql://user:pw@{NEON_POOLER_HOST}/neondb",
        ],
        ids=["pgbouncer-flag", "neon-pooler-host"],
    )
    def test_pooler_disables_prepared_statement_caches(self, raw_url: str) -> None:
        options = engine_options(raw_url)

        assert options.behind_pooler
        assert options.connect_args["statement_cache_size"] == 0
        assert options.url.query["prepared_statement_cache_size"] == "0"
        assert "pgbouncer" not in options.url.query

    @pytest.mark.parametrize(
        "raw_url",
        [
            "postgresql://user:pw@db.example.com:6432/app?pgbouncer=true",
            f"postgresql://user:pw@{NEON_POOLER_HOST}/neondb",
        ],
        ids=["pgbouncer-flag", "neon-pooler-host"],
    )
    def test_pooler_names_every_prepared_statement_uniquely(self, raw_url: str) -> None:
        name_func = engine_options(raw_url).connect_args["prepared_statement_name_func"]

        assert callable(name_func)
        first, second = name_func(), name_func()
        assert isinstance(first, str)
        assert isinstance(second, str)
        assert first != second

    @pytest.mark.parametrize(
        "raw_url",
        [
            "postgresql://user:pw@db.example.com:5432/app",
            f"postgresql://user:pw@{NEON_DIRECT_HOST}/neondb",
            "postgresql://user:pw@db.example.com:5432/app?pgbouncer=false",
        ],
        ids=["plain-host", "neon-direct-host", "pgbouncer-false"],
    )
    def test_direct_host_keeps_statement_caches(self, raw_url: str) -> None:
        options = engine_options(raw_url)

        assert not options.behind_pooler
        assert "statement_cache_size" not in options.connect_args
        assert "prepared_statement_name_func" not in options.connect_args
        assert "prepared_statement_cache_size" not in options.url.query
        assert "pgbouncer" not in options.url.query


class TestNeonUrl:
    def test_typical_neon_url_is_translated(self) -> None:
        options = engine_options(NEON_URL)

        assert options.url.drivername == "postgresql+asyncpg"
        assert options.url.host == NEON_POOLER_HOST
        assert options.url.database == "neondb"
        assert options.url.username == "neondb_owner"
        # The password is still there to connect with...
        assert options.url.password == NEON_PASSWORD
        assert dict(options.url.query) == {"prepared_statement_cache_size": "0"}
        assert options.connect_args["ssl"] == "require"
        assert options.connect_args["statement_cache_size"] == 0
        assert options.behind_pooler

    def test_neon_url_never_shows_its_password(self) -> None:
        options = engine_options(NEON_URL)

        # ...but nothing that renders the URL for a log shows it.
        assert NEON_PASSWORD not in str(options.url)
        assert NEON_PASSWORD not in repr(options.url)
        assert NEON_PASSWORD not in repr(options)

    def test_neon_url_with_endpoint_option(self) -> None:
        options = engine_options(f"{NEON_URL}&options=endpoint%3Dep-cool-name-123456")

        assert options.connect_args["server_settings"] == {
            "options": "endpoint=ep-cool-name-123456"
        }
        assert dict(options.url.query) == {"prepared_statement_cache_size": "0"}


class TestSqliteUrls:
    @pytest.mark.parametrize("raw_url", ["sqlite:///x.db", "sqlite+aiosqlite:///x.db"])
    def test_sqlite_becomes_aiosqlite(self, raw_url: str) -> None:
        options = engine_options(raw_url)

        assert options.url.drivername == "sqlite+aiosqlite"
        assert options.url.database == "x.db"
        assert options.is_sqlite
        assert options.connect_args == {}
        assert not options.behind_pooler

    def test_default_url_is_sqlite(self) -> None:
        options = engine_options(DEFAULT_DATABASE_URL)

        assert options.is_sqlite
        assert options.url.drivername == "sqlite+aiosqlite"


class TestUnsupportedBackends:
    @pytest.mark.parametrize(
        "raw_url", ["mysql://user:pw@db.example.com/app", "mssql+pyodbc://db.example.com/app"]
    )
    def test_other_backends_are_refused(self, raw_url: str) -> None:
        with pytest.raises(ValueError, match="unsupported database backend"):
            engine_options(raw_url)

    def test_refusal_does_not_show_the_password(self) -> None:
        with pytest.raises(ValueError, match="unsupported") as caught:
            engine_options("mysql://user:s3cret-pw@db.example.com/app")

        assert "s3cret-pw" not in str(caught.value)


class TestSettings:
    @pytest.fixture(autouse=True)
    def _no_database_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("DATABASE_URL", "DATABASE_DIRECT_URL"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)

    def test_no_environment_gives_the_sqlite_default(self) -> None:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert settings.database_url.get_secret_value() == "sqlite+aiosqlite:///./tasks.db"
        assert settings.migration_url == "sqlite+aiosqlite:///./tasks.db"
        assert settings.migrate_on_startup is True

    def test_database_url_env_var_is_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        url = "postgresql://app:pw@db.example.com:5432/tasks"
        monkeypatch.setenv("DATABASE_URL", url)

        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert settings.database_url.get_secret_value() == url
        assert settings.migration_url == url

    def test_direct_url_env_var_is_used_for_migrations(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", f"postgresql://app:pw@{NEON_POOLER_HOST}/neondb")
        monkeypatch.setenv("DATABASE_DIRECT_URL", f"postgresql://app:pw@{NEON_DIRECT_HOST}/neondb")

        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert make_url(settings.migration_url).host == NEON_DIRECT_HOST

    def test_repr_hides_the_password(self) -> None:
        settings = make_settings(
            "postgresql://app:s3cret-pw@db.example.com/tasks",
            database_direct_url="postgresql://app:d1rect-pw@db.example.com/tasks",
        )

        assert "s3cret-pw" not in repr(settings)
        assert "d1rect-pw" not in repr(settings)
        assert "s3cret-pw" not in str(settings)

    def test_repr_hides_the_password_after_migration_url_was_read(self) -> None:
        settings = make_settings("postgresql://app:s3cret-pw@db.example.com/tasks")

        assert settings.migration_url.endswith("/tasks")

        assert "s3cret-pw" not in repr(settings)
        assert "s3cret-pw" not in str(settings)

    def test_pool_does_not_overflow_by_default(self) -> None:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert (settings.db_pool_size, settings.db_max_overflow) == (10, 0)

    def test_ping_after_idle_env_var_is_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TASK_API_DB_PING_AFTER_IDLE", "0")

        settings = Settings(_env_file=None)  # type: ignore[call-arg]

        assert settings.db_ping_after_idle == 0

    def test_negative_ping_after_idle_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TASK_API_DB_PING_AFTER_IDLE", "-1")

        with pytest.raises(ValidationError, match="db_ping_after_idle"):
            Settings(_env_file=None)  # type: ignore[call-arg]
