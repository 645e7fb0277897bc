"""GET /health: 200 when the database answers, 503 when it does not."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.rest.routing import SessionDep, SessionRoute, TasksDep
from api.tasks import errors

router = APIRouter(tags=["health"], route_class=SessionRoute)


@router.get(
    "/health",
    summary="Is the database reachable?",
    responses={503: {"description": "The database does not answer"}},
)
async def health(db: SessionDep, tasks: TasksDep, request: Request) -> JSONResponse:
    # The service's ping is a retried read: a pooled connection that died since its last use
    # (a database restart) is replaced, and the database is up if a fresh one answers.
    try:
        await tasks.ping(db)
    except errors.DatabaseError:
        retry_after = str(request.app.state.settings.retry_after_seconds)
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Retry-After": retry_after}
        )
    return JSONResponse({"status": "ok"})
