"""The dashboard's first screen at fleet scale (issue 18: "with the 10,000-host bench fleet
the first screen is usable within two seconds").

    .venv/bin/python -m bench.dashboard --keep DIR [--runs 5]

Serves a copy of ``DIR/fleet.db`` (``python -m bench.views --keep DIR`` makes it) with
``ledger serve``'s app in this process, opens the dashboard in headless Chromium (Debian's,
as the e2e tests do) and times, per run in a fresh browser context, from navigation to the
first screen being usable: topology hosts drawn, the failures table filled and the live
stream connected (what ``tests/e2e/test_dashboard.py`` waits for). Next to it, in the same
run, the time the page's own API calls take when fetched directly (``/api/status``,
``/api/topology``, ``/api/failures``, ``/api/generations/tree``): what a faster page could
not go below.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

from api.app import ServerSettings
from tests.services.api import ApiServer
from tests.services.browser import CHROMIUM_ARGS, chromium_path

TARGET_S = 2.0
READY_TIMEOUT_MS = 120_000


def first_screen(server: ApiServer, runs: int) -> list[float]:
    """Seconds from navigation to a usable first screen, per run."""
    seconds: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                page = context.new_page()
                start = time.perf_counter()
                page.goto(f"{server.base}/#token={server.tokens['reader']}")
                expect(page.locator("#topology .host").first).to_be_visible(
                    timeout=READY_TIMEOUT_MS
                )
                expect(page.locator("#failures tbody tr").first).to_be_visible(
                    timeout=READY_TIMEOUT_MS
                )
                expect(page.locator("#conn")).to_have_attribute(
                    "data-state", "live", timeout=READY_TIMEOUT_MS
                )
                seconds.append(time.perf_counter() - start)
                elements = page.evaluate("document.getElementsByTagName('*').length")
                print(f"  first screen {seconds[-1]:.2f} s, {elements} elements")
                context.close()
        finally:
            browser.close()
    return seconds


def api_calls(server: ApiServer, runs: int) -> list[float]:
    """Seconds the first screen's API calls take, fetched one after the other."""
    paths = ["/api/status", "/api/topology?limit=1000", "/api/failures?newest_first=true",
             "/api/generations/tree"]  # fmt: skip
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        for path in paths:
            answer = httpx.get(server.base + path, headers=server.headers("reader"), timeout=120)
            answer.raise_for_status()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, required=True, help="folder holding fleet.db")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "fleet.db"
        shutil.copyfile(options.keep / "fleet.db", copy)
        load = os.getloadavg()
        server = ApiServer(str(copy), ServerSettings(project=False)).start()
        try:
            print(f"load {load[0]:.2f}; serving {copy}")
            screen = first_screen(server, options.runs)
            calls = api_calls(server, options.runs)
        finally:
            server.stop()
    figures = {
        "load_at_start": load,
        "load_at_end": os.getloadavg(),
        "first_screen_s": screen,
        "api_calls_s": calls,
        "first_screen_median_s": statistics.median(screen),
        "api_calls_median_s": statistics.median(calls),
    }
    median = statistics.median(screen)
    verdict = "met" if median <= TARGET_S else "not met"
    print(
        f"first screen: median {median:.2f} s (target {TARGET_S:.0f} s: {verdict}); "
        f"its API calls alone: median {statistics.median(calls):.2f} s"
    )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
