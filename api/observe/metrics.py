"""The service's Prometheus metrics, counted in every uvicorn worker and read as one.

uvicorn's workers are separate processes; a scrape reaches one of them. prometheus-client's
multiprocess mode keeps every worker's values in files of one directory, which any worker sums
when scraped. It must be chosen before prometheus-client is first imported, hence the order of
this module: `PROMETHEUS_MULTIPROC_DIR` when the operator sets it (it must then be emptied before
each start, as prometheus-client's documentation says); otherwise, in a uvicorn worker, a
directory of the supervisor's own (`task-api-metrics-<pid>-<start>` in the temporary directory),
which its workers share and no earlier run used (named by its pid and start time); a single
process keeps its values in memory.
"""

import asyncio
import contextlib
import multiprocessing
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _supervisor() -> str:
    """The parent's pid and, on Linux, its start time: a restarted container's supervisor has
    the same pid as the last one (and its workers the same pids), never the same start time."""
    parent = os.getppid()
    try:
        # Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
        started = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return str(parent)
    return f"{parent}-{started}"


def _choose_multiprocess_directory() -> str | None:
    chosen = os.environ.get(MULTIPROC_DIR)
    if chosen:
        return chosen
    if multiprocessing.parent_process() is None:
        return None  # one process: in-memory values
    # uvicorn's workers are spawned by one supervisor, which names their shared directory.
    directory = Path(tempfile.gettempdir()) / f"task-api-metrics-{_supervisor()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    os.environ[MULTIPROC_DIR] = str(directory)
    return str(directory)


MULTIPROCESS_DIRECTORY = _choose_multiprocess_directory()

# Imported only now: prometheus-client picks its value storage on import.
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# The `_created` series double the output and no dashboard of this service reads them.
disable_created_metrics()

# Request latencies, in seconds: the service answers in milliseconds; the top buckets catch
# waits for the pool and the database.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "task_api_requests",
    "HTTP requests answered, by route template (never the raw path), GraphQL operation, "
    "status and GraphQL error code",
    ["method", "route", "operation", "status", "code"],
)
LATENCY = Histogram(
    "task_api_request_duration_seconds",
    "Time from the request's arrival to its answer's last byte, by route and GraphQL operation",
    ["route", "operation"],
    buckets=LATENCY_BUCKETS,
)
POOL_IN_USE = Gauge(
    "task_api_db_pool_in_use",
    "Requests holding a database pool slot (sampled every second, and at each scrape)",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "task_api_db_pool_waiting",
    "Requests waiting for a database pool slot (sampled every second, and at each scrape)",
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "task_api_db_pool_timeouts",
    "Requests that waited the whole TASK_API_DB_POOL_TIMEOUT for a pool slot and got 503",
)
IDEMPOTENCY_REPLAYS = Counter(
    "task_api_idempotency_replays",
    "Keyed creates answered with the task an earlier request with the same key created",
)
UNAVAILABLE = Counter(
    "task_api_unavailable",
    "503 answers by cause: pool_timeout, database_unreachable, signing_keys_unreachable",
    ["cause"],
)

# What a GraphQL operation name must look like to become a label (the spec's Name, bounded),
# and how many distinct ones a process labels: names are the client's to choose, and every
# label value is a time series kept forever.
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
MAX_OPERATION_NAMES = 200
_named_operations: set[str] = set()


def operation_label(operation_type: str | None, operation_name: str | None) -> str:
    """ "query tasksOf", "mutation" (anonymous), "query other" (a name beyond the bound)."""
    if operation_type is None:
        return ""
    if not operation_name:
        return operation_type
    if operation_name not in _named_operations:
        if (
            len(_named_operations) >= MAX_OPERATION_NAMES
            or _OPERATION_NAME.fullmatch(operation_name) is None
        ):
            return f"{operation_type} other"
        _named_operations.add(operation_name)
    return f"{operation_type} {operation_name}"


class RequestMetrics:
    """The per-request counter and histogram.

    A request only appends its labels and duration to a list; `publish` (once a second, at
    every scrape and at shutdown) writes them to the counter and histogram. Written on each
    request, prometheus-client's multiprocess values (a lock, a pid check and a file write
    each, three per request) cost the service about 25 µs per request, against a few µs when
    written together (docs/performance.md, "What seeing costs").
    """

    # Published early past this many, so a burst between two samples stays bounded.
    MAX_PENDING = 10_000

    def __init__(self) -> None:
        self._pending: list[tuple[str, str, str, int, str, float]] = []
        # Labelled children kept: a lookup by labels costs more than the increment.
        self._counted: dict[tuple[str, str, str, int, str], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def observe(
        self, method: str, route: str, operation: str, status: int, code: str, seconds: float
    ) -> None:
        self._pending.append((method, route, operation, status, code, seconds))
        if len(self._pending) >= self.MAX_PENDING:
            self.publish()

    def publish(self) -> None:
        """Write the requests observed since the last call to the metrics."""
        pending, self._pending = self._pending, []
        for method, route, operation, status, code, seconds in pending:
            key = (method, route, operation, status, code)
            counter = self._counted.get(key)
            if counter is None:
                counter = self._counted[key] = REQUESTS.labels(*key)
            counter.inc()
            timed = self._timed.get((route, operation))
            if timed is None:
                timed = self._timed[(route, operation)] = LATENCY.labels(route, operation)
            timed.observe(seconds)


# How often a worker writes its pool's use to the metrics: a request's admission only counts in
# plain integers, since a multiprocess gauge write on each request is measurable.
SAMPLE_SECONDS = 1.0


@contextlib.asynccontextmanager
async def sampling(publish: Callable[[], None]) -> AsyncIterator[None]:
    """Call `publish` every SAMPLE_SECONDS while the block runs, and once more at its end."""

    async def loop() -> None:
        while True:
            publish()
            await asyncio.sleep(SAMPLE_SECONDS)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        publish()


def unavailable(cause: str) -> None:
    UNAVAILABLE.labels(cause).inc()


def exposition() -> tuple[bytes, str]:
    """Every metric of every worker, in Prometheus' text format, and its media type."""
    if MULTIPROCESS_DIRECTORY is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIRECTORY)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited() -> None:
    """Drop this worker's live gauges (its counters stay summed), as prometheus-client asks."""
    if MULTIPROCESS_DIRECTORY is not None:
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIRECTORY)
