"""The architecture holds: layer borders (import-linter's contracts in pyproject.toml), the GraphQL
task type and the domain's one description of a task, and the executor's fast path."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.tasks.shapes import TaskRead
from graphql_schema.execution import PlainFieldsExecutionContext
from graphql_schema.schema import schema
from graphql_schema.types import Task
from tests.factories import TASK_FIELDS, create_task, graphql

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_crosses_a_layer_border() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_graphql_task_has_the_domain_tasks_fields() -> None:
    fields = {field.python_name for field in Task.__strawberry_definition__.fields}
    assert fields == set(TaskRead.model_fields)


def test_the_schema_runs_on_the_plain_field_executor() -> None:
    assert schema.execution_context_class is PlainFieldsExecutionContext


async def test_a_listed_task_is_completed_without_graphql_cores_per_field_path(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for title in ("one", "two", "three"):
        await create_task(client, title=title)
    executed: list[str] = []
    per_field = PlainFieldsExecutionContext.execute_field

    def counting(self: PlainFieldsExecutionContext, *args: Any) -> Any:
        parent_type, _source, field_details_list = args[:3]
        executed.append(f"{parent_type.name}.{field_details_list[0].node.name.value}")
        return per_field(self, *args)

    monkeypatch.setattr(PlainFieldsExecutionContext, "execute_field", counting)
    body = await graphql(client, f'{{ tasks(userId: "alice") {{ {TASK_FIELDS} }} }}')
    assert [task["title"] for task in body["data"]["tasks"]] == ["one", "two", "three"]
    # Only the root field goes through graphql-core's per-field machinery; its 3 x 8 plain
    # fields are completed by the planned pass.
    assert executed == ["Query.tasks"]
