"""Opening the dashboard in the browser, shared by the e2e modules: a page in a fresh
context that fails the test on a script error or a dialog, an address opened with a
reader's token and waited for until it is drawn, and the API's own answer to compare
the page with.

Importing this module sets Playwright's ``expect`` timeout to ``WAIT_MS`` for the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import quote

import httpx
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.services.api import ApiServer

WAIT_MS = 15_000
"""How long a wait for the page may take (generous: a wait, never a timing assert)."""
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}

expect.set_options(timeout=WAIT_MS)


@contextmanager
def open_page(
    browser: Browser, viewport: ViewportSize = VIEWPORT, **options: Any
) -> Iterator[Page]:
    """A page in a fresh context (its own sessionStorage; ``options`` for
    ``new_context``, a locale or a time zone); uncaught script errors and dialogs fail the
    test."""
    context = browser.new_context(viewport=viewport, **options)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


def with_token(fragment: str, token: str) -> str:
    """An address as someone would share it with a token: "#/host/e/h?token=S"."""
    return f"{fragment}{'&' if '?' in fragment else '?'}token={quote(token)}"


def open_route(page: Page, server: ApiServer, fragment: str = "#/") -> None:
    """Open an address (the token in its fragment) and wait until it is drawn: the
    fleet's panels, or the route's page (``data-drawn`` names the address)."""
    page.goto(f"{server.base}/{with_token(fragment, server.tokens['reader'])}")
    wait_drawn(page, fragment)


def wait_drawn(page: Page, fragment: str) -> None:
    """Wait for the page of ``fragment``: for the fleet ("" or "#/"), the dashboard with
    its topology drawn and the event stream live; for a route, its page done."""
    if fragment in ("", "#/"):
        expect(page.locator("#dashboard")).to_be_visible()
        expect(page.locator("#topology section.env").first).to_be_visible()
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        return
    expect(page.locator("#page")).to_have_attribute("data-drawn", fragment)
    expect(page.locator("#page")).to_have_attribute("data-state", "done")


def open_dashboard(page: Page, server: ApiServer, role: str = "reader") -> None:
    """The dashboard with a token given in the URL fragment, once its panels are in (a
    host tile and a failure row: fleets that have both)."""
    page.goto(f"{server.base}/#token={server.tokens[role]}")
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#topology .host").first).to_be_visible()
    expect(page.locator("#failures tbody tr").first).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def api_get(server: ApiServer, path: str, **params: object) -> Any:
    """The API's answer (as a reader), the expectations' source."""
    response = httpx.get(
        f"{server.base}{path}", params=cast(Any, params), headers=server.headers("reader")
    )
    response.raise_for_status()
    return response.json()
