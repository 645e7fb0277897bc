"""What seeing costs per request, in one process: the edge's observation around a bare ASGI app.

Runs `api.web.observation.ObserveRequests` (request id, metrics, access log, each on or off)
around an app that answers at once, and prints the CPU it adds to a request in microseconds, the
median of several repeats. Apart from the machine's noise (no server, database or load tool), it
shows what `bench/peers.py --targets service,service-blind,service-logged` measures under load.

    .venv/bin/python bench/observe_cost.py [--requests 20000] [--repeats 7]
"""

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from api.observe import metrics
from api.web.observation import ObserveRequests

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
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
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


if __name__ == "__main__":
    main()
