"""Start-up with a bad setting ends in one line and exit code 3, as the README's troubleshooting
says: the real app under a real uvicorn, one process per case (run side by side)."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from api.startup import STARTUP_FAILURE, StartupError, load_settings
from tests.conftest import IN_CI
from tests.storage.test_pooler import PGBOUNCER, _free_port, _wait_until_listening

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# A failing start-up takes a second or two; this bounds a hang, not a slow machine.
EXIT_TIMEOUT = 60
PASSWORD = "pa55-never-shown"


UVICORN = ("-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", "0")
# The check the container runs before uvicorn (whose supervisor exits 0 when workers fail).
CHECK = ("-m", "api.startup")


async def start(
    tmp_path: Path, command: tuple[str, ...] = UVICORN, **environment: str
) -> tuple[int, str]:
    """Start `command` (the real server by default) with `environment`; its exit code and
    everything it wrote."""
    cleaned = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TASK_API_", "DATABASE_", "OTEL_", "PROMETHEUS_"))
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        cwd=tmp_path,  # no .env file from the working tree
        env={**cleaned, "PYTHONPATH": str(ROOT), **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(EXIT_TIMEOUT):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def assert_fails_readably(code: int, output: str, *expected: str) -> None:
    assert code == STARTUP_FAILURE, output
    failure = [line for line in output.splitlines() if "Start-up failed" in line]
    assert len(failure) == 1, output
    for part in expected:
        assert part in failure[0], output
    assert "Traceback" not in output
    assert PASSWORD not in output


SETTINGS_CASES = {
    "unknown scheme": (
        {"DATABASE_URL": f"mysql://app:{PASSWORD}@db.example.com/tasks"},
        ["DATABASE_URL", "'mysql'", "postgresql://"],
    ),
    "not a URL": ({"DATABASE_URL": "localhost:5432/tasks"}, ["DATABASE_URL", "not a database"]),
    "empty URL": ({"DATABASE_URL": " "}, ["DATABASE_URL is empty"]),
    "bad direct URL": (
        {"DATABASE_DIRECT_URL": f"oracle://app:{PASSWORD}@db/tasks"},
        ["DATABASE_DIRECT_URL", "'oracle'"],
    ),
    "number out of range": (
        {"TASK_API_DB_POOL_SIZE": "0"},
        ["invalid setting", "TASK_API_DB_POOL_SIZE", "greater than or equal to 1"],
    ),
    "not a number": ({"TASK_API_DB_POOL_TIMEOUT": "ten"}, ["TASK_API_DB_POOL_TIMEOUT"]),
    "short secret": ({"TASK_API_AUTH_JWT_SECRET": PASSWORD}, ["TASK_API_AUTH_JWT_SECRET", "32"]),
    "unknown log format": ({"TASK_API_LOG_FORMAT": "xml"}, ["TASK_API_LOG_FORMAT", "'json'"]),
}


# Each case's message is checked in-process (fast); a few of them also start the real server.
STARTED_FOR_REAL = ("unknown scheme", "number out of range", "short secret")


@pytest.mark.parametrize("case", SETTINGS_CASES)
def test_each_bad_setting_is_refused_in_one_line_naming_it(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment, expected = SETTINGS_CASES[case]
    monkeypatch.chdir(tmp_path)  # no .env file from the working tree
    for key in list(os.environ):
        if key.startswith(("TASK_API_", "DATABASE_")):
            monkeypatch.delenv(key)
    for key, setting in environment.items():
        monkeypatch.setenv(key, setting)

    with pytest.raises(StartupError) as refused:
        load_settings()

    message = str(refused.value)
    assert "\n" not in message
    assert PASSWORD not in message
    for part in expected:
        assert part in message


async def test_a_bad_setting_ends_the_real_start_up_in_one_line(tmp_path: Path) -> None:
    results = await asyncio.gather(
        *(start(tmp_path, **SETTINGS_CASES[case][0]) for case in STARTED_FOR_REAL)
    )
    for case, (code, output) in zip(STARTED_FOR_REAL, results, strict=True):
        assert_fails_readably(code, output, *SETTINGS_CASES[case][1]), case


def _with(url: str, **parts: object) -> str:
    return make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


def _with_query(url: str, **query: str) -> str:
    return make_url(url).update_query_dict(query).render_as_string(hide_password=False)


async def test_database_urls_that_cannot_work_end_start_up_in_one_line(
    postgres_url: str, tmp_path: Path
) -> None:
    cases = {
        "database missing": (
            _with(postgres_url, database="no_such_database", password=PASSWORD),
            ["DATABASE_URL", "'no_such_database' does not exist", "createdb"],
        ),
        # A hosted database's URL (Neon's asks for SSL) pointed at a local server without SSL.
        "SSL asked, server has none": (
            _with_query(_with(postgres_url, password=PASSWORD), sslmode="require"),
            ["DATABASE_URL", "does not offer SSL", "remove sslmode"],
        ),
        "nothing listening": (
            _with(postgres_url, port=_free_port(), password=PASSWORD),
            ["DATABASE_URL", "nothing accepts connections at 127.0.0.1"],
        ),
        "unknown host": (
            _with(postgres_url, host="no-such-host.invalid", password=PASSWORD),
            ["DATABASE_URL", "'no-such-host.invalid' cannot be resolved"],
        ),
        "direct URL down": (
            _with(postgres_url, port=_free_port(), password=PASSWORD),
            ["DATABASE_DIRECT_URL", "nothing accepts connections"],
        ),
    }
    environments = [{"DATABASE_URL": url} for url, _ in cases.values()]
    environments[-1] = {
        "DATABASE_URL": postgres_url,
        "DATABASE_DIRECT_URL": environments[-1]["DATABASE_URL"],
    }
    results = await asyncio.gather(
        *(start(tmp_path, **env) for env in environments),
        start(tmp_path, CHECK, DATABASE_URL=cases["database missing"][0]),
        start(tmp_path, CHECK, DATABASE_URL=postgres_url),
    )
    *refused, (check_code, check_output), (good_code, good_output) = results
    for (name, (_, expected)), (code, output) in zip(cases.items(), refused, strict=True):
        assert_fails_readably(code, output, *expected), name
    assert_fails_readably(check_code, check_output, *cases["database missing"][1])
    assert good_code == 0, good_output


@pytest.fixture(scope="module")
def tls_pooler(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PgBouncer that checks passwords itself and takes SSL connections only: the two
    refusals a local PostgreSQL with trust authentication and no SSL cannot give."""
    if not os.access(PGBOUNCER, os.X_OK) or shutil.which("openssl") is None:
        reason = "no pgbouncer or openssl (apt-get install pgbouncer openssl)"
        if IN_CI:
            pytest.fail(f"{reason}; under CI=true these tests must run")
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("tls-pooler")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    users = directory / "users.txt"
    users.write_text('"app" "right-password"\n')
    target = make_url(postgres_url)
    server = f"host={target.host} port={target.port or 5432} dbname={target.database}"
    port = _free_port()
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
tasks = {server} user={target.username}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = plain
auth_file = {users}
client_tls_sslmode = require
client_tls_key_file = {key}
client_tls_cert_file = {cert}
pool_mode = transaction
"""
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        for path in (key, cert, users, config):
            shutil.chown(path, "postgres")
        command[1:1] = ["--user", "postgres"]  # PgBouncer refuses to run as root
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(port, process)
        yield f"postgresql://app:right-password@127.0.0.1:{port}/tasks"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.pooler
async def test_wrong_password_and_missing_ssl_end_start_up_in_one_line(
    tls_pooler: str, tmp_path: Path
) -> None:
    wrong_password = _with_query(_with(tls_pooler, password=PASSWORD), sslmode="require")
    # The reverse of a Neon URL on a local server: the server wants SSL, the URL turns it off.
    no_ssl = _with_query(tls_pooler, sslmode="disable")
    (code, output), (ssl_code, ssl_output) = await asyncio.gather(
        start(tmp_path, DATABASE_URL=wrong_password), start(tmp_path, DATABASE_URL=no_ssl)
    )
    assert_fails_readably(code, output, "DATABASE_URL", "refused the user name or password")
    assert_fails_readably(ssl_code, ssl_output, "accepts only SSL", "sslmode=require")
    assert "right-password" not in ssl_output
