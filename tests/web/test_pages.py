"""GraphiQL, Swagger UI and ReDoc pages: served from this origin, under a strict CSP.

tests/web/test_browser.py runs them in a real browser; these check the HTTP side on both databases:
the pages' headers and references, the assets' headers, and that the shipped bundles are the ones
scripts/refresh_assets.py built (each file's SHA-256 is in api/static/VERSIONS.json).
"""

import gzip
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.web.assets import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.factories import create_task

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/graphql", "/docs", "/redoc", "/docs/oauth2-redirect"]
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
VENDORED = ("graphiql", "swagger-ui", "redoc")


class References(HTMLParser):
    """Every URL a page loads (src and href attributes) and its script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.data_blocks: dict[str, str] = {}
        self._block: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]
        if tag == "script":
            self.scripts.append(attributes)
            if attributes.get("type") == "application/json":
                self._block = attributes.get("id") or ""

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self.data_blocks[self._block] = self.data_blocks.get(self._block, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._block = None


async def page(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, References]:
    response = await client.get(path, headers=HTML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    references = References()
    references.feed(response.text)
    return response, references


def config(references: References, block: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(references.data_blocks[block])
    return value


def manifest() -> dict[str, Any]:
    value: dict[str, Any] = json.loads((STATIC_DIR / "VERSIONS.json").read_text())
    return value


# --- the pages ----------------------------------------------------------------------------------


class TestPages:
    @pytest.mark.parametrize("path", PAGES)
    async def test_sends_the_content_security_policy(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response, _ = await page(client, path)
        policy = response.headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY
        directives = dict(item.strip().split(" ", 1) for item in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no inline script, no eval, no CDN
        assert directives["connect-src"] == "'self'"
        assert "http" not in policy
        assert "*" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"

    @pytest.mark.parametrize("path", PAGES)
    async def test_loads_everything_from_this_origin(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        _, references = await page(client, path)
        assert references.urls, "the page references no assets"
        for url in references.urls:
            if url.startswith("data:"):
                continue
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url

    @pytest.mark.parametrize("path", PAGES)
    async def test_has_no_inline_script(self, client: httpx.AsyncClient, path: str) -> None:
        _, references = await page(client, path)
        for script in references.scripts:
            assert script.get("src") or script.get("type") == "application/json", script


class TestGraphiQLPage:
    async def test_default_query_is_a_commented_tasks_example_that_runs(
        self, client: httpx.AsyncClient
    ) -> None:
        await create_task(client, "alice", "Buy milk")
        _, references = await page(client, "/graphql")
        settings = config(references, "graphiql-config")
        query = settings["defaultQuery"]
        assert query.startswith("#")
        assert "tasks(" in query
        response = await client.post(settings["endpoint"], json={"query": query})
        body = response.json()
        assert "errors" not in body, body
        assert [task["title"] for task in body["data"]["tasks"]] == ["Buy milk"]

    async def test_loads_the_bundle_as_a_module(self, client: httpx.AsyncClient) -> None:
        _, references = await page(client, "/graphql")
        modules = [s for s in references.scripts if s.get("type") == "module"]
        assert [str(s["src"]).rsplit("/", 1)[-1] for s in modules] == ["graphiql.js"]


class TestDocsPages:
    async def test_swagger_ui_reads_this_services_openapi_document(
        self, client: httpx.AsyncClient
    ) -> None:
        _, references = await page(client, "/docs")
        settings = config(references, "swagger-ui-config")
        assert settings["url"] == "/openapi.json"
        # Swagger UI's default validator badge is an image from validator.swagger.io.
        assert settings["validatorUrl"] is None
        assert settings["oauth2RedirectPath"] == "/docs/oauth2-redirect"

    async def test_redoc_reads_this_services_openapi_document(
        self, client: httpx.AsyncClient
    ) -> None:
        response, _ = await page(client, "/redoc")
        assert '<redoc spec-url="/openapi.json">' in response.text

    async def test_pages_follow_a_proxy_prefix(self, app: FastAPI) -> None:
        # Behind a proxy that serves the app under a path (uvicorn --root-path).
        transport = httpx.ASGITransport(app=app, root_path="/tasks-api")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for path in ["/tasks-api/docs", "/tasks-api/graphql", "/tasks-api/redoc"]:
                _, references = await page(client, path)
                for url in references.urls:
                    if not url.startswith("data:"):
                        assert url.startswith("/tasks-api/assets/"), url
                        assert (await client.get(url)).status_code == 200, url
            _, references = await page(client, "/tasks-api/docs")
            assert config(references, "swagger-ui-config")["url"] == "/tasks-api/openapi.json"
            _, references = await page(client, "/tasks-api/graphql")
            assert config(references, "graphiql-config")["endpoint"] == "/tasks-api/graphql"


# --- the assets ---------------------------------------------------------------------------------


async def asset_urls(client: httpx.AsyncClient) -> dict[str, str]:
    """Each asset the pages name, by file name."""
    urls: dict[str, str] = {}
    for path in PAGES:
        _, references = await page(client, path)
        for url in references.urls:
            if url.startswith("/assets/"):
                urls[url.rsplit("/", 1)[-1]] = url
    return urls


class TestAssets:
    async def test_are_cached_for_a_year(self, client: httpx.AsyncClient) -> None:
        url = (await asset_urls(client))["graphiql.js"]
        response = await client.get(url)
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"

    @pytest.mark.parametrize(
        ("name", "media_type"),
        [
            ("graphiql.js", "text/javascript"),
            ("graphiql.css", "text/css"),
            ("swagger-ui-bundle.js", "text/javascript"),
            ("redoc.standalone.js", "text/javascript"),
            ("favicon-32x32.png", "image/png"),
        ],
    )
    async def test_have_their_media_type(
        self, client: httpx.AsyncClient, name: str, media_type: str
    ) -> None:
        response = await client.get((await asset_urls(client))[name])
        assert response.headers["content-type"].split(";")[0] == media_type
        assert response.headers["x-content-type-options"] == "nosniff"

    async def test_gzip_twin_goes_to_clients_that_accept_gzip(
        self, client: httpx.AsyncClient
    ) -> None:
        url = (await asset_urls(client))["graphiql.js"]
        plain = (STATIC_DIR / "graphiql" / "graphiql.js").read_bytes()
        compressed = await client.get(url, headers={"Accept-Encoding": "gzip"})
        assert compressed.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in compressed.headers["vary"].split(", ")
        assert int(compressed.headers["content-length"]) < len(plain) / 2
        assert compressed.content == plain  # httpx decodes it
        identity = await client.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in identity.headers
        assert identity.content == plain

    async def test_revalidation_is_answered_304(self, client: httpx.AsyncClient) -> None:
        url = (await asset_urls(client))["graphiql.css"]
        first = await client.get(url)
        again = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304

    async def test_old_digest_is_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/assets/0000000000000000/graphiql/graphiql.js")
        assert response.status_code == 404


# --- the shipped files: built, not edited -------------------------------------------------------


class TestShippedAssets:
    def test_every_file_is_the_one_the_refresh_script_built(self) -> None:
        recorded = manifest()["sha256"]
        shipped = {
            path.relative_to(STATIC_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for name in VENDORED
            for path in sorted((STATIC_DIR / name).rglob("*"))
            if path.is_file()
        }
        changed = sorted(
            name for name in shipped.keys() & recorded.keys() if shipped[name] != recorded[name]
        )
        assert not changed, f"edited by hand? rebuild with scripts/refresh_assets.py: {changed}"
        assert shipped.keys() == recorded.keys()

    def test_gzip_twins_match_their_files(self) -> None:
        for twin in sorted(STATIC_DIR.rglob("*.gz")):
            assert gzip.decompress(twin.read_bytes()) == twin.with_suffix("").read_bytes(), twin

    def test_versions_are_the_pinned_ones(self) -> None:
        package = json.loads((ROOT / "scripts" / "assets" / "package.json").read_text())
        pins = {
            **package["dependencies"],
            **{name: pin["version"] for name, pin in package["packedDependencies"].items()},
        }
        shipped = {name: entry["version"] for name, entry in manifest()["packages"].items()}
        assert shipped == pins
        lock = json.loads((ROOT / "scripts" / "assets" / "package-lock.json").read_text())
        for name, version in package["dependencies"].items():
            assert lock["packages"][f"node_modules/{name}"]["version"] == version, name

    @pytest.mark.parametrize(
        ("directory", "licences"),
        [
            ("graphiql", ["LICENSE", "THIRD_PARTY_LICENSES.txt"]),
            ("swagger-ui", ["LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"]),
            ("redoc", ["LICENSE"]),
        ],
    )
    def test_each_package_ships_its_licence(self, directory: str, licences: list[str]) -> None:
        for name in licences:
            text = (STATIC_DIR / directory / name).read_text()
            assert re.search(r"licen[cs]e|copyright", text, re.IGNORECASE), name

    def test_graphiql_licences_cover_what_the_bundle_holds(self) -> None:
        text = (STATIC_DIR / "graphiql" / "THIRD_PARTY_LICENSES.txt").read_text()
        for package in [
            "graphiql ",
            "@graphiql/plugin-explorer ",
            "react ",
            "react-dom ",
            "monaco-editor ",
            "graphql ",
        ]:
            assert f"\n{package}" in text, package

    def test_no_bundle_names_a_cdn(self) -> None:
        cdn = re.compile(rb"unpkg\.com|cdn\.jsdelivr\.net|esm\.sh/|cdnjs\.cloudflare\.com")
        for path in sorted((STATIC_DIR / "graphiql").rglob("*.js")):
            assert not cdn.search(path.read_bytes()), path
