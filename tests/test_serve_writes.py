"""The production server's answers leave in one write (api/serve.py, `CoalescingTransport`).

The transport is driven on a real event loop over a transport that records what it is asked to
send; the server's configuration is built as `python -m api.serve` builds it, and pickled as
uvicorn hands it to each worker. The real server's other tests (tests/test_serve.py,
tests/test_shutdown.py, the live-update streams) run over it.
"""

import asyncio
import pickle
from typing import Any

from uvicorn.config import Config

from api.serve import CoalescingHttpToolsProtocol, CoalescingTransport, config_init


class RecordingTransport:
    """What a transport was asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def next_turn() -> None:
    """Let the event loop finish its turn (callbacks scheduled with call_soon run)."""
    await asyncio.sleep(0)


async def test_writes_of_one_turn_leave_together() -> None:
    recording = RecordingTransport()
    transport = CoalescingTransport(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert recording.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]
    await next_turn()
    assert recording.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]


async def test_a_lone_write_leaves_when_the_turn_ends() -> None:
    recording = RecordingTransport()
    transport = CoalescingTransport(recording, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"headers")
    assert recording.calls == []
    assert transport.get_write_buffer_size() == len(b"headers")
    await next_turn()
    assert recording.calls == [("write", b"headers")]
    transport.writelines([b"a", b"b"])
    await next_turn()
    assert recording.calls[1:] == [("write", b"ab")]


async def test_closing_sends_what_is_held_first_and_aborting_drops_it() -> None:
    loop = asyncio.get_running_loop()
    recording = RecordingTransport()
    transport = CoalescingTransport(recording, loop)  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    await next_turn()
    assert recording.calls == [("write", b"last words"), ("close", b"")]

    aborted = RecordingTransport()
    transport = CoalescingTransport(aborted, loop)  # type: ignore[arg-type]
    transport.write(b"never sent")
    transport.abort()
    await next_turn()
    assert aborted.calls == [("abort", b"")]
    # Anything else is the transport's own.
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)


def test_the_servers_workers_get_the_coalescing_protocol() -> None:
    config = Config.__new__(Config)
    config_init(config, "api.main:app", http="httptools")
    # As uvicorn's supervisor hands the configuration to each worker it spawns.
    in_worker = pickle.loads(pickle.dumps(config))
    in_worker.load()
    assert in_worker.http_protocol_class is CoalescingHttpToolsProtocol
    other = Config.__new__(Config)
    config_init(other, "api.main:app", http="h11")
    assert other.http == "h11"
