"""The caller of an HTTP request, from its `Authorization` header(s) and the app's verifier."""

from starlette.requests import HTTPConnection

from api.auth import ANYONE, Caller, TokenVerifier


async def caller_of(verifier: TokenVerifier | None, authorization: list[str]) -> Caller:
    """The caller these `Authorization` values name; AuthenticationError when authentication is
    on (there is a verifier) and they do not verify."""
    if verifier is None:
        return ANYONE
    return await verifier.caller(authorization)


async def authenticate(connection: HTTPConnection) -> Caller:
    """The caller of a request, with the app's verifier."""
    verifier: TokenVerifier | None = connection.app.state.verifier
    return await caller_of(verifier, connection.headers.getlist("authorization"))
