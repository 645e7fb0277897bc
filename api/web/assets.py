"""The browser pages' assets (api/web/static), served by this service itself, and their headers.

GraphiQL, Swagger UI and ReDoc load every script, style sheet and font from here, so they work
without internet access and under a Content-Security-Policy that allows only this origin. The
URLs carry a digest of the files (`/assets/<digest>/graphiql/graphiql.js`): browsers may keep
them for a year, and an upgrade changes every URL at once. JavaScript and CSS go out as the gzip
twins scripts/refresh_assets.py made, to clients that accept gzip, so nothing is compressed per
request on the event loop.
"""

import hashlib
import json
import os
from functools import cache
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

# What the pages may load: this origin only. The exceptions are not other hosts: inline styles
# (React, Monaco and ReDoc set style attributes and add <style> elements at run time), data: URIs
# (GraphiQL's fonts are embedded in its CSS; Swagger UI draws icons with them) and blob: workers
# (ReDoc starts its search index in one).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page names the current asset digest, so it must not outlive an upgrade in a cache.
    "Cache-Control": "no-cache",
}

# Explicit types: module scripts need a JavaScript type, and the platform's MIME table (on some
# systems the Windows registry) is not to be trusted with that.
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSED = (".js", ".css")
_IMMUTABLE = "public, max-age=31536000, immutable"


@cache
def asset_digest() -> str:
    """A digest of every file under api/web/static; part of each asset URL."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def asset_url(request: Request, path: str) -> str:
    """The URL of `path` (under api/web/static), behind any proxy prefix the app runs under."""
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root_path}/assets/{asset_digest()}/{path}"


def json_for_html(value: object) -> str:
    """JSON for a `<script type="application/json">` data block: it cannot end the element."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_page(title: str, body: str, head: str = "", icon: str = "data:,") -> HTMLResponse:
    """A page of `body` under the shared head, with the Content-Security-Policy and its
    companion headers. `head` is markup to add to the head; `icon` the favicon's URL (by default
    none, so the browser asks for no /favicon.ico)."""
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="{escape(icon)}">
{head}</head>
<body>
{body}</body>
</html>
"""
    return HTMLResponse(html, headers=PAGE_HEADERS)


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept-encoding":
            for item in value.decode("latin-1").split(","):
                coding, _, params = item.partition(";")
                if coding.strip().lower() == "gzip" and params.replace(" ", "") != "q=0":
                    return True
    return False


class AssetFiles(StaticFiles):
    """StaticFiles with immutable caching, explicit media types and the pre-compressed twins."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith(_COMPRESSED) and _accepts_gzip(scope):
            try:
                return await super().get_response(path + ".gz", scope)
            except HTTPException:
                pass  # no twin: send the file itself
        return await super().get_response(path, scope)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.fspath(full_path)
        if name.endswith(".gz") and name[:-3].endswith(_COMPRESSED):
            name = name[:-3]
            response.headers["Content-Encoding"] = "gzip"
        suffix = Path(name).suffix
        response.headers["Content-Type"] = _MEDIA_TYPES.get(
            suffix, "text/plain; charset=utf-8" if not suffix else response.media_type or ""
        )
        if suffix in _COMPRESSED:
            response.headers["Vary"] = "Accept-Encoding"
        response.headers["Cache-Control"] = _IMMUTABLE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_assets(app: FastAPI) -> None:
    """Serve api/web/static under /assets/<digest>/."""
    app.mount(f"/assets/{asset_digest()}", AssetFiles(directory=STATIC_DIR), name="assets")
