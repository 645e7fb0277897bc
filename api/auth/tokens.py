"""Who is calling, and the one rule of who may address which user's tasks.

Frontends sign their users in elsewhere (Better Auth, Auth.js, Auth0, ...) and send the JWT they
got as `Authorization: Bearer <token>`. `TokenVerifier` checks it with PyJWT against a shared
HMAC secret or the public keys of a JWKS URL, and turns it into a `Caller`. `authorize` is the
ownership rule both faces apply before any database read or write: the caller must be the user
the request addresses. With neither a secret nor a JWKS URL configured there is no verifier and
every caller may address every user.
"""

from dataclasses import dataclass
from typing import Protocol

import jwt
from jwt.types import Options

from api.auth.jwks import JwksKeys
from api.config import Settings
from api.tasks.errors import AuthenticationError, AuthorizationError


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the token's user id, or None when authentication is off; and when
    the token stops being accepted (a Unix time), which ends the caller's event streams."""

    user_id: str | None
    expires_at: float | None = None


ANYONE = Caller(user_id=None)


def authorize(caller: Caller, user_id: str) -> None:
    """Raise AuthorizationError unless `caller` may read and change `user_id`'s tasks.

    The single home of the ownership rule; both faces call it before the service runs.
    """
    if caller.user_id is None:  # authentication is off: every user's tasks are open
        return
    if caller.user_id != user_id:
        raise AuthorizationError()


class KeySource(Protocol):
    async def key_for(self, kid: str | None, algorithm: str) -> jwt.PyJWK | bytes: ...

    async def aclose(self) -> None: ...


class SharedSecret:
    """The HMAC key: the same secret for every token."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    async def key_for(self, kid: str | None, algorithm: str) -> bytes:
        return self._secret

    async def aclose(self) -> None:
        return None


# PyJWT's failures, in words a caller may see (they name no key, claim value or token).
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired"),
    (jwt.ImmatureSignatureError, "The token is not valid yet"),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted"),
    (jwt.InvalidAudienceError, "The token's audience is not accepted"),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim"),
    (jwt.InvalidAlgorithmError, "The token's algorithm is not accepted"),
    (jwt.InvalidSignatureError, "The token's signature does not verify"),
    (jwt.DecodeError, "The token is malformed"),
)


def _reason(error: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return "The token is invalid"


def bearer_token(authorization: list[str]) -> str:
    """The token of the request's `Authorization: Bearer` header(s)."""
    if not authorization:
        raise AuthenticationError(invalid_token=False)
    if len(authorization) > 1:
        raise AuthenticationError("Send exactly one Authorization header")
    scheme, _, token = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError(invalid_token=False)
    token = token.strip()
    if not token:
        raise AuthenticationError("The token is malformed")
    return token


class TokenVerifier:
    """Turns a bearer token into its `Caller`, or raises AuthenticationError.

    The token's `alg` must be one of the configured algorithms, all of one family (HMAC for a
    secret, public-key for a JWKS), so `none` and HS/RS confusion are refused before any key is
    looked up. Then PyJWT checks the signature, exp (required), nbf, iat, and the issuer and
    audience when configured; the user id claim must be a non-empty string.
    """

    def __init__(self, settings: Settings, keys: KeySource) -> None:
        self._keys = keys
        self._algorithms = settings.accepted_algorithms
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._leeway = settings.auth_leeway_seconds
        self._claim = settings.auth_user_id_claim
        required = ["exp", self._claim]
        required += ["iss"] if self._issuer else []
        required += ["aud"] if self._audience else []
        self._options: Options = {
            "require": required,
            "enforce_minimum_key_length": True,
        }

    async def aclose(self) -> None:
        await self._keys.aclose()

    async def caller(self, authorization: list[str]) -> Caller:
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("The token is malformed") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise AuthenticationError("The token's algorithm is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("The token is malformed")
        key = await self._keys.key_for(kid, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.PyJWTError as error:
            raise AuthenticationError(_reason(error)) from None
        user_id = claims.get(self._claim)
        if not isinstance(user_id, str) or not user_id:
            raise AuthenticationError("The token names no user")
        # `exp` is required and verified above; the leeway that accepted it applies to streams too.
        return Caller(user_id=user_id, expires_at=float(claims["exp"]) + self._leeway)


def create_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier the settings ask for; None when authentication is off."""
    if settings.auth_jwt_secret is not None:
        return TokenVerifier(settings, SharedSecret(settings.auth_jwt_secret.get_secret_value()))
    if settings.auth_jwks_url is not None:
        keys = JwksKeys(
            settings.auth_jwks_url,
            cache_seconds=settings.auth_jwks_cache_seconds,
            min_refetch_seconds=settings.auth_jwks_min_refetch_seconds,
            timeout_seconds=settings.auth_jwks_timeout_seconds,
        )
        return TokenVerifier(settings, keys)
    return None
