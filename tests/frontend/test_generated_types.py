"""What a frontend team generates from this service type-checks: graphql-codegen's client preset on
schema.graphql with the operations under tests/frontend/operations, openapi-typescript on the
app's OpenAPI document, and `tsc --noEmit` over both and tests/frontend/usage.ts. The persisted
documents manifest the client preset writes is then the trusted documents list of a running app.

The tools are pinned in tools/frontend (package-lock.json) and installed by `.ci/run` with
`npm ci`; nothing is downloaded here. Without them this skips, except under CI=true.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from api.main import create_app
from tests.apps import client_of
from tests.conftest import IN_CI, make_settings

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "frontend"
BIN = TOOLS / "node_modules" / ".bin"
HERE = Path(__file__).parent
# Each tool is bounded: a hung one fails the test instead of the whole run.
TOOL_TIMEOUT = 120


def require_tools() -> None:
    missing = [
        tool
        for tool in ("graphql-codegen", "openapi-typescript", "tsc")
        if not (BIN / tool).exists()
    ]
    if shutil.which("node") is None or missing:
        reason = (
            f"the frontend tools are not installed ({', '.join(missing) or 'node'} missing); "
            "run `npm ci --prefix tools/frontend`"
        )
        if IN_CI:
            pytest.fail(f"{reason}; under CI=true the generated types must be checked")
        pytest.skip(reason)


def run(command: list[str], cwd: Path, **environment: str) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch frontend: the generated code, usage.ts beside it, the tools' node_modules."""
    require_tools()
    out = tmp_path_factory.mktemp("frontend")
    (out / "node_modules").symlink_to(TOOLS / "node_modules", target_is_directory=True)
    run(
        [str(BIN / "graphql-codegen"), "--config", "codegen.ts"],
        TOOLS,
        CODEGEN_OUT=f"{out}/graphql/",
    )
    app = create_app(make_settings(f"sqlite+aiosqlite:///{out / 'unused.db'}"))
    (out / "openapi.json").write_text(json.dumps(app.openapi()))
    run(
        [str(BIN / "openapi-typescript"), str(out / "openapi.json"), "-o", str(out / "rest.ts")],
        out,
    )
    shutil.copy(HERE / "usage.ts", out / "usage.ts")
    return out


@pytest.mark.slow
def test_the_generated_types_type_check(generated: Path) -> None:
    tsconfig = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            "verbatimModuleSyntax": True,
            "exactOptionalPropertyTypes": True,
            "noUnusedLocals": True,
            "skipLibCheck": True,
            "types": [],
        },
        "include": ["usage.ts", "graphql/*.ts", "rest.ts"],
    }
    (generated / "tsconfig.json").write_text(json.dumps(tsconfig))
    run([str(BIN / "tsc"), "--noEmit", "-p", "tsconfig.json"], generated)
    # Every operation was generated, typed by the schema's own types.
    types = (generated / "graphql" / "graphql.ts").read_text()
    for name in ("TasksQuery", "TaskPageQuery", "CreateTaskMutation", "DeleteTaskMutation"):
        assert f"export type {name} =" in types


@pytest.mark.slow
async def test_the_codegen_manifest_is_a_trusted_documents_list(
    generated: Path, database_url: str
) -> None:
    manifest_path = generated / "graphql" / "persisted-documents.json"
    manifest = json.loads(manifest_path.read_text())
    async with client_of(database_url, graphql_trusted_documents=manifest_path) as client:
        create = {
            "documentId": manifest_id(manifest, "mutation CreateTask"),
            "variables": {"userId": "alice", "input": {"title": "Buy milk"}},
        }
        created = (await client.post("/graphql", json=create)).json()
        assert created["data"]["createTask"]["title"] == "Buy milk"
        tasks = {
            "documentId": manifest_id(manifest, "query Tasks("),
            "variables": {"userId": "alice"},
        }
        listed = (await client.post("/graphql", json=tasks)).json()
        assert [task["title"] for task in listed["data"]["tasks"]] == ["Buy milk"]
        refused = await client.post("/graphql", json={"query": '{ tasks(userId: "alice") { id } }'})
        assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def manifest_id(manifest: dict[str, str], operation: str) -> str:
    [document_id] = [key for key, text in manifest.items() if operation in text]
    return document_id
