"""GraphiQL, Swagger UI and ReDoc in a real browser that can reach no other host.

Headless Chromium (the system's: Debian's `chromium` package, driven by Playwright; no browser is
ever downloaded) loads the pages from the app served by uvicorn on 127.0.0.1. Every request for
another host is blocked and recorded, and the tests fail if a page attempted one. Screenshots go
to test-artifacts/browser/ (git-ignored). Without Chromium these tests skip with the reason,
except under CI=true, where .ci/run installs it and its absence is a failure.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from api.main import create_app
from tests.apps import served
from tests.conftest import IN_CI, make_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_INSTALLED = CHROMIUM.is_file()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Upper bounds, not expectations: a slow CI machine still finishes well inside them.
SERVER_START_TIMEOUT = 60.0
PAGE_TIMEOUT_MS = 30_000
# ReDoc's sidebar footer always asks for Redocly's logo from its CDN (there is no option to turn
# it off); the Content-Security-Policy stops it inside the browser, before any network request.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

try:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Request,
        Route,
        async_playwright,
        expect,
    )
except ImportError:  # pragma: no cover - the test extra installs it
    async_playwright = None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; under CI=true the browser tests must run")
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator["Browser"]:
    """A headless Chromium for one test (Playwright's async API: the suite's fixtures run
    asyncio themselves, which the sync API's own loop would forbid)."""
    if async_playwright is None:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM_INSTALLED:
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set TEST_CHROMIUM)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def live_server(database_url: str) -> Iterator[str]:
    """The app under a real uvicorn on a free port of 127.0.0.1; its base URL."""
    app = create_app(make_settings(database_url))
    with served(app, timeout=SERVER_START_TIMEOUT) as base_url:
        yield base_url


