"""Refresh the README's dashboard pictures: record the demo fleet in a scratch ledger,
serve it, and photograph two pages in headless Chromium (Debian's, as the e2e tests
use it) at 1,280 by 800, as JPEGs small enough to commit.

    .venv/bin/python tools/screenshots.py            # writes docs/images/*.jpg

The demo's timestamps are fixed, but its health reports have long gone stale, so the
pictures show "(stale)" on every host: that is the dashboard telling the truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's server and browser helpers

from playwright.sync_api import sync_playwright  # noqa: E402

from api.app import ServerSettings  # noqa: E402
from tests.e2e.ledgers import record_demo  # noqa: E402
from tests.services.api import ApiServer  # noqa: E402
from tests.services.browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

IMAGES = ROOT / "docs" / "images"
PAGES = {
    # name: (route, what to wait for, what to photograph: None for the window)
    "dashboard-fleet.jpg": ("#/", "#topology .host", None),
    "dashboard-package.jpg": (
        "#/package/openssl?env=production",
        "#page figure svg",
        "#page .panel:has(figure)",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--png-to", type=Path, help="write PNGs to this folder instead")
    png_to: Path | None = parser.parse_args().png_to
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = record_demo(Path(scratch) / "ledger.db")
        server = ApiServer(str(path), ServerSettings(allow_anonymous_read=True)).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for name, (route, ready, part) in PAGES.items():
                    page.goto(f"{server.base}/{route}")
                    page.locator(ready).first.wait_for()
                    page.wait_for_timeout(500)  # the live stream's first redraw
                    where = page if part is None else page.locator(part).first
                    if png_to is None:
                        where.screenshot(path=IMAGES / name, type="jpeg", quality=70)
                        print(f"{IMAGES / name}: {(IMAGES / name).stat().st_size:,} bytes")
                    else:
                        where.screenshot(path=png_to / name.replace(".jpg", ".png"))
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
