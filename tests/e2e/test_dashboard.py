"""The dashboard in a real browser (headless Chromium via Playwright) against a real
server on a demo ledger: topology, generation tree and failures as the API reports
them, the audit search answering as ``projections.queries.where_counts`` does, live
updates from the event stream, the token form, anonymous reads, and no request to any
other host.

The demo ledger and its server are the e2e package's (``conftest.py``), shared with the
other modules' tests that only read; the test that appends an event has a copy of its own.

Screenshots are written to the artifacts directory (``tests.services.browser``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from projections.queries import where_counts
from projections.versions import parse_range
from tests.e2e.pages import api_get, open_dashboard, open_page
from tests.services.api import ApiServer
from tests.services.browser import screenshot_dir

HEALTH_LEVELS = {"ok": 1, "warning": 2, "critical": 3}
HEALTH_NAMES = ["unknown", "ok", "warning", "critical"]


# --- the pages -------------------------------------------------------------------------


def shot(page: Page, name: str, selector: str | None = None) -> None:
    path = screenshot_dir() / f"dashboard-{name}.png"
    if selector is None:
        page.screenshot(path=path, full_page=True)
    else:
        page.locator(selector).screenshot(path=path)


# --- the API, as the expectations' source ----------------------------------------------


def all_pages(server: ApiServer, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = f"{server.base}{path}?limit=1000"
    while url:
        response = httpx.get(url, headers=server.headers("reader"))
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        url = page["next"] and server.base + page["next"]  # relative to the server
    return items


def flatten(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, stack = [], list(nodes)
    while stack:
        node = stack.pop()
        out.append(node)
        stack += node["children"]
    return out


def expected_hosts(placements: list[dict[str, Any]]) -> dict[str, tuple[str, int | None]]:
    """Per "env/host": the worst health (critical > warning > ok; unknown without any
    report) and the newest placement's generation."""
    levels: dict[str, int] = {}
    generations: dict[str, int | None] = {}
    for p in placements:
        key = f"{p['env']}/{p['host']}"
        name = (p["health"] or "").replace("(stale)", "").strip()
        levels[key] = max(levels.get(key, 0), HEALTH_LEVELS.get(name, 0))
        if p["generation"] is not None:
            generations[key] = max(generations.get(key) or 0, p["generation"])
        else:
            generations.setdefault(key, None)
    return {key: (HEALTH_NAMES[level], generations[key]) for key, level in levels.items()}


# --- the tests -------------------------------------------------------------------------


def test_overview_shows_topology_tree_and_failures(page: Page, demo_server: ApiServer) -> None:
    open_dashboard(page, demo_server)
    assert "token" not in page.url, "the token stays out of the address bar"
    status = api_get(demo_server, "/api/status")
    assert len(status["envs"]) == 2
    expect(page.locator("#whoami")).to_contain_text("test-reader")
    expect(page.locator("#head")).to_have_attribute("data-position", str(status["head"]))

    # Topology: a tile per host of each env, coloured by its worst health, grouped by
    # the generation of its newest placement.
    placements = all_pages(demo_server, "/api/topology")
    hosts = expected_hosts(placements)
    expect(page.locator("#topology .host")).to_have_count(len(hosts))
    for env in status["envs"]:
        in_env = {key for key in hosts if key.startswith(f"{env}/")}
        expect(page.locator(f'#topology section.env[data-env="{env}"] .host')).to_have_count(
            len(in_env)
        )
    shown = page.eval_on_selector_all(
        "#topology .host",
        "tiles => tiles.map(t => [t.dataset.env + '/' + t.dataset.host, t.dataset.health,"
        " t.closest('.gen-group').dataset.generation])",
    )
    assert {key: (health, int(gen) if gen else None) for key, health, gen in shown} == hosts
    assert {health for health, _ in hosts.values()} >= {"ok", "warning", "critical"}

    # The generation tree: every generation, the rollbacks with their targets, the
    # failed ones with their failure, the tags.
    generations = flatten(api_get(demo_server, "/api/generations/tree"))
    expect(page.locator("#tree li.gen")).to_have_count(len(generations))
    rollbacks = [g for g in generations if g["reason"] == "rollback"]
    failed = [g for g in generations if g["failure"]]
    assert rollbacks
    assert failed
    for g in rollbacks:
        node = page.locator(f'#tree li.gen[data-env="{g["env"]}"][data-number="{g["number"]}"]')
        expect(node.locator(".badge.rollback")).to_have_text(f"↩ rollback to #{g['target']}")
    for g in failed:
        node = page.locator(f'#tree li.gen[data-env="{g["env"]}"][data-number="{g["number"]}"]')
        expect(node).to_have_class(re.compile(r"\bis-failed\b"))
        expect(node.locator(":scope > .failure")).to_have_text(g["failure"])
    tags = sorted({tag for g in generations for tag in g["tags"]})
    assert tags
    assert sorted(set(page.locator("#tree .tag").all_text_contents())) == tags

    # The latest failed activations, newest first.
    failures = api_get(
        demo_server, "/api/failures", kind="activation_failed", newest_first="true", limit=20
    )["items"]
    assert failures
    rows = page.locator("#failures tbody tr")
    expect(rows).to_have_count(len(failures))
    for row, failure in zip(rows.all(), failures, strict=True):
        cells = row.locator("td").all_text_contents()
        assert cells[1:] == [failure["env"], failure["host"], failure["service"],
                             str(failure["generation"]), failure["reason"]]  # fmt: skip
    shot(page, "overview")


