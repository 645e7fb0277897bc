"""`python -m api.dev_token USER_ID`: a token the configured service accepts, or a clear refusal."""

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from api.dev_token import Refusal, main, mint
from tests.apps import client_of
from tests.conftest import make_settings
from tests.tokens import AUDIENCE, ISSUER, SECRET

HMAC = {"auth_jwt_secret": SECRET, "auth_issuer": ISSUER, "auth_audience": AUDIENCE}
ROOT = Path(__file__).resolve().parents[2]


async def test_the_token_opens_its_users_tasks_on_both_faces(database_url: str) -> None:
    token = mint(make_settings(database_url, **HMAC), "alice")
    auth = {"Authorization": f"Bearer {token}"}
    async with client_of(database_url, **HMAC) as client:
        created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=auth)
        assert created.status_code == 201
        query = {"query": '{ tasks(userId: "alice") { title } }'}
        answer = await client.post("/graphql", json=query, headers=auth)
        assert answer.json() == {"data": {"tasks": [{"title": "t"}]}}
        # It is alice's token, nobody else's, and nothing without it.
        assert (await client.get("/api/bob/tasks", headers=auth)).status_code == 403
        assert (await client.get("/api/alice/tasks")).status_code == 401


def test_the_token_follows_the_claim_and_algorithm_settings(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        auth_jwt_secret=SECRET,
        auth_user_id_claim="uid",
        auth_algorithms=["HS512"],
    )
    token = mint(settings, "alice", minutes=5)
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    claims = jwt.decode(token, SECRET, algorithms=["HS512"])
    assert claims["uid"] == "alice"
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize(
    ("settings", "user_id", "minutes", "reason"),
    [
        ({"auth_jwks_url": "https://auth.example.test/jwks"}, "alice", 60, "JWKS URL"),
        ({}, "alice", 60, "authentication is off"),
        (HMAC, "", 60, "not a valid user id"),
        (HMAC, "u" * 256, 60, "not a valid user id"),
        (HMAC, "alice", 0, "--minutes"),
    ],
)
def test_it_refuses_what_it_cannot_sign(
    tmp_path: Path, settings: dict[str, str], user_id: str, minutes: int, reason: str
) -> None:
    configured = make_settings(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", **settings)
    with pytest.raises(Refusal, match=reason):
        mint(configured, user_id, minutes)


def test_the_command_prints_only_the_token_and_refuses_with_status_2(tmp_path: Path) -> None:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "TASK_API_AUTH_JWT_SECRET": SECRET,
        "TASK_API_AUTH_AUDIENCE": AUDIENCE,
    }
    command = [sys.executable, "-m", "api.dev_token", "alice"]
    done = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)["sub"] == "alice"
    assert SECRET not in done.stdout + done.stderr
    del environment["TASK_API_AUTH_JWT_SECRET"]
    environment["TASK_API_AUTH_JWKS_URL"] = "https://auth.example.test/jwks"
    refused = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "JWKS URL" in refused.stderr


def test_settings_that_do_not_validate_are_named_without_their_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASK_API_AUTH_JWT_SECRET", "too-short-secret")
    assert main(["alice"]) == 2
    output = capsys.readouterr()
    assert output.out == ""
    assert "TASK_API_AUTH_JWT_SECRET must be at least 32 bytes" in output.err
    assert "too-short-secret" not in output.err
