"""A request's body handed on again, after an endpoint in front of the routing read it and let
the routing answer after all (the compiled GraphQL path, the REST endpoint)."""

from collections.abc import Iterable

from starlette.types import Message, Receive


def replayed(read: Iterable[Message], receive: Receive) -> Receive:
    """A `receive` that gives the messages read already, then whatever the client sends next."""
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