SHOWN = "main:not([hidden])"
"""The part of the dashboard shown: the fleet's panels, or the page of a route."""


def audit(page: Page, part: str) -> Locator:
    """A part of the where-answer shown (the fleet's audit panel or the package page):
    ``where-error``, ``caption``, ``where-summary``, ``where-placements``."""
    return page.locator(f"{SHOWN} .where-result .{part}")


def summary_rows(page: Page) -> list[dict[str, Any]]:
    """The audit summary as the page shows it."""
    return cast(
        list[dict[str, Any]],
        page.eval_on_selector_all(
            f"{SHOWN} .where-summary:not([hidden]) tbody tr",
            """rows => rows.map(row => {
                const cells = row.querySelectorAll('td');
                return {env: cells[0].textContent, version: cells[1].textContent,
                        hosts: Number(cells[2].textContent.replace(/,/g, '')),
                        services: [...cells[3].querySelectorAll('.svc')].map(s => s.textContent)};
            })""",
        ),
    )


def ask(
    page: Page, name: str, version_range: str = "", at: str = "", env: str = "",
    *, refused_here: bool = False,
) -> None:  # fmt: skip
    """Fill the audit form shown (the fleet's or the package page's) and search. The
    question goes to the package page's route (a new address: a link to share), and this
    waits for that page to be drawn; a time the form refuses (``refused_here``) is said
    in place and nothing is asked."""
    form = page.locator(f"{SHOWN} form.where-form")
    before = page.evaluate("location.hash")
    form.locator("[name=name]").fill(name)
    form.locator("[name=range]").fill(version_range)
    form.locator("[name=at]").fill(at)
    form.locator("[name=env]").select_option(env)
    form.locator("button[type=submit]").click()
    if refused_here:
        expect(audit(page, "where-error")).to_be_visible()
        assert page.evaluate("location.hash") == before
        return
    page.wait_for_function("before => location.hash !== before", arg=before)
    drawn = page.evaluate("location.hash")
    assert drawn.startswith(f"#/package/{name}")
    expect(page.locator("#page")).to_have_attribute("data-drawn", drawn)
    expect(page.locator("#page")).to_have_attribute("data-state", "done")


