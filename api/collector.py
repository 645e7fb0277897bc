"""The garbage collector while the process serves: no walking of what start-up made.

Every full collection walks every object the process holds, and most of them are made once at
start-up (the app, its schemas, the libraries' own objects): measured under load, each full
collection paused a worker for about 100 ms, several times a minute, and those pauses were what
the slowest answers waited for. Frozen, those objects are skipped, and a full collection takes
about 10 ms. CPython's collection thresholds are kept: larger ones made the young collections
long enough to show at the tail themselves.

What requests make is freed by reference counting as they end: a compiled GraphQL read or create
leaves no reference cycle (graphql_schema.execution.release; a test names any that comes back),
so the collector finds nothing of theirs to free and runs only as often as requests in flight
make objects.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serving_collector() -> Iterator[None]:
    """Freeze what start-up made; unfreeze when serving ends, so a process that goes on (a test
    run) collects it as before."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
