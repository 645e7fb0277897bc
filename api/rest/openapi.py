"""The OpenAPI document, made to say what the server sends: no 422, errors as problem+json, and
the answers of the edge and of authentication, which no route declares itself."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.config import Settings
from api.web.problems import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER_SCHEME = "bearerAuth"


def _problem(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}, **extra}


def _add_edge_responses(operation: dict[str, Any], settings: Settings) -> None:
    """The answers the edge and authentication give, which no route declares itself."""
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation:
        responses["413"] = _problem(
            f"The body is over {settings.max_body_bytes} bytes (PayloadTooLargeError)"
        )
    if not settings.auth_enabled:
        return
    operation["security"] = [{BEARER_SCHEME: []}]
    responses["401"] = _problem(
        "No bearer token, or one that is malformed, expired, not yet valid, wrongly signed, "
        "or for another issuer or audience (AuthenticationError)",
        headers={
            "WWW-Authenticate": {
                "description": 'The Bearer challenge (RFC 6750), with error="invalid_token" '
                "when a token was sent",
                "schema": {"type": "string"},
            }
        },
    )
    responses["403"] = _problem(
        "A valid token for another user than the one in the path (AuthorizationError)"
    )
    if settings.auth_jwks_url is not None:
        responses["503"]["description"] += (
            ", or the token signing keys cannot be fetched (SigningKeysUnavailableError)"
        )


def _without_null(schema: dict[str, Any]) -> None:
    """Make `str | None` a plain string: an optional parameter is absent, never null."""
    options = schema.pop("anyOf", None)
    if options is None:
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def _request_body_schemas(document: dict[str, Any]) -> set[str]:
    """The names of the component schemas that request bodies refer to."""
    names = set()
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schema = media.get("schema", {})
                # A body that may be left out is `anyOf: [{$ref}, {type: null}]`.
                for option in [schema, *schema.get("anyOf", [])]:
                    if "$ref" in option:
                        names.add(option["$ref"].rsplit("/", 1)[-1])
    return names


def openapi_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's document, made to say what the server sends: no 422, errors as problem+json."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path, path_item in document.get("paths", {}).items():
            for operation in path_item.values():
                for parameter in operation.get("parameters", []):
                    _without_null(parameter["schema"])
                if path.startswith("/api/"):
                    _add_edge_responses(operation, settings)
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for status, response in responses.items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        # A body's unknown fields are ignored, never applied nor refused (the contract: a POST's
        # id, user_id, completed and timestamps are ignored, so a whole task can be sent back).
        for name in _request_body_schemas(document) & set(schemas):
            schemas[name]["additionalProperties"] = True
        if settings.auth_enabled:
            document["components"]["securitySchemes"] = {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT whose user id claim "
                    f"(`{settings.auth_user_id_claim}`) is the `user_id` in the path",
                }
            }
        app.openapi_schema = document
    return app.openapi_schema


def use_openapi_document(app: FastAPI, settings: Settings) -> None:
    """Serve `openapi_document` at the app's OpenAPI URL (made once, on first request)."""
    app.openapi = lambda: openapi_document(app, settings)  # type: ignore[method-assign]