def test_audit_search_answers_as_the_views(page: Page, demo_server: ApiServer) -> None:
    open_dashboard(page, demo_server)
    expect(page.locator("#where-result")).to_have_attribute("data-state", "done")

    # A moment between two generations of the demo's history, to the minute.
    generations = api_get(demo_server, "/api/generations", env="production", limit=1000)["items"]
    middle = len(generations) // 2
    done = datetime.fromisoformat(generations[middle]["finished_at"])
    following = datetime.fromisoformat(generations[middle + 1]["planned_at"])
    moment = (done + (following - done) / 2).replace(second=0, microsecond=0)
    if moment <= done:
        moment += timedelta(minutes=1)
    assert done < moment < following
    at_input = moment.strftime("%Y-%m-%dT%H:%M")  # no seconds, no Z: read as UTC

    def expected(**kwargs: Any) -> list[dict[str, Any]]:
        rows = where_counts(demo_server.views, "openssl", at=moment, **kwargs)
        return [{k: row[k] for k in ("env", "version", "hosts", "services")} for row in rows]

    everything = expected()
    ask(page, "openssl", at=at_input)
    expect(page.locator("#page")).to_have_attribute("data-route", "package")
    expect(audit(page, "where-error")).to_be_hidden()
    assert everything
    assert summary_rows(page) == everything
    expect(audit(page, "caption")).to_contain_text(moment.strftime("at %Y-%m-%dT%H:%M:00Z"))
    shot(page, "audit-openssl-at", "#package-panel")

    version_range = ">=1.0.1,<1.0.2"
    in_range = expected(version_range=parse_range(version_range))
    ask(page, "openssl", version_range, at_input)
    assert in_range
    assert in_range != everything
    assert summary_rows(page) == in_range
    shot(page, "audit-openssl-range", "#package-panel")

    staging = expected(version_range=parse_range(version_range), env="staging")
    ask(page, "openssl", version_range, at_input, env="staging")
    assert staging
    assert summary_rows(page) == staging

    # A range the API refuses: its message is shown, and no stale answer.
    bad = ">=1.0.1,<<1.0.2"
    refused = httpx.get(
        f"{demo_server.base}/api/where", params={"name": "openssl", "range": bad},
        headers=demo_server.headers("reader"),
    )  # fmt: skip
    assert refused.status_code == 422
    ask(page, "openssl", bad)
    expect(audit(page, "where-error")).to_be_visible()
    expect(audit(page, "where-error")).to_contain_text(refused.json()["message"])
    expect(audit(page, "where-summary")).to_be_hidden()
    assert summary_rows(page) == []
    shot(page, "audit-bad-range", "#package-panel")

    # Each search was an address: Back goes through them to the fleet.
    page.go_back()
    expect(page.locator("#page")).to_have_attribute("data-drawn", page.evaluate("location.hash"))
    assert "staging" in page.evaluate("location.hash")
    assert summary_rows(page) == staging


def test_a_new_failed_activation_shows_without_a_reload(
    page: Page, writable_demo_server: ApiServer
) -> None:
    server = writable_demo_server  # a ledger of the module's own: this test appends
    open_dashboard(page, server)
    head = int(page.locator("#head").get_attribute("data-position") or 0)
    page.evaluate("window.e2eNotReloaded = true")

    placement = next(
        p for p in all_pages(server, "/api/topology") if p["env"] == "staging" and p["generation"]
    )
    # Markup in the reason must show as text.
    reason = f"health check failed <img src=x onerror=alert(1)> e2e-{uuid.uuid4().hex[:8]}"
    event = {
        "kind": "activation_failed", "event_id": str(uuid.uuid4()), "env": placement["env"],
        "occurred_at": datetime.now(UTC).isoformat(), "actor": "e2e", "host": placement["host"],
        "service": placement["service"], "build_id": placement["build_id"],
        "generation": placement["generation"], "reason": reason,
    }  # fmt: skip
    response = httpx.post(f"{server.base}/api/events", json=event, headers=server.headers("writer"))
    assert response.status_code == 201, response.text
    position = response.json()["events"][0]["position"]
    assert position > head

    newest = page.locator("#failures tbody tr").first
    expect(newest).to_have_attribute("data-position", str(position))
    expect(newest.locator("td.reason")).to_have_text(reason)
    expect(newest.locator("td").nth(2)).to_have_text(placement["host"])
    expect(newest.locator("td.reason *")).to_have_count(0)
    expect(page.locator("#head")).to_have_attribute("data-position", str(position))
    assert page.evaluate("window.e2eNotReloaded") is True
    shot(page, "live-failure")


