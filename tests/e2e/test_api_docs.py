"""The interactive API docs (`/docs`) in a real browser, offline: Swagger UI renders the
server's OpenAPI document with every asset served by `ledger serve` itself, and the page
asks nothing of any other host (the issue saw it blank without internet: FastAPI's own
page loads Swagger UI from a CDN).

Screenshots are written to the artifacts directory (``tests.services.browser``).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from ledger.application import Ledger
from ledger.store import locate
from tests.services.api import ApiServer, serve
from tests.services.browser import screenshot_dir

WAIT_MS = 15_000
"""How long a wait for the page may take (generous: a wait, never a timing assert)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    path = tmp_path_factory.mktemp("docs") / "ledger.db"
    Ledger(locate(str(path)), create=True).close()
    yield from serve(str(path))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Offline as the machine was: any request to another host fails.
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost")
            else route.abort("internetdisconnected")
        ),
    )
    yield context.new_page()
    context.close()


def test_the_api_docs_render_offline_from_the_server_alone(page: Page, server: ApiServer) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto(server.base + "/docs")
    # Swagger UI has drawn the document: the title and an operation of it.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "deploy-ledger", timeout=WAIT_MS
    )
    expect(page.locator("#operations-audit-exposure_api_exposure_get")).to_be_visible(
        timeout=WAIT_MS
    )
    page.screenshot(path=screenshot_dir() / "api-docs.png")

    origin = urlsplit(server.base)[:2]
    assert {urlsplit(url).path for url in requests} >= {
        "/docs", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
        "/openapi.json",
    }  # fmt: skip
    assert [url for url in requests if urlsplit(url)[:2] != origin] == []
    assert errors == []


def test_the_docs_page_may_load_nothing_from_other_hosts(server: ApiServer) -> None:
    """Its Content-Security-Policy allows only the server (with the inline script and
    styles Swagger UI's page needs); the dashboard's stays strict."""
    docs = httpx.get(server.base + "/docs", timeout=30)
    assert docs.status_code == 200
    policy = docs.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self' 'unsafe-inline'" in policy
    assert "http" not in policy
    dashboard = httpx.get(server.base + "/", timeout=30)
    assert "unsafe-inline" not in dashboard.headers["Content-Security-Policy"]
    assert httpx.get(server.base + "/redoc", timeout=30).status_code == 404
