"""Public signing keys from a JWKS URL, fetched without blocking and refetched sparingly.

Keys are cached by `kid`. A token naming a `kid` the cache lacks triggers a refetch (that is how
a key rotation arrives), and so does a cache older than its lifetime; but there is never more
than one fetch in flight (later callers wait for its outcome), and never a new one sooner than
`min_refetch_seconds` after the last, so a storm of tokens with made-up `kid`s costs the JWKS
endpoint one request per interval. A fetch is bounded by `timeout_seconds` in all.

When the endpoint cannot be reached, keys already fetched stay in use; a token whose key could
not be fetched is answered SigningKeysUnavailableError (503), because its validity is unknown,
rather than 401, which tells a client its credentials are bad and makes it sign the user out.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt

from api.observe import metrics
from api.tasks.errors import AuthenticationError, SigningKeysUnavailableError

logger = logging.getLogger(__name__)

# A JWKS is a few kilobytes; anything this large is not one.
MAX_JWKS_BYTES = 1_048_576
# Key types that can hold a public key; `oct` (a shared secret) never belongs in a JWKS here.
_PUBLIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


def _loggable(url: str) -> str:
    """The URL without credentials or query, which may carry secrets, for a log line."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class JwksKeys:
    """Signing keys from one JWKS URL; `key_for(kid, alg)` is the only thing callers need."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        min_refetch_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refetch_seconds = min_refetch_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._client: httpx.AsyncClient | None = None  # made on first use, on the running loop
        self._jwks: dict[str | None, dict[str, Any]] = {}  # JWK by kid (None: a key without)
        self._prepared: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._last_attempt_failed = False
        self._inflight: asyncio.Task[None] | None = None  # the one fetch under way, if any

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def key_for(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        """The key that must have signed a token with this `kid` and `alg`.

        Raises AuthenticationError when the JWKS, fetched recently, has no such key, and
        SigningKeysUnavailableError when it could not be fetched.
        """
        jwk = self._lookup(kid)
        if jwk is None or not self._fresh():
            await self._refresh()
            jwk = self._lookup(kid)
        if jwk is None:
            if self._fetched_at is None or self._last_attempt_failed:
                metrics.unavailable("signing_keys_unreachable")
                raise SigningKeysUnavailableError()
            raise AuthenticationError("The token's signing key is unknown")
        return self._prepare(kid, jwk, algorithm)

    def _fresh(self) -> bool:
        return (
            self._fetched_at is not None and self._clock() - self._fetched_at < self._cache_seconds
        )

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self._jwks.get(kid)
        # A token without `kid` can only mean the one key there is.
        return next(iter(self._jwks.values())) if len(self._jwks) == 1 else None

    def _prepare(self, kid: str | None, jwk: dict[str, Any], algorithm: str) -> jwt.PyJWK:
        # A JWK without `alg` is bound to the token's (already allow-listed) algorithm; PyJWT then
        # refuses a key whose type does not fit it, and one whose own `alg` differs.
        cache_key = (kid, algorithm)
        if cache_key not in self._prepared:
            try:
                self._prepared[cache_key] = jwt.PyJWK(jwk, algorithm=jwk.get("alg") or algorithm)
            except jwt.PyJWTError:
                raise AuthenticationError(
                    "The token's signing key does not fit its algorithm"
                ) from None
        return self._prepared[cache_key]

    async def _refresh(self) -> None:
        """Fetch the JWKS once for everyone waiting, at most once per minimum interval."""
        if self._inflight is None:
            now = self._clock()
            if (
                self._attempted_at is not None
                and now - self._attempted_at < self._min_refetch_seconds
            ):
                return
            self._attempted_at = now
            self._inflight = asyncio.get_running_loop().create_task(self._fetch_and_store(now))
        # Shielded: a caller that goes away does not cancel the fetch the others wait for.
        await asyncio.shield(self._inflight)

    async def _fetch_and_store(self, started: float) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                jwks = await self._fetch()
        except (httpx.HTTPError, TimeoutError, ValueError) as exc:
            self._last_attempt_failed = True
            logger.warning(
                "cannot fetch signing keys from %s (%s); keeping %d cached key(s)",
                _loggable(self._url),
                type(exc).__name__,
                len(self._jwks),
            )
            return
        finally:
            self._inflight = None
        self._jwks = jwks
        self._prepared = {}
        self._fetched_at = started
        self._last_attempt_failed = False
        logger.info("fetched %d signing key(s) from %s", len(jwks), _loggable(self._url))

    async def _fetch(self) -> dict[str | None, dict[str, Any]]:
        """The public signing keys the URL serves, by kid; ValueError if it serves none."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, headers={"Accept": "application/json"}
            )
        async with self._client.stream("GET", self._url) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS response too large")
        document = json.loads(body)
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ValueError("not a JWK Set")
        usable = {
            key.get("kid"): key
            for key in keys
            if isinstance(key, dict)
            and isinstance(key.get("kid"), str | None)
            and key.get("kty") in _PUBLIC_KEY_TYPES
            and key.get("use", "sig") == "sig"
        }
        if not usable:
            raise ValueError("JWK Set without public signing keys")
        return usable
