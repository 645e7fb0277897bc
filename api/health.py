"""GET /health: 200 when the database answers, 503 when it does not."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import errors, service
from api.db import SessionDep

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Is the database reachable?",
    responses={503: {"description": "The database does not answer"}},
)
async def health(session: SessionDep, request: Request) -> JSONResponse:
    try:
        await service.ping(session)
    except errors.DatabaseError:
        retry_after = str(request.app.state.settings.retry_after_seconds)
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Retry-After": retry_after}
        )
    return JSONResponse({"status": "ok"})
