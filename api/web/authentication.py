"""The caller of an HTTP request, from its `Authorization` header(s) and the app's verifier."""

from starlette.requests import HTTPConnection

from api.auth import ANYONE, Caller, TokenVerifier


async def authenticate(connection: HTTPConnection) -> Caller:
    """The caller; AuthenticationError when authentication is on and fails."""
    verifier: TokenVerifier | None = connection.app.state.verifier
    if verifier is None:
        return ANYONE
    return await verifier.caller(connection.headers.getlist("authorization"))
