"""What seeing costs per request, in one process, apart from the machine's noise.

Without `--app`: runs `api.web.observation.ObserveRequests` (request id, metrics, access log,
each on or off) around an ASGI app that answers at once, and prints the time it adds to a
request in microseconds, the median of several repeats.

With `--app`: the whole service twice over one scratch PostgreSQL database (as
`bench/executor.py` builds it), once with its defaults (metrics and request ids on) and once
blind (both off), called as ASGI callables one request after another, the cases interleaved;
it prints CPU per request of the GraphQL list and create (compiled path) and of the REST list.

Either way no server, database load or load tool shares the measurement, unlike `bench/peers.py
--targets service,service-blind,service-logged`. Set PROMETHEUS_MULTIPROC_DIR to an empty
directory to measure the multiprocess metrics uvicorn's workers use.

    .venv/bin/python bench/observe_cost.py [--requests 20000] [--repeats 7]
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) .venv/bin/python bench/observe_cost.py --app
"""

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

from api.config import Settings
from api.main import create_app
from api.observe import metrics
from api.web.observation import ObserveRequests

# bench/ is not a package: its executor's helpers are imported from beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import executor

SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/api/alice/tasks",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench"), (b"accept", b"application/json")],
}


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[]"})


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    return None


async def per_request_us(app: Callable[..., Any], requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    # What the metrics' sampler would write meanwhile is part of each request's cost.
    request_metrics = getattr(app, "request_metrics", None)
    if request_metrics is not None:
        request_metrics.publish()
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--app", action="store_true", help="the whole service, on PostgreSQL")
    arguments = parser.parse_args()
    if arguments.app:
        measure_app(min(arguments.requests, 500), arguments.repeats)
        return
    # The access log's lines are made and formatted, but go nowhere.
    logging.getLogger("api.access").addHandler(logging.NullHandler())
    logging.getLogger("api.access").propagate = False
    logging.getLogger("api.access").setLevel(logging.INFO)

    def observed(request_ids: bool, counted: bool, access_log: bool) -> Any:
        return ObserveRequests(
            bare_app,
            request_ids=request_ids,
            request_metrics=metrics.RequestMetrics() if counted else None,
            access_log=access_log,
            tracer=None,
        )

    variants = {
        "bare app (no observation)": bare_app,
        "request ids only": observed(True, False, False),
        "metrics only": observed(False, True, False),
        "request ids + metrics (default)": observed(True, True, False),
        "default + access log": observed(True, True, True),
    }

    async def run() -> dict[str, float]:
        medians = {}
        for name, app in variants.items():
            await per_request_us(app, 1000)  # warm-up
            samples = [
                await per_request_us(app, arguments.requests) for _ in range(arguments.repeats)
            ]
            medians[name] = statistics.median(samples)
        return medians

    medians = asyncio.run(run())
    bare = medians["bare app (no observation)"]
    print(f"{'variant':<34}{'µs/request':>12}{'added µs':>10}")
    for name, value in medians.items():
        print(f"{name:<34}{value:>12.2f}{value - bare:>10.2f}")
    print(
        f"\nmedians of {arguments.repeats} runs of {arguments.requests} requests; "
        f"multiprocess metrics: {'on' if metrics.MULTIPROCESS_DIRECTORY else 'off (one process)'}"
    )


def measure_app(requests: int, repeats: int) -> None:
    logging.disable(logging.WARNING)
    url = asyncio.run(executor.create_postgres())
    try:
        asyncio.run(_measure_app(url, requests, repeats))
    finally:
        asyncio.run(executor.drop_postgres())


async def _measure_app(url: str, requests: int, repeats: int) -> None:
    def app(seeing: bool) -> Any:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=url, metrics_enabled=seeing, request_ids=seeing
        )
        return create_app(settings)

    async with LifespanManager(app(True)) as seeing, LifespanManager(app(False)) as blind:
        for manager in (seeing, blind):
            await executor.prepare_app(manager.app)

        def rest_case(name: str, target: Any) -> executor.Case:
            async def run_one() -> None:
                status, _ = await executor.call(target, "GET", f"/api/{executor.READER}/tasks", b"")
                assert status == 200

            return executor.Case("REST list 20 tasks", name, run_one)

        cases = []
        list_body, create_body = executor.LIST_BODY, executor.CREATE_BODY
        for name, manager in (("default", seeing), ("blind", blind)):
            cases += [
                executor.graphql_case("GraphQL list 20 tasks", name, manager.app, list_body),
                executor.graphql_case("GraphQL create", name, manager.app, create_body),
                rest_case(name, manager.app),
            ]
        for repeat in range(repeats):
            # Alternate which app goes first, so drift in the machine's speed touches both.
            for case in cases if repeat % 2 == 0 else cases[3:] + cases[:3]:
                await case.batch(requests)
    print(
        f"One process, PostgreSQL, medians of {repeats} interleaved repetitions of {requests} "
        f"requests; multiprocess metrics: {'on' if metrics.MULTIPROCESS_DIRECTORY else 'off'}"
    )
    print(f"{'request':<24}{'default µs':>12}{'blind µs':>10}{'blind/default':>15}")
    for index in range(3):
        default = statistics.median(cases[index].cpu)
        blind_cpu = statistics.median(cases[index + 3].cpu)
        print(
            f"{cases[index].request:<24}{default:>12,.0f}{blind_cpu:>10,.0f}"
            f"{blind_cpu / default:>15.1%}"
        )


if __name__ == "__main__":
    main()
