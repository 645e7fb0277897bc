"""The production server: uvicorn's command line and worker supervisor, each worker listening on
a socket of its own.

    python -m api.serve --workers 2 [any other uvicorn option]     (serves api.main:app)

Under `uvicorn --workers N` the supervisor binds one socket and every worker accepts from it.
Whichever worker wakes first accepts every connection that is waiting, so clients that keep
their connections open (browsers, proxies, load balancers) pile onto one worker: measured here,
all 32 keep-alive connections of a benchmark's load went to one of two workers while the other
stayed idle, so the second core served nothing of ours and every request queued behind the
others in one process. Here, on Linux, each worker binds its own socket to the same address
with SO_REUSEPORT and the kernel spreads new connections across the workers by their addresses.

How: uvicorn's supervisor hands its socket to each worker it starts (or restarts), pickled, and
workers are spawned. `Config.bind_socket` is replaced in this process only (the supervisor): it
checks the address as uvicorn does (a port anything else holds fails here, once, with uvicorn's
message, also when that is another instance of this service), then returns a `WorkerSocket`, a
stand-in that becomes, when unpickled in a worker, a socket bound there. One worker, a Unix
socket, a file descriptor, or another system: uvicorn's own binding, unchanged.

Each response also leaves in one write where uvicorn makes two (`--http httptools`, as the
README's command asks): uvicorn writes the status line and headers as soon as the app starts the
answer and the body when it comes, and the event loop sends each write at once, so every answer
cost two system calls and two segments, each waking the client. `CoalescingTransport` holds a
write until the next one (then both go together) or until the loop's turn ends (then it goes
alone), so nothing waits longer than that turn.

The price of SO_REUSEPORT: connections still waiting in a worker's own queue when that worker
stops (a restart, a scale-down) are reset instead of going to another worker; clients retry
them as any dropped connection. `uvicorn api.main:app --workers N` still works, unbalanced.
"""

import asyncio
import socket
import sys
from typing import Any

from uvicorn.config import Config
from uvicorn.main import main as uvicorn_command
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

APP = "api.main:app"

_uvicorns_bind_socket = Config.bind_socket


def worker_socket(family: int, address: Any) -> socket.socket:
    """A listening socket's start, of this worker's own, on the supervisor's address."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


class WorkerSocket:
    """The supervisor's stand-in for the listening socket: pickled into each worker it starts,
    it arrives there as a socket bound by that worker (`worker_socket`)."""

    def __init__(self, family: int, address: Any) -> None:
        self.family = family
        self.address = address

    def __reduce__(self) -> tuple[Any, tuple[int, Any]]:
        return worker_socket, (self.family, self.address)


def balances(config: Config) -> bool:
    """Whether each worker gets a socket of its own: several workers on a TCP address, where
    the kernel spreads connections over SO_REUSEPORT sockets (Linux)."""
    return (
        config.workers > 1
        and config.uds is None
        and config.fd is None
        and sys.platform == "linux"
        and hasattr(socket, "SO_REUSEPORT")
    )


def bind_socket(config: Config) -> Any:
    """uvicorn's `Config.bind_socket`, except that under several workers the supervisor only
    checks the address and hands each worker a `WorkerSocket`."""
    checked = _uvicorns_bind_socket(config)
    if not balances(config):
        return checked
    # The port uvicorn bound (the one the system chose, for port 0), then let go: never
    # listened on, so nothing waits on it.
    family, address = checked.family, checked.getsockname()
    checked.close()
    return WorkerSocket(family, address)


class CoalescingTransport:
    """A connection's transport whose writes within one turn of the event loop leave together.

    A write is held until the next write, which then goes with it in one, or until the loop's
    turn ends (`call_soon`), when it goes alone. Closing sends what is held first; aborting
    drops it, as it drops whatever the transport still buffers. Everything else is the
    transport's own.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport`: each answer's headers and body
    leave in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


_uvicorns_config_init = Config.__init__


def config_init(config: Config, *args: Any, **kwargs: Any) -> None:
    """uvicorn's `Config.__init__`, with `--http httptools` served by
    `CoalescingHttpToolsProtocol`. The class (not its name) is what each worker's pickled
    configuration carries, so workers import it from here."""
    _uvicorns_config_init(config, *args, **kwargs)
    if config.http == "httptools":
        config.http = CoalescingHttpToolsProtocol


def main(arguments: list[str] | None = None) -> None:
    Config.bind_socket = bind_socket  # type: ignore[method-assign]
    Config.__init__ = config_init  # type: ignore[method-assign]
    uvicorn_command.main(
        args=[APP, *(sys.argv[1:] if arguments is None else arguments)],
        prog_name="python -m api.serve",
    )


if __name__ == "__main__":
    main()
