"""The ops pages in a real browser (headless Chromium) against a real server on the demo
ledger, after a real Slack collector run (the Slack stand-in) and with two advisories
recorded: alerts and silences, drift, metrics, advisories and an advisory's exposure.

Each page at a phone's and a wide screen's width (390 and 1,600 px): no page-level
horizontal scroll, nothing spilling out of its panel (``test_layout.SPILLS``), no
request to any other host; the numbers on the page are the API's; links lead to the
right routes; filters live in the URL; an unknown advisory shows the API's 404; and
without a collector the alerts page says so. Screenshots go to the artifacts directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, expect

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.e2e.ledgers import copy_ledger
from tests.e2e.pages import api_get, open_page
from tests.e2e.test_layout import SPILLS, viewport
from tests.services.api import ApiServer, serve
from tests.services.browser import screenshot_dir
from tests.services.slack import Clock, SlackStandIn, run_until_idle, slack_collector
from tests.story import Story

WIDTHS = [390, 1600]
CURRENT = "CVE-2099-0001"
"""An advisory on the demo's current openssl (3.0.13): it exposes hosts now."""
LEGACY = "CVE-2099-0002"
"""One on its older openssl (1.1.1w), scored medium."""


def advisories() -> Story:
    s = Story()
    for advisory_id, start, end, score, impact in (
        (CURRENT, "3.0.0", "3.0.14", 9.8, "C:H/I:H/A:H"),
        (LEGACY, "1.1.0", "1.1.2", 5.3, "C:L/I:N/A:N"),
    ):
        s.add(
            "advisory_recorded",
            env="*",
            advisory_id=advisory_id,
            database="nvd",
            aliases=[],
            published="2026-01-01T00:00:00Z",
            modified="2026-01-02T00:00:00Z",
            summary=f"openssl before {end} reads past a buffer.",
            severity=[{"type": "CVSS_V3", "score": score,
                       "vector": f"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/{impact}"}],
            affected=[{"ecosystem": "cpe", "name": "openssl", "vendor": "openssl",
                       "bounds": [{"start": start, "end": end}]}],
        )  # fmt: skip
    return s


