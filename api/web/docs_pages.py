"""The REST facade's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), self-hosted.

They replace FastAPI's own pages, which load their scripts from public CDNs and start Swagger UI
with an inline script; these load everything from this service, under its
Content-Security-Policy.
"""

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import swagger_ui_default_parameters
from fastapi.responses import HTMLResponse

from api.web.assets import asset_url, html_page, json_for_html

router = APIRouter(include_in_schema=False)

OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


def _openapi_url(request: Request) -> str:
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root_path}{request.app.openapi_url}"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI document."""
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    config: dict[str, Any] = {
        **swagger_ui_default_parameters,
        "url": _openapi_url(request),
        "oauth2RedirectPath": f"{root_path}{OAUTH2_REDIRECT_PATH}",
        # Swagger UI would otherwise show a badge fetched from validator.swagger.io.
        "validatorUrl": None,
    }
    stylesheet = escape(asset_url(request, "swagger-ui/swagger-ui.css"))
    return html_page(
        f"{request.app.title} · Swagger UI",
        icon=asset_url(request, "swagger-ui/favicon-32x32.png"),
        head=f"""<link rel="stylesheet" href="{stylesheet}">
<script type="application/json" id="swagger-ui-config">{json_for_html(config)}</script>
""",
        body=f"""<div id="swagger-ui"></div>
<script src="{escape(asset_url(request, "swagger-ui/swagger-ui-bundle.js"))}"></script>
<script src="{escape(asset_url(request, "pages/swagger-init.js"))}"></script>
""",
    )


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
    """Where an OAuth2 provider sends the browser back to Swagger UI's "Authorize" dialog."""
    script = escape(asset_url(request, "swagger-ui/oauth2-redirect.js"))
    return html_page("Swagger UI: OAuth2 redirect", body=f'<script src="{script}"></script>\n')


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc for the OpenAPI document.

    ReDoc's sidebar footer shows the Redocly logo from cdn.redoc.ly, with no option to turn it
    off; the Content-Security-Policy stops that request in the browser, and the footer keeps its
    text link.
    """
    return html_page(
        f"{request.app.title} · ReDoc",
        head=f'<link rel="stylesheet" href="{escape(asset_url(request, "pages/pages.css"))}">\n',
        body=f"""<redoc spec-url="{escape(_openapi_url(request))}"></redoc>
<script src="{escape(asset_url(request, "redoc/redoc.standalone.js"))}"></script>
""",
    )
