"""GET /metrics: the Prometheus metrics of every worker (api.observe.metrics), for the scraper.

Metrics are not for every caller: with TASK_API_METRICS_TOKEN set the scraper sends it as a
bearer token; without one the page exists only when TASK_API_METRICS_PUBLIC says the port it
is served on is private. Otherwise it answers 404, as for any path that is not there.
"""

import asyncio
import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from api.config import Settings
from api.observe import metrics

router = APIRouter(include_in_schema=False)


def _allowed(settings: Settings, authorization: str | None) -> bool:
    if settings.metrics_token is None:
        return settings.metrics_public
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    return hmac.compare_digest((authorization or "").encode(), expected)


@router.get("/metrics")
async def metrics_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.metrics_enabled or (
        settings.metrics_token is None and not settings.metrics_public
    ):
        raise HTTPException(404, "Not Found")
    if not _allowed(settings, request.headers.get("authorization")):
        raise HTTPException(401, "A bearer token is required", {"WWW-Authenticate": "Bearer"})
    # This worker's pool as it is now and every request it answered (the other workers'
    # publish theirs once a second).
    request.app.state.publish_metrics()
    # Several workers' files are read and summed: off the event loop.
    body, media_type = await asyncio.to_thread(metrics.exposition)
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})
