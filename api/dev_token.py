"""A development token for a user, signed with the configured HMAC secret.

    python -m api.dev_token alice            # prints a token valid for 60 minutes
    python -m api.dev_token alice --minutes 5

It reads the same settings the service does (the environment and `.env`), so the token carries
the configured user id claim, issuer and audience and verifies exactly as a real one would. It
refuses to run when authentication uses a JWKS URL (those tokens come from the identity provider,
whose private key this service never has) and when no secret is set (authentication is off, and
no token is needed). Only the token goes to standard output, so `TOKEN=$(...)` works; every
refusal goes to standard error with exit status 2.
"""

import argparse
import sys
import time

import jwt
import pydantic

from api.config import Settings
from api.tasks import errors
from api.tasks.service import validate_user_id

DEFAULT_MINUTES = 60
# Long enough for a working day, short enough that a leaked development token soon expires.
MAX_MINUTES = 24 * 60


class Refusal(Exception):
    """Why no token was made, in words for the person at the terminal."""


def mint(settings: Settings, user_id: str, minutes: int = DEFAULT_MINUTES) -> str:
    """A token for `user_id` that the service configured by `settings` accepts."""
    if settings.auth_jwks_url is not None:
        raise Refusal(
            "authentication is configured with a JWKS URL (TASK_API_AUTH_JWKS_URL): tokens come "
            "from that identity provider, whose signing key this service does not have; sign in "
            "there to get one"
        )
    if settings.auth_jwt_secret is None:
        raise Refusal(
            "authentication is off (TASK_API_AUTH_JWT_SECRET is not set), so requests need no "
            "token; to try authentication locally, set a secret of 32 bytes or more, e.g. "
            'export TASK_API_AUTH_JWT_SECRET="$(openssl rand -base64 48)", and start the '
            "service with the same one"
        )
    if not 1 <= minutes <= MAX_MINUTES:
        raise Refusal(f"--minutes must be between 1 and {MAX_MINUTES}")
    try:
        user_id = validate_user_id(user_id)
    except errors.ValidationError as exc:
        raise Refusal(f"not a valid user id: {exc.errors[0]['message']}") from None
    now = int(time.time())
    claims: dict[str, object] = {
        settings.auth_user_id_claim: user_id,
        "iat": now,
        "exp": now + minutes * 60,
    }
    if settings.auth_issuer is not None:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience is not None:
        claims["aud"] = settings.auth_audience
    # The first accepted algorithm: HS256 unless TASK_API_AUTH_ALGORITHMS names others.
    algorithm = settings.accepted_algorithms[0]
    return jwt.encode(claims, settings.auth_jwt_secret.get_secret_value(), algorithm=algorithm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m api.dev_token",
        description="Print a development token for USER_ID, signed with the configured "
        "TASK_API_AUTH_JWT_SECRET.",
    )
    parser.add_argument("user_id", metavar="USER_ID", help="the user the token speaks for")
    parser.add_argument(
        "--minutes",
        type=int,
        default=DEFAULT_MINUTES,
        help=f"how long the token is valid (default {DEFAULT_MINUTES}, at most {MAX_MINUTES})",
    )
    arguments = parser.parse_args(argv)
    try:
        settings = Settings()
        print(mint(settings, arguments.user_id, arguments.minutes))
    except pydantic.ValidationError as exc:
        # The settings' own messages name the variable and never echo its value.
        reasons = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        print(f"dev_token: the settings are not valid: {reasons}", file=sys.stderr)
        return 2
    except Refusal as exc:
        print(f"dev_token: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