def test_token_form_and_anonymous_reads(
    browser: Browser, demo_server: ApiServer, anonymous_server: ApiServer
) -> None:
    with open_page(browser) as page:
        page.goto(f"{demo_server.base}/")
        expect(page.locator("#token-form")).to_be_visible()
        expect(page.locator("#dashboard")).to_be_hidden()
        expect(page.locator("#topology .host")).to_have_count(0)
        expect(page.locator("#failures tbody tr")).to_have_count(0)
        shot(page, "token-form")

        page.fill("#token-input", demo_server.tokens["reader"])
        page.click("#token-form button[type=submit]")
        expect(page.locator("#token-form")).to_be_hidden()
        expect(page.locator("#topology .host").first).to_be_visible()
        expect(page.locator("#whoami")).to_contain_text("test-reader")

    with open_page(browser) as page:
        page.goto(f"{demo_server.base}/#token=not-a-token")
        expect(page.locator("#token-form")).to_be_visible()
        expect(page.locator("#token-message")).to_contain_text("not valid")
        expect(page.locator("#topology .host")).to_have_count(0)

    with open_page(browser) as page:
        page.goto(f"{anonymous_server.base}/")
        expect(page.locator("#topology .host").first).to_be_visible()
        expect(page.locator("#token-form")).to_be_hidden()
        expect(page.locator("#whoami")).to_contain_text("anonymous")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        shot(page, "anonymous")


def test_every_request_goes_to_the_server(page: Page, demo_server: ApiServer) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_dashboard(page, demo_server)
    expect(page.locator("#where-result")).to_have_attribute("data-state", "done")
    page.click("#where-more")
    expect(page.locator("#where-shown")).to_contain_text("51–100")

    origin = urlsplit(demo_server.base)
    paths = {urlsplit(url).path for url in requests}
    assert {"/", "/app.js", "/style.css", "/api/status", "/api/topology/summary", "/api/stream",
            "/api/where"} <= paths  # fmt: skip
    elsewhere = [url for url in requests if urlsplit(url)[:2] != origin[:2]]
    assert not elsewhere
    loaded = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded
    assert all(urlsplit(url)[:2] == origin[:2] for url in loaded)


# --- times and builds ------------------------------------------------------------------

ISO_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$")
ISO_MINUTE = re.compile(r"^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\dZ$")


def summary_from_api(server: ApiServer, **params: object) -> list[dict[str, Any]]:
    answer = api_get(server, "/api/where", name="openssl", limit=50, **params)
    return [
        {k: row[k] for k in ("env", "version", "hosts", "services")} for row in answer["summary"]
    ]


def afternoon_between_generations(server: ApiServer) -> datetime:
    """A whole minute after 13:00 UTC, between one production generation's end and the
    next one's start: a time a 12-hour clock would get wrong."""
    generations = api_get(server, "/api/generations", env="production", limit=1000)["items"]
    for done_one, next_one in pairwise(generations):
        if not done_one["finished_at"]:
            continue
        done = datetime.fromisoformat(done_one["finished_at"])
        following = datetime.fromisoformat(next_one["planned_at"])
        moment = done.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while moment < following:
            if moment.hour >= 13:
                return moment
            moment += timedelta(minutes=1)
    raise AssertionError("the demo history has no afternoon between two generations")


