"""The wake-ups' NOTIFYs: many users in one notification, at most one NOTIFY per interval.

The payload format is checked for any user id the service accepts; the sending, on PostgreSQL,
by a second connection that LISTENs beside the process's own.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from api.storage.events import CHANNEL, MAX_PAYLOAD_BYTES, Notifications, payloads, users_of
from api.tasks.shapes import USER_ID_MAX

# A bound on every wait: notifications come at once, so this only stops a broken test hanging.
WAIT = 10.0

# Any user id the service accepts: 1 to 255 characters, none of them NUL or a lone surrogate.
user_ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=USER_ID_MAX,
)


class TestPayloads:
    @given(st.lists(user_ids, max_size=200))
    def test_every_user_comes_back_in_order_within_the_size_limit(self, users: list[str]) -> None:
        sent = payloads(users)
        assert [user for payload in sent for user in users_of(payload)] == users
        assert all(len(payload.encode()) <= MAX_PAYLOAD_BYTES for payload in sent)

    def test_a_batch_is_one_notification_until_it_would_be_too_long(self) -> None:
        assert len(payloads([f"user-{number}" for number in range(100)])) == 1
        # Control characters are escaped six bytes each: 255 of them per id, 40 ids.
        escaped = ["\x01" * USER_ID_MAX] * 40
        sent = payloads(escaped)
        assert len(sent) > 1
        assert [user for payload in sent for user in users_of(payload)] == escaped

    def test_an_id_that_is_not_utf8_is_left_out(self) -> None:
        """The service refuses such an id, so it never stored one; the others still go."""
        assert [users_of(payload) for payload in payloads(["a", "b\ud800", "c"])] == [["a", "c"]]

    @pytest.mark.parametrize("payload", ["user-1", "[not json", "[1, 2]", '["a", 3]', "{}"])
    def test_a_payload_that_is_no_list_of_ids_names_one_user_as_it_is(self, payload: str) -> None:
        """What a process of an earlier version sends: the user id alone."""
        assert users_of(payload) == [payload]


@asynccontextmanager
async def listening(postgres_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads of every notification on the channel, from a connection of the test's own."""
    url = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await connection.add_listener(CHANNEL, lambda *arguments: heard.put_nowait(arguments[-1]))
    try:
        yield heard
    finally:
        await connection.close()


@asynccontextmanager
async def notifications(
    postgres_url: str, interval: float
) -> AsyncIterator[tuple[Notifications, asyncio.Queue[str]]]:
    """A started `Notifications` sending at most one NOTIFY per `interval`, and the users it
    wakes this process for."""
    woken: asyncio.Queue[str] = asyncio.Queue()
    sender = Notifications(
        postgres_url, 5.0, woken.put_nowait, lambda again: None, notify_interval=interval
    )
    sender.start()
    try:
        await asyncio.wait_for(sender.connected.wait(), WAIT)
        yield sender, woken
    finally:
        await sender.stop()


async def next_payload(heard: asyncio.Queue[str]) -> list[str]:
    return users_of(await asyncio.wait_for(heard.get(), WAIT))


class TestSending:
    async def test_users_announced_together_go_in_one_notification(self, postgres_url: str) -> None:
        users = [f"user-{number}" for number in range(50)] + ["with, comma", '["bracket"]']
        async with (
            listening(postgres_url) as heard,
            notifications(postgres_url, 0.0) as (sender, woken),
        ):
            for user in users:
                sender.announce(user)
            assert sorted(await next_payload(heard)) == sorted(users)
            # This process is woken too, once for each user.
            woke = [await asyncio.wait_for(woken.get(), WAIT) for _ in users]
            assert sorted(woke) == sorted(users)
            assert heard.empty()
            assert woken.empty()

    async def test_changes_within_the_interval_wait_for_one_notification(
        self, postgres_url: str
    ) -> None:
        async with (
            listening(postgres_url) as heard,
            notifications(postgres_url, 0.5) as (sender, _),
        ):
            sender.announce("first")
            # After a quiet interval the wake-up goes at once.
            assert await next_payload(heard) == ["first"]
            sender.announce("second")
            await asyncio.sleep(0)  # the sender takes "second", then waits out the interval
            sender.announce("third")
            assert sorted(await next_payload(heard)) == ["second", "third"]
            assert heard.empty()
