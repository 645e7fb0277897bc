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

The price of SO_REUSEPORT: connections still waiting in a worker's own queue when that worker
stops (a restart, a scale-down) are reset instead of going to another worker; clients retry
them as any dropped connection. `uvicorn api.main:app --workers N` still works, unbalanced.
"""

import socket
import sys
from typing import Any

from uvicorn.config import Config
from uvicorn.main import main as uvicorn_command

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


def main(arguments: list[str] | None = None) -> None:
    Config.bind_socket = bind_socket  # type: ignore[method-assign]
    uvicorn_command.main(
        args=[APP, *(sys.argv[1:] if arguments is None else arguments)],
        prog_name="python -m api.serve",
    )


if __name__ == "__main__":
    main()
