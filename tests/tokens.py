"""Tokens the tests mint themselves, and a JWKS endpoint on 127.0.0.1 that serves their keys."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

SECRET = "test-secret-that-is-long-enough-for-hs512-" + "x" * 32  # 74 bytes
ISSUER = "https://auth.example.test"
AUDIENCE = "task-api"

# Generated once: a 2048-bit RSA key takes a noticeable moment to make.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED25519_KEY = ed25519.Ed25519PrivateKey.generate()


def claims(user_id: str = "alice", **overrides: Any) -> dict[str, Any]:
    """Valid claims for `user_id` (issuer and audience as the tests configure them)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": user_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def hmac_token(
    user_id: str = "alice", *, secret: str = SECRET, alg: str = "HS256", **over: Any
) -> str:
    return jwt.encode(claims(user_id, **over), secret, algorithm=alg)


def rsa_token(
    user_id: str = "alice", *, kid: str | None = "rsa-1", key: Any = RSA_KEY, alg: str = "RS256",
    **over: Any,
) -> str:  # fmt: skip
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(user_id, **over), key, algorithm=alg, headers=headers)


def ed25519_token(user_id: str = "alice", *, kid: str = "ed-1", **over: Any) -> str:
    return jwt.encode(claims(user_id, **over), ED25519_KEY, algorithm="EdDSA", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(user_id: str = "alice") -> str:
    """`alg: none`: a token anyone can write."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims(user_id)).encode())}."


def hs256_signed_with_public_key(user_id: str = "alice", kid: str = "rsa-1") -> str:
    """The HS/RS confusion attack: HMAC-signed with the server's *public* RSA key as secret."""
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims(user_id)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def public_jwk(key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of a private key, as a JWKS serves it."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose keys and health the test controls.

    `fetches` counts the requests it answered; `hang` makes it accept requests and never
    answer (the fetcher's timeout must end them); `stop()` closes the port (refused).
    """

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.hang = threading.Event()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.hang.is_set():
                    server._release.wait(timeout=30)
                    return
                server.fetches += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        # A short poll keeps stop() quick (shutdown waits for the serving loop to notice).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def jwks_server(*keys: dict[str, Any]) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = list(keys)
    try:
        yield server
    finally:
        server.stop()


def closed_port_url() -> str:
    """A JWKS URL on 127.0.0.1 where nothing listens: every fetch is refused."""
    with jwks_server() as server:
        url = server.url
    return url


def random_kid() -> str:
    return uuid.uuid4().hex
