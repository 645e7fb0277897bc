"""REST answers are encoded once from the records (api.rest.encoding), exactly as TaskRead would
serialize them, so the OpenAPI document's response model stays the truth."""

import uuid
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from api.rest.encoding import task_body
from api.tasks.shapes import TaskRead

MOMENTS = [
    datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC),  # no microseconds: isoformat leaves them out
    datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("description", [None, "", 'Ünïcode ✓ \u2028 "quoted"'])
def test_a_task_is_encoded_as_task_read_serializes_it(
    moment: datetime, description: str | None
) -> None:
    task = TaskRead(
        id=uuid.uuid4(),
        user_id="alice",
        title="Buy milk",
        description=description,
        completed=True,
        created_at=moment,
        updated_at=moment,
        version=3,
    )
    assert orjson.dumps(task_body(task)) == task.model_dump_json().encode()


async def test_answers_carry_every_field_of_the_task(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "Buy milk"})
    listed = await client.get("/api/alice/tasks")
    fetched = await client.get(f"/api/alice/tasks/{created.json()['id']}")
    assert created.headers["content-type"] == listed.headers["content-type"] == "application/json"
    assert listed.json() == [created.json()] == [fetched.json()]
    assert list(fetched.json()) == list(TaskRead.model_fields)
    assert TaskRead.model_validate_json(fetched.content).model_dump_json().encode() == (
        fetched.content
    )
