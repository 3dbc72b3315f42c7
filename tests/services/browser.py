"""A real headless browser for the tests: the machine's Chromium (Debian's ``chromium``
package) driven by Playwright for Python.

Playwright's own browser downloads are never used (``playwright install`` needs the
network): the fixture launches the installed Chromium through ``executable_path``. A
machine without Chromium fails the tests that need it, with what to install; they are
never skipped. Screenshots go to ``$LEDGER_TEST_ARTIFACTS/screenshots`` (by default
``test-artifacts/screenshots`` in the repository).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The installed Chromium; a clear error when there is none."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no Chromium at {path}: the browser tests need it, install it with "
            "`apt-get install chromium` (Playwright's own download is not used)"
        )
    return path


def artifacts_dir() -> Path:
    """Where test artifacts go: ``$LEDGER_TEST_ARTIFACTS`` or ``<repo>/test-artifacts``."""
    return Path(os.environ.get("LEDGER_TEST_ARTIFACTS") or REPO / "test-artifacts")


def screenshot_dir() -> Path:
    """The screenshots' directory (created if needed)."""
    path = artifacts_dir() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(name="browser", scope="session")
def browser_fixture() -> Iterator[Browser]:
    """Headless Chromium for the session, as the fixture ``browser`` (import
    ``browser_fixture``, or rely on tests/conftest.py, which registers this module as a
    plugin); each test opens its own context."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
