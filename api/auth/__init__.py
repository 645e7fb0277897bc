"""Who is calling: bearer tokens verified with PyJWT against a shared secret or a JWKS URL, and
the one ownership rule. Transport-free: the faces hand it the `Authorization` header values."""

from api.auth.tokens import ANYONE, Caller, TokenVerifier, authorize, create_verifier

__all__ = ["ANYONE", "Caller", "TokenVerifier", "authorize", "create_verifier"]
