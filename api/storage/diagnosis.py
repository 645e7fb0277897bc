"""Why a database URL does not work, said in one line an operator can act on.

Start-up (api.startup) checks the URLs before serving; a failure there is almost always a
mistyped or copied-from-elsewhere URL, and the driver's own exception (a 125-line traceback, or
"rejected SSL upgrade") does not say which setting to fix or how. Every message names the
setting and the host, user and database it points at, never the password.
"""

import socket
import ssl
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from api.storage.urls import EngineOptions, engine_options


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong, and whether waiting could fix it (the server is down or restarting)
    rather than the URL itself being wrong."""

    message: str
    transient: bool = False
    # False when nothing in the failure was recognised as a connection problem.
    specific: bool = True


def where(url: URL) -> str:
    """The host, port, user and database of `url`, without its password."""
    if url.get_backend_name() == "sqlite":
        return f"the SQLite file {url.database or ':memory:'}"
    host = url.host or "localhost"
    port = url.port or 5432
    return f"{host}:{port} (user {url.username or '?'!r}, database {url.database or '?'!r})"


def parse(setting: str, raw_url: str, connect_timeout: float) -> EngineOptions:
    """The engine options for `raw_url`, or ValueError with a message naming `setting`."""
    if not raw_url.strip():
        raise ValueError(f"{setting} is empty; set it to a postgresql:// or sqlite:// URL")
    try:
        url = make_url(raw_url)
    except ArgumentError:
        raise ValueError(
            f"{setting} is not a database URL; expected postgresql://USER:PASSWORD@HOST:PORT/NAME"
            " or sqlite+aiosqlite:///PATH"
        ) from None
    scheme = url.drivername
    try:
        return engine_options(raw_url, connect_timeout)
    except ValueError:
        raise ValueError(
            f"{setting} uses the scheme {scheme!r}, which this service does not support; "
            "use postgresql:// (or postgres://) or sqlite+aiosqlite://"
        ) from None
    except (ArgumentError, TypeError) as exc:
        raise ValueError(f"{setting} has an invalid parameter: {exc}") from None


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception it was raised from or during (SQLAlchemy wraps the driver's)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not other for other in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__ or getattr(current, "orig", None)
    return seen


def _sqlstate(chain: list[BaseException]) -> str:
    for error in chain:
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str):
            return state
    return ""


def diagnose(setting: str, url: URL, exc: BaseException, connect_timeout: float) -> Diagnosis:
    """The one-line explanation of why connecting to `url` (the value of `setting`) failed."""
    at = where(url)
    chain = _chain(exc)
    text = " ".join(str(error) for error in chain).lower()
    state = _sqlstate(chain)
    sslmode = url.query.get("sslmode")

    if url.get_backend_name() == "sqlite":
        # Transient: a volume may be mounted after the service starts.
        return Diagnosis(
            f"{setting}: cannot open {at}: its directory must exist and be writable by the "
            "service's user",
            transient=True,
        )
    if "rejected ssl upgrade" in text:
        return Diagnosis(
            f"{setting}: the server at {at} does not offer SSL, but the URL asks for it "
            f"(sslmode={sslmode}); a local server usually has no SSL: remove sslmode from the URL "
            "(a hosted database's URL, e.g. Neon's, belongs to that host only)"
        )
    # PostgreSQL's pg_hba refusal names "SSL off" / "no encryption"; PgBouncer says it plainly.
    if "ssl required" in text or (
        state == "28000" and ("ssl off" in text or "no encryption" in text)
    ):
        return Diagnosis(
            f"{setting}: the server at {at} accepts only SSL connections; add ?sslmode=require "
            "to the URL"
        )
    if state == "28P01" or "password authentication failed" in text:
        return Diagnosis(
            f"{setting}: the server at {at} refused the user name or password; check both in the "
            "URL (characters like @ : / # in a password must be percent-encoded)"
        )
    if state == "28000":
        return Diagnosis(
            f"{setting}: the server at {at} does not let this user connect from here "
            "(pg_hba.conf, or an IP allow-list); ask its administrator"
        )
    if state == "3D000":
        return Diagnosis(
            f"{setting}: the database {url.database!r} does not exist on {url.host}; create it "
            f"(createdb {url.database}) or fix the name at the end of the URL"
        )
    if sslmode in ("verify-ca", "verify-full") and any(
        isinstance(error, FileNotFoundError) for error in chain
    ):
        return Diagnosis(
            f"{setting}: sslmode={sslmode} needs the server's CA certificate in "
            "~/.postgresql/root.crt of the service's user; install it, or use sslmode=require "
            "(encrypted, not verified)"
        )
    if any(isinstance(error, ssl.SSLCertVerificationError) for error in chain):
        return Diagnosis(
            f"{setting}: the server at {at} presented a certificate that could not be verified; "
            "use sslmode=require (encrypted, not verified) or install the server's CA"
        )
    if any(isinstance(error, socket.gaierror) for error in chain):
        return Diagnosis(
            f"{setting}: the host {url.host!r} cannot be resolved (no such name in DNS); check "
            "the host name in the URL"
        )
    if any(isinstance(error, ConnectionRefusedError) for error in chain):
        return Diagnosis(
            f"{setting}: nothing accepts connections at {at}: is PostgreSQL running there, and "
            "are the host and port right?",
            transient=True,
        )
    if any(isinstance(error, TimeoutError) for error in chain):
        return Diagnosis(
            f"{setting}: no answer from {at} within {connect_timeout:g} s "
            "(TASK_API_DB_CONNECT_TIMEOUT); check the host, port and any firewall",
            transient=True,
        )
    if state.startswith(("53", "57P")):
        return Diagnosis(
            f"{setting}: the server at {at} cannot take a connection now ({state}); "
            "it is starting, stopping or full",
            transient=True,
        )
    root = chain[-1]
    said = str(root)
    if url.password:
        said = said.replace(url.password, "***")
    return Diagnosis(
        f"{setting}: cannot connect to {at}: {type(root).__name__}: {said[:200]}; "
        "check the URL and that the server is reachable from here",
        transient=isinstance(root, OSError),
        specific=False,
    )
