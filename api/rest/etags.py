"""Entity tags of single-task responses, and the conditional headers that use them (RFC 9110).

A task's ETag is strong and names both the task and its version: `"<id>.<version>"`. It changes on
every write that changes the task, so a client that sends it back in `If-Match` asks for its write
to happen only if nobody changed the task since it read it.
"""

import re
from uuid import UUID

from api.tasks.shapes import TaskRecord

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; anything between the tags is ignored.
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OPAQUE_TAG = re.compile(r"([0-9a-fA-F-]{32,36})\.([0-9]{1,18})")


def etag(task: TaskRecord) -> str:
    return f'"{task.id}.{task.version}"'


def _tags(header: str) -> list[tuple[bool, str]]:
    """The (weak, opaque-tag) pairs of an If-Match or If-None-Match value, minus malformed ones."""
    return [(bool(weak), opaque) for weak, opaque in _ENTITY_TAG.findall(header)]


def _version_of(opaque: str, task_id: UUID) -> int | None:
    """The version an opaque tag names for `task_id`, or None if it names another task or none."""
    match = _OPAQUE_TAG.fullmatch(opaque)
    if match is None:
        return None
    try:
        named = UUID(match.group(1))
    except ValueError:
        return None
    return int(match.group(2)) if named == task_id else None


def expected_versions(if_match: str | None, task_id: str) -> frozenset[int] | None:
    """The versions an If-Match header allows the write at; None when it allows any.

    No header or `*` allows any existing task. Otherwise only strong tags of this task count
    (If-Match uses the strong comparison): a header naming none of them allows no version, so the
    write is refused with 412, unless the task does not exist at all (404 goes first, RFC 9110
    13.2.1).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    try:
        target = UUID(task_id)
    except ValueError:
        # Not a task id at all: the service answers 404 before any version is compared.
        return frozenset()
    versions = (_version_of(opaque, target) for weak, opaque in _tags(if_match) if not weak)
    return frozenset(version for version in versions if version is not None)


def none_match(if_none_match: str | None, task: TaskRecord) -> bool:
    """True when If-None-Match names the task's current ETag (weak comparison) or is `*`."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    current = etag(task).strip('"')
    return any(opaque == current for _weak, opaque in _tags(if_none_match))
