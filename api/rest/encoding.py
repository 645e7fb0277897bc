"""REST answers encoded once, with orjson, from the service's records.

A route returns the response itself, so FastAPI neither validates the record into its response
model again nor serializes it a second time; the response model stays on each route for the
OpenAPI document. The JSON is `TaskRead`'s, field by field (`tests/rest/test_encoding.py` compares
the two): the id as text, timestamps in ISO 8601 with their UTC offset.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from fastapi import Response

from api.tasks.shapes import TaskRead, TaskRecord

JSON = "application/json"


def _utc_as_is(moment: datetime) -> datetime | str:
    """A UTC datetime as it is, for orjson, which writes it exactly as isoformat() does and
    about ten times faster; any other as isoformat()'s text."""
    return moment if moment.tzinfo is UTC else moment.isoformat()


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    if annotation is UUID:
        return str
    if annotation is datetime:
        return _utc_as_is
    return None


# TaskRead's fields in order, each with how its value is written (None: as it is).
_FIELDS = tuple(
    (name, _converter(field.annotation)) for name, field in TaskRead.model_fields.items()
)


def task_body(task: TaskRecord) -> dict[str, Any]:
    """The task's JSON object, as TaskRead serializes it."""
    body = {}
    for name, convert in _FIELDS:
        value = getattr(task, name)
        body[name] = value if convert is None or value is None else convert(value)
    return body


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(content), status_code, headers, media_type=JSON)


def task_response(
    task: TaskRecord, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return json_response(task_body(task), status_code, headers)


def tasks_response(tasks: Iterable[TaskRecord], headers: Mapping[str, str] | None) -> Response:
    return json_response([task_body(task) for task in tasks], headers=headers)
