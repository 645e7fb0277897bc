"""The garbage collector's settings while the process serves: shorter and rarer pauses.

A request allocates thousands of short-lived container objects, so with CPython's defaults the
collector runs several times per request, and every full collection walks every object the
process holds, most of them made once at start-up (the app, its schemas, the libraries' own
objects). Those pauses are what the slowest answers wait for.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between young-generation collections while serving (CPython's default is 700).
SERVING_THRESHOLDS = (20_000, 50, 100)


@contextmanager
def serving_collector() -> Iterator[None]:
    """Freeze what start-up made (the collector then skips it) and collect less often; undone
    when serving ends, so a process that goes on (a test run) collects as before."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
