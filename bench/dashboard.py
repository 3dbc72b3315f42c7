"""The dashboard's first screen at fleet scale (issue 18: "with the 10,000-host bench fleet
the first screen is usable within two seconds").

    .venv/bin/python -m bench.dashboard --keep DIR [--runs 5]

Serves a copy of ``DIR/fleet.db`` (``python -m bench.views --keep DIR`` makes it) with
``ledger serve``'s app in this process, opens the dashboard in headless Chromium (Debian's,
as the e2e tests do) and times, per run in a fresh browser context, from navigation to the
first screen being usable: every env of the topology drawn (a tile per host, or counts
per generation for an env of more than ``TILE_LIMIT`` hosts), the failures table filled
and the live stream connected (what ``tests/e2e/test_dashboard.py`` waits for). Next to
it, in the same run, the time the page's own API calls take when fetched directly, one
after the other (``/api/status``, ``/api/topology/summary``, ``/api/failures``,
``/api/generations/tree``): what a faster page could not go below. The ratio of the two
medians is printed: only it compares across runs on a shared machine.
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
from projections.fleet_summary import TILE_LIMIT
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
                expect(page.locator("#topology section.env").first).to_be_visible(
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
                drawn = page.eval_on_selector_all(
                    "#topology section.env", "envs => envs.map(e => e.dataset.drawn).join(', ')"
                )
                print(f"  first screen {seconds[-1]:.2f} s, {elements} elements ({drawn})")
                context.close()
        finally:
            browser.close()
    return seconds


SUMMARY = "/api/topology/summary?attention_limit=16"
TOPOLOGY_PAGE = "/api/topology?limit=1000"
"""One page of the whole topology: the page read 65 of them, one after the other, before
the summary (each computing the whole topology)."""


def fetch(server: ApiServer, paths: list[str]) -> float:
    """Seconds to fetch ``paths`` one after the other."""
    start = time.perf_counter()
    for path in paths:
        answer = httpx.get(server.base + path, headers=server.headers("reader"), timeout=120)
        answer.raise_for_status()
    return time.perf_counter() - start


def api_calls(server: ApiServer, runs: int) -> list[float]:
    """Seconds the first screen's API calls take, fetched one after the other (the page
    sends them at once)."""
    paths = ["/api/status", SUMMARY,
             "/api/failures?kind=activation_failed&newest_first=true&limit=20",
             "/api/generations/tree"]  # fmt: skip
    return [fetch(server, paths) for _ in range(runs)]


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
            print(f"load {load[0]:.2f}; serving {copy}; tile limit {TILE_LIMIT} hosts")
            screen = first_screen(server, options.runs)
            calls = api_calls(server, options.runs)
            summary = [fetch(server, [SUMMARY]) for _ in range(options.runs)]
            topology_page = [fetch(server, [TOPOLOGY_PAGE]) for _ in range(options.runs)]
        finally:
            server.stop()
    ratio = statistics.median(screen) / statistics.median(calls)
    figures = {
        "load_at_start": load,
        "load_at_end": os.getloadavg(),
        "first_screen_s": screen,
        "api_calls_s": calls,
        "first_screen_median_s": statistics.median(screen),
        "api_calls_median_s": statistics.median(calls),
        "ratio": ratio,
        "summary_s": summary,
        "topology_page_s": topology_page,
    }
    median = statistics.median(screen)
    verdict = "met" if median <= TARGET_S else "not met"
    print(
        f"first screen: median {median:.2f} s (target {TARGET_S:.0f} s: {verdict}); "
        f"its API calls alone: median {statistics.median(calls):.2f} s; "
        f"first screen / API calls: {ratio:.2f}; load at the end {os.getloadavg()[0]:.2f}"
    )
    print(
        f"GET {SUMMARY}: median {statistics.median(summary):.3f} s; "
        f"one page of the whole topology (GET {TOPOLOGY_PAGE}, the page read 65 before): "
        f"median {statistics.median(topology_page):.3f} s"
    )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
