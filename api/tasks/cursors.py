"""Opaque keyset cursors: the sort key and id of a boundary task, signed for its user and order.

A cursor is `base64url(payload).base64url(mac)`. The payload names the order it was made for and
the boundary task's sort key (for titles: the folded title and the title) and id; the MAC
(HMAC-SHA256) covers the payload and the user id, so a cursor that was edited, made for another
user, or made with another service key is refused.
The key is `TASK_API_CURSOR_SECRET` when set, else one the first migration stored in the database,
so every process and instance over the same database reads the same cursors.
"""

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from api.tasks import errors
from api.tasks.shapes import Boundary, TaskOrder, TaskOrderField, TaskRecord, TitleKey, fold

FORMAT_VERSION = 1


def sort_key(task: TaskRecord, field: TaskOrderField) -> datetime | TitleKey:
    """The task's key in `field`'s order, without the id: (folded title, title) for titles."""
    if field is TaskOrderField.TITLE:
        folded = getattr(task, "title_folded", None)
        return (folded if folded is not None else fold(task.title), task.title)
    value: datetime = getattr(task, field.value)
    return value


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


def _invalid(message: str = "is not a valid cursor for this list") -> errors.ValidationError:
    return errors.ValidationError([{"field": "cursor", "message": message}])


def _title_key(raw_key: Any) -> TitleKey:
    """A title cursor's key: [folded title, title]; a cursor made before titles were ordered by
    their folded form holds the title alone, whose folded form is recomputed (so it still reads
    on from the same task)."""
    if isinstance(raw_key, str):
        return (fold(raw_key), raw_key)
    if (
        isinstance(raw_key, list)
        and len(raw_key) == 2
        and all(isinstance(part, str) for part in raw_key)
    ):
        return (raw_key[0], raw_key[1])
    raise _invalid()


# Reads the service's cursor key from the database (once per process: the codec keeps it).
KeyReader = Callable[[], Awaitable[str]]


class CursorCodec:
    """Encodes and checks cursors with the service key (fetched once, then kept)."""

    def __init__(self, secret: str | None = None) -> None:
        self._key: bytes | None = secret.encode() if secret else None

    async def _get_key(self, read_key: KeyReader) -> bytes:
        if self._key is None:
            self._key = (await read_key()).encode()
        return self._key

    def _mac(self, key: bytes, user_id: str, payload: bytes) -> bytes:
        message = user_id.encode() + b"\x00" + payload
        return hmac.new(key, message, hashlib.sha256).digest()[:16]

    async def encode(
        self, read_key: KeyReader, user_id: str, order: TaskOrder, task: TaskRecord
    ) -> str:
        key = sort_key(task, order.field)
        fields: list[Any] = [
            FORMAT_VERSION,
            order.token,
            key.isoformat() if isinstance(key, datetime) else list(key),
            str(task.id),
        ]
        payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
        mac = self._mac(await self._get_key(read_key), user_id, payload)
        return f"{_b64encode(payload)}.{_b64encode(mac)}"

    async def decode(
        self,
        read_key: KeyReader,
        user_id: str,
        order: TaskOrder,
        cursor: str,
        field: str = "cursor",
    ) -> Boundary:
        """The boundary `cursor` names; a ValidationError naming `field` when it is not valid."""
        try:
            return await self._decode(read_key, user_id, order, cursor)
        except errors.ValidationError as exc:
            raise exc.renamed(lambda _: field) from None

    async def _decode(
        self, read_key: KeyReader, user_id: str, order: TaskOrder, cursor: str
    ) -> Boundary:
        try:
            payload_text, mac_text = cursor.split(".")
            payload, mac = _b64decode(payload_text), _b64decode(mac_text)
        except (ValueError, binascii.Error):
            raise _invalid() from None
        expected = self._mac(await self._get_key(read_key), user_id, payload)
        if not hmac.compare_digest(mac, expected):
            raise _invalid()
        try:
            version, order_token, raw_key, raw_id = json.loads(payload)
            task_id = UUID(raw_id)
        except (ValueError, TypeError):
            raise _invalid() from None
        if version != FORMAT_VERSION:
            raise _invalid()
        if order_token != order.token:
            raise _invalid(f"was made for the order {order_token}, not {order.token}")
        if order.field is TaskOrderField.TITLE:
            return Boundary(key=_title_key(raw_key), task_id=task_id)
        try:
            return Boundary(key=datetime.fromisoformat(raw_key), task_id=task_id)
        except (ValueError, TypeError):
            raise _invalid() from None
