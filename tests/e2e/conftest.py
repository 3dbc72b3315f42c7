"""The e2e package's fixtures: the demo fleet recorded once for all its modules, one
server on it shared by every test that only reads, a server on a copy of their own for
the modules whose tests write, the anonymous-read server, a page per test, and a
Chromium that shows its scrollbars.

Each module used to record the demo itself (seconds each) and start its own server; a
fixture imported into a module is that module's own, so sharing means defining them here,
with package scope: set up once when the first e2e test needs them, torn down when the
package is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from api.app import ServerSettings
from tests.e2e.ledgers import add_advisory, copy_ledger, head, record_demo
from tests.e2e.pages import open_page
from tests.services.api import ApiServer, serve
from tests.services.browser import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="package")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo fleet with its views built, recorded once; never served nor written, so
    that every demo ledger of the package can be a copy of it (a server adds its tokens
    to its ledger, and a second server's would clash with them)."""
    return record_demo(tmp_path_factory.mktemp("demo") / "template.db")


@pytest.fixture(scope="package")
def demo_ledger(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo fleet and ``ledgers.ADVISORY``: read-only, served by ``demo_server``."""
    path = copy_ledger(demo_template, tmp_path_factory.mktemp("shared") / "ledger.db")
    return add_advisory(path)


@pytest.fixture(scope="package")
def demo_server(demo_ledger: Path) -> Iterator[ApiServer]:
    """The server on ``demo_ledger``, shared by every e2e test that only reads it. A test
    that writes must use ``writable_demo_server``: a fact added here would show on the
    other modules' pages. Checked when the package is done: the ledger's head has not
    moved."""
    before = head(demo_ledger)
    yield from serve(str(demo_ledger))
    assert head(demo_ledger) == before, (
        "a test appended to the shared, read-only demo ledger: give it writable_demo_server"
    )


@pytest.fixture(scope="module")
def writable_demo_server(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A server on a copy of the demo fleet (without the advisory) for the module's tests
    that write: one per module that asks for it."""
    path = copy_ledger(demo_template, tmp_path_factory.mktemp("writable") / "ledger.db")
    yield from serve(str(path))


@pytest.fixture(scope="package")
def anonymous_server(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A server with ``--allow-anonymous-read`` on a copy of the demo fleet, on which no
    Slack collector ever ran; read-only."""
    path = copy_ledger(demo_template, tmp_path_factory.mktemp("anonymous") / "ledger.db")
    settings = ServerSettings(stream_interval=0.05, allow_anonymous_read=True)
    yield from serve(str(path), settings)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context at ``pages.VIEWPORT``."""
    with open_page(browser) as opened:
        yield opened


@pytest.fixture(scope="package")
def screen(browser: Browser) -> Iterator[Browser]:
    """The machine's Chromium as a person sees it: with scrollbars. Playwright launches
    headless Chromium with ``--hide-scrollbars``, which would hide the very cue the layout
    tests look for (and take it out of the screenshots)."""
    shown = browser.browser_type.launch(
        executable_path=chromium_path(),
        headless=True,
        args=CHROMIUM_ARGS,
        ignore_default_args=["--hide-scrollbars"],
    )
    try:
        yield shown
    finally:
        shown.close()