@dataclass
class Traffic:
    """What a page asked for beyond this service, and what went wrong in it."""

    origin: str
    attempted: list[str] = field(default_factory=list)  # every request for another host
    reached_network: list[str] = field(default_factory=list)  # those not stopped by the CSP
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def is_elsewhere(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob"}:
            return False
        return f"{parts.scheme}://{parts.netloc}" != self.origin


@pytest.fixture
async def context(
    browser: "Browser", live_server: str
) -> AsyncIterator[tuple["BrowserContext", Traffic]]:
    """A fresh browser profile where every request for another host fails."""
    traffic = Traffic(origin=live_server)
    browser_context = await browser.new_context(viewport={"width": 1400, "height": 900})
    browser_context.set_default_timeout(PAGE_TIMEOUT_MS)
    expect.set_options(timeout=PAGE_TIMEOUT_MS)

    async def route(route: "Route") -> None:
        if traffic.is_elsewhere(route.request.url):
            traffic.reached_network.append(route.request.url)
            await route.abort("blockedbyclient")
        else:
            await route.continue_()

    def on_request(request: "Request") -> None:
        if traffic.is_elsewhere(request.url):
            traffic.attempted.append(request.url)

    def on_console(message: "ConsoleMessage") -> None:
        if "Content Security Policy" in message.text:
            traffic.csp_violations.append(message.text)

    await browser_context.route("**/*", route)
    browser_context.on("request", on_request)
    browser_context.on("console", on_console)
    browser_context.on("weberror", lambda error: traffic.page_errors.append(str(error.error)))
    try:
        yield browser_context, traffic
    finally:
        await browser_context.close()


async def screenshot(page: "Page", name: str, database_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    await page.screenshot(path=ARTIFACTS / f"{name}-{kind}.png")


async def create_task(base_url: str, user_id: str, title: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.post(f"/api/{user_id}/tasks", json={"title": title})
    assert response.status_code == 201, response.text


class TestGraphiQLInTheBrowser:
    async def test_runs_a_typed_query_with_no_other_host(
        self,
        context: tuple["BrowserContext", Traffic],
        live_server: str,
        database_url: str,
    ) -> None:
        browser_context, traffic = context
        title = f"Water the plants {uuid.uuid4().hex[:8]}"
        await create_task(live_server, "bob", title)
        page = await browser_context.new_page()
        await page.goto(f"{live_server}/graphql")

        editor = page.locator(".graphiql-query-editor .monaco-editor").first
        await editor.wait_for(state="visible")
        # The explorer plugin is open, built from the schema it fetched.
        await expect(page.locator(".graphiql-plugin")).to_contain_text("tasks")
        await editor.click()
        await page.keyboard.press("ControlOrMeta+A")
        await page.keyboard.press("Delete")
        await page.keyboard.type('query BobsTasks { tasks(userId: "bob") { title } }')
        # GraphiQL reads the operation's name from the editor a moment after typing stops;
        # the tab takes that name at the same time.
        await expect(page.locator(".graphiql-tab-active")).to_have_text("BobsTasks")
        await page.keyboard.press("Home")  # show the whole query in the screenshot
        await page.locator(".graphiql-execute-button").click()
        await expect(page.locator(".result-window")).to_contain_text(title)
        await screenshot(page, "graphiql", database_url)

        assert traffic.attempted == []
        assert traffic.csp_violations == []
        assert traffic.page_errors == []


class TestSubscriptionInGraphiQL:
    async def test_a_subscription_shows_changes_as_they_happen(
        self,
        context: tuple["BrowserContext", Traffic],
        live_server: str,
        database_url: str,
    ) -> None:
        """GraphiQL runs a subscription over a WebSocket with the graphql-ws client (bundled
        with it), and shows each change made elsewhere as it commits."""
        browser_context, traffic = context
        page = await browser_context.new_page()
        await page.goto(f"{live_server}/graphql")
        editor = page.locator(".graphiql-query-editor .monaco-editor").first
        await editor.wait_for(state="visible")
        await editor.click()
        await page.keyboard.press("ControlOrMeta+A")
        await page.keyboard.press("Delete")
        # From the first event on (`after: "0"`), so a change made before the subscription
        # reaches the server is not missed either.
        await page.keyboard.type(
            'subscription Follow { taskEvents(userId: "carol", after: "0") '
            "{ id kind task { title } } }"
        )
        await expect(page.locator(".graphiql-tab-active")).to_have_text("Follow")
        async with page.expect_websocket() as opened:
            await page.locator(".graphiql-execute-button").click()
        socket = await opened.value
        result = page.locator(".result-window")
        for title in (f"First {uuid.uuid4().hex[:8]}", f"Second {uuid.uuid4().hex[:8]}"):
            await create_task(live_server, "carol", title)
            await expect(result).to_contain_text(title)
        await expect(result).to_contain_text("CREATED")
        await screenshot(page, "graphiql-subscription", database_url)

        assert socket.url == f"{live_server.replace('http', 'ws')}/graphql"
        assert traffic.attempted == []
        assert traffic.csp_violations == []
        assert traffic.page_errors == []


class TestDocsInTheBrowser:
    async def test_swagger_ui_shows_the_task_routes_with_no_other_host(
        self,
        context: tuple["BrowserContext", Traffic],
        live_server: str,
        database_url: str,
    ) -> None:
        browser_context, traffic = context
        page = await browser_context.new_page()
        await page.goto(f"{live_server}/docs")
        paths = page.locator(".opblock-summary-path")
        await expect(paths.first).to_be_visible()
        shown = set(await paths.all_inner_texts())
        assert {
            "/api/{user_id}/tasks",
            "/api/{user_id}/tasks/{task_id}",
            "/api/{user_id}/tasks/{task_id}/complete",
        } <= {path.replace("\u200b", "") for path in shown}, shown
        await screenshot(page, "swagger-ui", database_url)

        assert traffic.attempted == []
        assert traffic.csp_violations == []
        assert traffic.page_errors == []

    async def test_redoc_shows_the_task_routes_with_no_other_host(
        self,
        context: tuple["BrowserContext", Traffic],
        live_server: str,
        database_url: str,
    ) -> None:
        browser_context, traffic = context
        page = await browser_context.new_page()
        await page.goto(f"{live_server}/redoc")
        heading = page.get_by_role(
            "heading", name="List the user's tasks (default: all, oldest first)"
        )
        await expect(heading).to_be_visible()
        await screenshot(page, "redoc", database_url)

        assert traffic.reached_network == []
        assert set(traffic.attempted) <= {REDOC_LOGO}
        assert all(REDOC_LOGO in violation for violation in traffic.csp_violations)
        assert traffic.page_errors == []
