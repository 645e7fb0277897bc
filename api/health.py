"""GET /health: 200 when the database answers, 503 when it does not."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession

from api import errors, service
from api.db import SessionDep, SessionRoute

router = APIRouter(tags=["health"], route_class=SessionRoute)


async def _database_answers(session: AsyncSession) -> bool:
    """Whether the database answers; asked again on a fresh connection if the pooled one had died.

    A pooled connection used moments ago is not pinged before use, so after a database restart
    the first statement may meet a dead one; the database is up if a fresh connection answers.
    """
    try:
        await service.ping(session)
    except errors.DatabaseError as exc:
        cause = exc.__cause__
        if not (isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated):
            return False
    else:
        return True
    # The failed call rolled back, releasing the dead connection; this checks out another.
    try:
        await service.ping(session)
    except errors.DatabaseError:
        return False
    return True


@router.get(
    "/health",
    summary="Is the database reachable?",
    responses={503: {"description": "The database does not answer"}},
)
async def health(session: SessionDep, request: Request) -> JSONResponse:
    if not await _database_answers(session):
        retry_after = str(request.app.state.settings.retry_after_seconds)
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Retry-After": retry_after}
        )
    return JSONResponse({"status": "ok"})
