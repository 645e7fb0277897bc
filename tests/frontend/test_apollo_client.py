"""Apollo Client's persisted-query link against the service under a real uvicorn on 127.0.0.1.

tests/frontend/apollo_persisted.mjs runs in node with the pinned tools (tools/frontend) and
prints every request it sent with its answer; these tests read that record. Without node or the
tools this skips, except under CI=true.
"""

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from tests.apps import served
from tests.conftest import make_settings
from tests.frontend.test_generated_types import TOOL_TIMEOUT, TOOLS, require_tools

SCRIPT = Path(__file__).with_name("apollo_persisted.mjs")
SERVER_START_TIMEOUT = 30


@contextlib.contextmanager
def serving(database_url: str, **settings: Any) -> Iterator[str]:
    """The app under uvicorn on a free port of 127.0.0.1; its GraphQL URL."""
    app = create_app(make_settings(database_url, **settings))
    with served(app, timeout=SERVER_START_TIMEOUT, ws="none") as base_url:
        yield f"{base_url}/graphql"


@pytest.fixture
def apollo(tmp_path: Path) -> Any:
    """Runs the script with the tools' node_modules beside it; its printed record."""
    require_tools()
    shutil.copy(SCRIPT, tmp_path / SCRIPT.name)
    (tmp_path / "node_modules").symlink_to(TOOLS / "node_modules", target_is_directory=True)

    def run(*arguments: str) -> dict[str, Any]:
        done = subprocess.run(
            ["node", SCRIPT.name, *arguments],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        record: dict[str, Any] = json.loads(done.stdout)
        return record

    return run


def hashed(request: dict[str, Any]) -> bool:
    """Sent by hash alone: no document text in the body or the URL."""
    body = request["body"] or {}
    return "query" not in body and request["query"] is None


def code_of(request: dict[str, Any]) -> str | None:
    errors = request["answer"].get("errors") or [{}]
    code: str | None = errors[0].get("extensions", {}).get("code")
    return code


@pytest.mark.slow
def test_first_request_misses_then_hashes_alone_hit_by_post_and_get(
    apollo: Any, database_url: str
) -> None:
    with serving(database_url) as url:
        record = apollo("apq", url)
    results, requests = record["results"], record["requests"]
    assert all(result["error"] is None for result in results.values()), results
    assert results["created"]["data"]["createTask"]["title"] == "Buy milk"
    assert [task["title"] for task in results["listedAgain"]["data"]["tasks"]] == ["Buy milk"] * 2
    sent = [(r["method"], hashed(r), r["status"], code_of(r)) for r in requests]
    assert sent == [
        # The mutation: its hash is unknown, the link sends the text, then the hash is enough.
        ("POST", True, 404, "PERSISTED_QUERY_NOT_FOUND"),
        ("POST", False, 200, None),
        ("POST", True, 200, None),
        # The query by GET: unknown, registered by POST, then a GET by hash alone hits.
        ("GET", True, 404, "PERSISTED_QUERY_NOT_FOUND"),
        ("POST", False, 200, None),
        ("GET", True, 200, None),
    ]


@pytest.mark.slow
def test_trusted_mode_serves_a_listed_document_and_refuses_another(
    apollo: Any, database_url: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps(apollo("manifest")["results"]))
    with serving(database_url, graphql_trusted_documents=manifest) as url:
        record = apollo("trusted", url)
    results, requests = record["results"], record["requests"]
    assert results["listed"] == {"data": {"tasks": []}, "error": None}
    assert results["unlisted"]["data"] is None
    assert "Only trusted documents are accepted" in results["unlisted"]["error"]
    sent = [(r["method"], hashed(r), r["status"], code_of(r)) for r in requests]
    assert sent == [
        ("GET", True, 200, None),  # listed: the hash alone is enough from the first request
        ("GET", True, 404, "PERSISTED_QUERY_NOT_FOUND"),
        ("POST", False, 400, "GRAPHQL_VALIDATION_FAILED"),  # the text is not on the list
    ]