def test_the_at_field_takes_24_hour_utc_times_and_dates(page: Page, demo_server: ApiServer) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(urlsplit(request.url).path))
    open_dashboard(page, demo_server)
    expect(page.locator("#where-result")).to_have_attribute("data-state", "done")
    at_field = page.locator("#where-at")
    expect(at_field).to_have_attribute("type", "text")
    expect(at_field).to_have_attribute("pattern", re.compile(r"\S"))
    expect(page.get_by_label("at (UTC, 24-hour)")).to_have_count(1)

    moment = afternoon_between_generations(demo_server)
    at_text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    ask(page, "openssl", at=at_text)
    expect(audit(page, "where-error")).to_be_hidden()
    at_field = page.locator(f"{SHOWN} form.where-form [name=at]")
    expected = summary_from_api(demo_server, at=at_text)
    assert expected
    assert summary_rows(page) == expected
    # The moment tells the clocks apart: read on a 12-hour clock, the answer differs.
    morning = (moment - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert summary_rows(page) != summary_from_api(demo_server, at=morning)
    expect(audit(page, "caption")).to_contain_text(f"at {at_text}")
    expect(at_field).to_have_attribute("aria-invalid", "false")

    # A date is its midnight, UTC.
    day = moment.strftime("%Y-%m-%d")
    ask(page, "openssl", at=day)
    assert summary_rows(page) == summary_from_api(demo_server, at=f"{day}T00:00:00Z")
    expect(audit(page, "caption")).to_contain_text(f"at {day}T00:00:00Z")

    # A 12-hour time, an hour past 23, a day February does not have: said so, not sent.
    asked = requests.count("/api/where")
    for bad in ["01/10/2026 2:30 PM", f"{day}T25:00", "2026-02-30", f"{day}T14:30+01:00"]:
        ask(page, "openssl", at=bad, refused_here=True)
        expect(audit(page, "where-error")).to_be_visible()
        expect(audit(page, "where-error")).to_contain_text(f'"{bad}" is not a UTC time')
        expect(audit(page, "where-error")).to_contain_text("2026-01-10T14:30:00Z")
        expect(audit(page, "where-summary")).to_be_hidden()
        expect(at_field).to_have_attribute("aria-invalid", "true")
    assert requests.count("/api/where") == asked
    shot(page, "audit-bad-at", "#package-panel")

    # On the fleet's own panel too: said in place, nothing asked, no new address.
    page.goto(f"{demo_server.base}/#/")
    expect(page.locator("#where-result")).to_have_attribute("data-state", "done")
    asked = requests.count("/api/where")
    ask(page, "openssl", at="2026-02-30", refused_here=True)
    expect(page.locator("#where-error")).to_contain_text('"2026-02-30" is not a UTC time')
    expect(page.locator("#where-at")).to_have_attribute("aria-invalid", "true")
    assert requests.count("/api/where") == asked


def test_the_build_column_shows_the_build_id_and_its_version(
    page: Page, demo_server: ApiServer
) -> None:
    open_dashboard(page, demo_server)
    expect(page.locator("#where-result")).to_have_attribute("data-state", "done")
    placements = api_get(demo_server, "/api/where", name="openssl", limit=50)["placements"]["items"]
    assert placements
    assert any(p["build_version"] for p in placements)
    shown = page.eval_on_selector_all(
        "#where-placements tbody td.build",
        """cells => cells.map(cell => ({
            id: cell.querySelector('.build-id').textContent,
            title: cell.querySelector('.build-id').title,
            mono: getComputedStyle(cell.querySelector('.build-id')).fontFamily,
            version: cell.querySelector('.build-version')?.textContent ?? null}))""",
    )
    assert [(s["id"], s["title"], s["version"]) for s in shown] == [
        (p["build_id"][:12], p["build_id"], p["build_version"]) for p in placements
    ]
    assert all("mono" in s["mono"].lower() for s in shown)


def test_every_time_is_iso_8601_utc_in_any_locale(browser: Browser, demo_server: ApiServer) -> None:
    """Far from UTC, in a 12-hour locale: the times are still UTC, 24-hour, ISO 8601."""
    with open_page(browser, locale="en-US", timezone_id="America/Los_Angeles") as page:
        open_dashboard(page, demo_server)
        expect(page.locator("#where-placements tbody tr").first).to_be_visible()
        assert page.evaluate("new Date(0).getTimezoneOffset()") != 0
        failures = api_get(
            demo_server, "/api/failures", kind="activation_failed", newest_first="true", limit=20
        )["items"]
        times = page.locator("#failures tbody td.time").all_text_contents()
        assert times == [
            datetime.fromisoformat(f["occurred_at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for f in failures
        ]
        since = page.locator("#where-placements tbody td.time").all_text_contents()
        planned = page.locator("#tree .gen-row .meta").all_text_contents()
        updated = (page.locator("#updated").text_content() or "").removeprefix("updated ")
        assert since
        assert planned
        assert [t for t in [*times, *since, updated] if not ISO_SECOND.match(t)] == []
        assert [t for t in planned if not ISO_MINUTE.match(t)] == []