@pytest.fixture(scope="module")
def ops_ledger(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo ledger with two advisories, as a Slack collector has seen it,
    and a silence on staging."""
    path = copy_ledger(demo_template, tmp_path_factory.mktemp("ops") / "ledger.db")
    ledger = Ledger(locate(str(path)))
    slack = SlackStandIn()
    try:
        advisories().record(ledger)
        Views(ledger).catch_up()
        collector = slack_collector(ledger, slack.url, Clock(), group_wait=0)
        run_until_idle(collector)
        collector.close()
    finally:
        slack.stop()
        ledger.close()
    silence = CliRunner().invoke(
        root, ["--ledger", str(path), "silence", "add", "--env", "staging", "--for", "2h",
               "--comment", "maintenance <window> & more"],
    )  # fmt: skip
    assert silence.exit_code == 0, silence.output
    return path


@pytest.fixture(name="server", scope="module")
def server_fixture(ops_ledger: Path) -> Iterator[ApiServer]:
    yield from serve(str(ops_ledger))


def open_route(page: Page, server: ApiServer, fragment: str) -> list[str]:
    """The dashboard at ``#/fragment`` with a reader's token, once the page is drawn;
    returns the list the page's requests are being recorded into."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    joiner = "&" if "?" in fragment else "?"
    page.goto(f"{server.base}/#/{fragment}{joiner}token={server.tokens['reader']}")
    expect(page.locator("#page")).to_have_attribute("data-state", "done")
    return requests


def fits_and_stays_home(page: Page, server: ApiServer, requests: list[str], width: int) -> None:
    found = cast(dict[str, list[str]], page.evaluate(SPILLS))
    assert found["spills"] == [], "\n".join(found["spills"])
    assert found["hiddenScrollbars"] == []
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= page.evaluate("document.documentElement.clientWidth"), page_width
    origin = urlsplit(server.base)[:2]
    assert requests
    assert [url for url in requests if urlsplit(url)[:2] != origin] == []


def cells(page: Page, selector: str, *keys: str) -> list[tuple[str, ...]]:
    """Each row's data attributes ``keys``, in order."""
    script = f"rows => rows.map(r => [{', '.join(f'r.dataset.{k}' for k in keys)}])"
    return [tuple(row) for row in page.eval_on_selector_all(selector, script)]


ROUTES = ["alerts", "drift", "metrics", "vulns", f"advisory/{CURRENT}"]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("route", ROUTES)
def test_each_page_fits_the_screen_and_asks_only_the_server(
    screen: Browser, server: ApiServer, route: str, width: int
) -> None:
    with open_page(screen, viewport(width)) as page:
        requests = open_route(page, server, route)
        expect(page.locator("#page table").first).to_be_attached()
        if route == "metrics":  # the charts too, drawn after the table
            expect(page.locator(".dora-chart .chart > *").first).to_be_visible()
        fits_and_stays_home(page, server, requests, width)
        name = route.split("/", maxsplit=1)[0]
        page.screenshot(path=screenshot_dir() / f"ops-{name}-{width}.png", full_page=True)


def test_alerts_and_silences_are_the_apis(page: Page, server: ApiServer) -> None:
    answer = api_get(server, "/api/alerts", limit=1000)
    assert answer["collector"] is True
    alerts = answer["alerts"]["items"]
    assert alerts, "the demo's failures alert"
    silences = api_get(server, "/api/silences", ended="true")
    open_route(page, server, "alerts")
    firing = [a for a in alerts if a["status"] != "resolved"]
    resolved = [a for a in alerts if a["status"] == "resolved"]
    shown = cells(page, "#alerts-firing tbody tr", "fingerprint", "status", "hosts")
    assert shown == [(a["fingerprint"], a["status"], str(a["hosts"])) for a in firing]
    shown = cells(page, "#alerts-resolved tbody tr", "fingerprint", "status", "hosts")
    assert shown == [(a["fingerprint"], a["status"], str(a["hosts"])) for a in resolved]
    assert cells(page, "#silences tbody tr", "id") == [(s["id"],) for s in silences]
    expect(page.locator("#silences tbody tr td").nth(6)).to_have_text("maintenance <window> & more")
    expect(page.locator("#alerts-firing .alert-status").first).to_contain_text("firing")
    expect(page.get_by_test_id("no-collector")).to_be_hidden()

    # Links: an advisory alert to its advisory's page, a generation to its page.
    advisory = next(a for a in firing if a["advisory"])
    row = page.locator(f'#alerts-firing tr[data-fingerprint="{advisory["fingerprint"]}"]')
    row.locator("a.advisory-link").click()
    expect(page).to_have_url(
        f"{server.base}/#/advisory/{advisory['advisory']}?env={advisory['env']}"
    )
    expect(page.locator("#page")).to_have_attribute("data-state", "done")
    page.go_back()
    with_generation = next(a for a in firing if a["generation"])
    row = page.locator(f'#alerts-firing tr[data-fingerprint="{with_generation["fingerprint"]}"]')
    row.locator("td").nth(2).locator("a").click()
    env, number = with_generation["env"], with_generation["generation"]
    expect(page).to_have_url(f"{server.base}/#/generation/{env}/{number}")
    page.go_back()
    host = with_generation["host_names"][0]
    row.locator(f'td.hosts a:text-is("{host}")').click()
    expect(page).to_have_url(f"{server.base}/#/host/{env}/{host}")


def test_drift_is_the_apis_and_pages(page: Page, server: ApiServer) -> None:
    answer = api_get(server, "/api/drift", limit=50)
    open_route(page, server, "drift")
    assert cells(page, "[data-testid=drift-envs] tbody tr", "env", "drifted", "hosts") == [
        (e["env"], str(e["drifted"]), str(e["hosts"])) for e in answer["envs"]
    ]
    problems = answer["problems"]
    assert problems["total"] > 0, "the demo drifts in production"
    assert cells(page, "[data-testid=drift-problems] tbody tr", "host", "problem") == [
        (p["host"], p["problem"]) for p in problems["items"]
    ]
    first = problems["items"][0]
    page.locator("[data-testid=drift-problems] tbody tr").first.locator("td").nth(1).locator(
        "a"
    ).click()
    expect(page).to_have_url(f"{server.base}/#/host/{first['env']}/{first['host']}")


def test_drift_pages_follow_the_url(page: Page, server: ApiServer) -> None:
    every = api_get(server, "/api/drift", limit=1000)["problems"]["items"]
    assert len(every) > 2, "enough for two pages"
    open_route(page, server, "drift?limit=2")
    rows = "[data-testid=drift-problems] tbody tr"
    assert cells(page, rows, "host", "problem") == [(p["host"], p["problem"]) for p in every[:2]]
    expect(page.get_by_test_id("drift-count")).to_have_text(f"1–2 of {len(every)} problems")
    page.get_by_role("link", name="next →").click()
    expect(page).to_have_url(f"{server.base}/#/drift?offset=2&limit=2")
    expect(page.locator("#page")).to_have_attribute("data-state", "done")
    expect(page.locator(rows)).to_have_count(min(2, len(every) - 2))
    assert cells(page, rows, "host", "problem") == [(p["host"], p["problem"]) for p in every[2:4]]
    page.get_by_role("link", name="← previous").click()
    expect(page).to_have_url(f"{server.base}/#/drift?limit=2")


def test_metrics_are_the_apis(page: Page, server: ApiServer) -> None:
    rows = api_get(server, "/api/metrics")
    open_route(page, server, "metrics")
    assert cells(page, "[data-testid=metrics-table] tbody tr", "env", "service", "deployments") == [
        (r["env"], r["service"], str(r["deployments"])) for r in rows
    ]
    expect(page.locator(".dora-chart")).to_have_count(len(rows))
    one = rows[0]
    page.locator("[data-testid=metrics-table] tbody tr").first.locator("a.svc").click()
    expect(page.locator("[data-testid=metrics-table] tbody tr")).to_have_count(
        len([r for r in rows if r["env"] == one["env"] and r["service"] == one["service"]])
    )
    assert "service=" in page.url


def test_vulns_are_the_apis_and_the_severity_filter_is_in_the_url(
    page: Page, server: ApiServer
) -> None:
    every = api_get(server, "/api/vulns")
    assert {v["id"] for v in every} == {CURRENT, LEGACY}
    open_route(page, server, "vulns")
    rows = "[data-testid=vulns-table] tbody tr"
    assert cells(page, rows, "id", "hosts", "services", "severity") == [
        (v["id"], str(v["hosts"]), str(v["services"]), v["severity"]) for v in every
    ]
    expect(page.locator(rows).first.locator(".severity")).to_contain_text("critical 9.8")
    page.get_by_label("severity at least").select_option("high")
    expect(page).to_have_url(f"{server.base}/#/vulns?severity=high")
    high = api_get(server, "/api/vulns", min_severity="high")
    expect(page.locator(rows)).to_have_count(len(high))
    assert cells(page, rows, "id") == [(v["id"],) for v in high]
    page.reload()
    expect(page.get_by_label("severity at least")).to_have_value("high")
    page.locator(rows).first.locator("a.advisory-link").click()
    expect(page).to_have_url(f"{server.base}/#/advisory/{CURRENT}")


def test_an_advisorys_exposure_is_the_apis(page: Page, server: ApiServer) -> None:
    answer = api_get(server, "/api/exposure", id=CURRENT)
    open_route(page, server, f"advisory/{CURRENT}")
    totals = page.get_by_test_id("exposure-totals")
    expect(totals.locator('[data-total="hosts_exposed"] dd')).to_have_text(
        f"{answer['hosts_exposed']:,}"
    )
    expect(totals.locator('[data-total="services_exposed"] dd')).to_have_text(
        f"{answer['services_exposed']:,}"
    )
    expect(page.locator("[data-testid=affected-table] tbody tr")).to_have_count(
        len(answer["affected"])
    )
    # (Its hours grow with the clock while a host stays exposed: compared by when.)
    assert cells(page, "[data-testid=windows-table] tbody tr", "host", "first") == [
        (w["host"], w["first_exposed"]) for w in answer["hosts"]
    ]
    first = answer["affected"][0]
    page.locator("[data-testid=affected-table] tbody tr").first.locator("td").nth(4).locator(
        "a"
    ).click()
    expect(page).to_have_url(f"{server.base}/#/package/{first['name']}?env={first['env']}")


def test_an_unknown_advisory_shows_the_apis_404(page: Page, server: ApiServer) -> None:
    missing = "CVE-2099-9999"
    page.goto(f"{server.base}/#/advisory/{missing}?token={server.tokens['reader']}")
    expect(page.locator("#page")).to_have_attribute("data-state", "error")
    expect(page.locator("#page .page-error")).to_contain_text("404")
    expect(page.locator("#page .page-error")).to_contain_text(missing)


def test_without_a_collector_the_alerts_page_says_so(
    page: Page,
    anonymous_server: ApiServer,
) -> None:
    page.goto(f"{anonymous_server.base}/#/alerts")
    expect(page.locator("#page")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("no-collector")).to_be_visible()
    expect(page.get_by_test_id("no-collector")).to_contain_text("No Slack collector has run")
    expect(page.locator("#alerts-firing tbody tr")).to_have_count(0)


def test_page_numbers_follow_the_api_when_filtered(page: Page, server: ApiServer) -> None:
    """The env filter is in the URL and the alerts shown are the API's for that env."""
    every: list[dict[str, Any]] = api_get(server, "/api/alerts", limit=1000)["alerts"]["items"]
    env = every[0]["env"]
    open_route(page, server, "alerts")
    page.get_by_test_id("alerts-filter-env").select_option(env)
    expect(page).to_have_url(f"{server.base}/#/alerts?env={env}")
    expect(page.locator("#page")).to_have_attribute("data-state", "done")
    mine = api_get(server, "/api/alerts", env=env, limit=1000)["alerts"]["items"]
    shown = "#alerts-firing tbody tr, #alerts-resolved tbody tr"
    expect(page.locator(shown)).to_have_count(len(mine))
