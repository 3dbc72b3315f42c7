"""The fleet panel at scale, in a real browser: an env with more hosts than
``TILE_LIMIT`` is drawn as counts per generation (a bar and the numbers as text, equal to
``GET /api/topology/summary``'s), not as a tile per host; a small env still gets a tile
per host; tiles, chips and "and N more" are links to the host and env pages; health has
a glyph as well as a colour; the panel fits a phone; and a live redraw keeps a
generation's services open.

The fleet is generated here (620 production hosts, 24 staging: a few thousand events),
so the test needs no kept benchmark fleet; ``bench.dashboard`` times the 10,000-host one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from ledger.application import Ledger
from ledger.store import locate
from projections.fleet_summary import TILE_LIMIT
from projections.runner import Views
from tests.e2e.pages import open_dashboard, open_page
from tests.e2e.test_layout import SPILLS
from tests.services.api import ApiServer, serve
from tests.services.browser import screenshot_dir
from tests.story import Story

PRODUCTION = 620
STAGING = 24
GLYPHS = {"ok": "✓", "warning": "!", "critical": "✕", "unknown": "?"}
WORST_FIRST = ("critical", "warning", "ok", "unknown")


def fleet() -> Story:
    """Production: 620 hosts running api and web (every third one a worker too), all in
    generation 1, then api 1.1 on the first 300 in generation 2; staging: 24 hosts in
    generation 1. Health by host number: mostly ok, some warning and critical, some with
    no report, some whose report expired (ttl 60 s, weeks ago); one failed activation."""
    s = Story()
    api, web, worker = s.build("api", "1.0"), s.build("web", "1.0"), s.build("worker", "1.0")
    api2 = s.build("api", "1.1")
    hosts = [f"app-{i:03d}" for i in range(PRODUCTION)]
    services = {h: {"api": api, "web": web} | ({"worker": worker} if i % 3 == 0 else {})
                for i, h in enumerate(hosts)}  # fmt: skip
    s.plan(1, {(h, svc): b for h in hosts for svc, b in services[h].items()})
    for host in hosts:
        for service, build in services[host].items():
            s.add("activation_completed", host=host, service=service, build_id=build,
                  generation=1)  # fmt: skip
    s.plan(2, {(h, svc): (api2 if svc == "api" and i < 300 else b)
               for i, h in enumerate(hosts) for svc, b in services[h].items()})  # fmt: skip
    for host in hosts[:300]:
        s.add("deactivated", host=host, service="api", build_id=api, generation=2)
        s.add("activation_completed", host=host, service="api", build_id=api2, generation=2)
    s.add("activation_failed", host=hosts[1], service="api", build_id=api2, generation=2,
          reason="health check failed")  # fmt: skip
    for i, host in enumerate(hosts):
        state = ("ok",) * 6 + ("warning", "warning", "critical", "none")
        chosen = state[i % len(state)]
        if chosen != "none":
            expired = i % 7 == 3
            s.add("health_reported", host=host, service="api", state=chosen,
                  ttl_s=60 if expired else None)  # fmt: skip
    staging = Story("staging")
    staging.clock = s.clock
    hosts = [f"stg-{i:02d}" for i in range(STAGING)]
    staging.plan(1, {(h, "api"): api for h in hosts})
    for i, host in enumerate(hosts):
        staging.add("activation_completed", host=host, service="api", build_id=api, generation=1)
        staging.add("health_reported", host=host, service=None,
                    state=("ok", "warning", "critical")[i % 3], ttl_s=None)  # fmt: skip
    s.events += staging.events
    return s


@pytest.fixture(scope="module")
def fleet_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "ledger.db"
    ledger = Ledger(locate(str(path)), create=True)
    try:
        fleet().record(ledger)
        Views(ledger).catch_up()
    finally:
        ledger.close()
    return path


@pytest.fixture(scope="module")
def server(fleet_ledger: Path) -> Iterator[ApiServer]:
    yield from serve(str(fleet_ledger))


def summary(server: ApiServer) -> dict[str, Any]:
    """What the page asks for (its attention limit)."""
    answer = httpx.get(
        f"{server.base}/api/topology/summary", params={"attention_limit": 16},
        headers=server.headers("reader"),
    )  # fmt: skip
    answer.raise_for_status()
    return cast(dict[str, Any], answer.json())


def shown_counts(page: Page, selector: str) -> dict[str, int]:
    """{level: count} as a generation box's list says it in words ("✕ critical 3")."""
    counts = {}
    for text in page.locator(f"{selector} .level-counts li").all_text_contents():
        match = re.fullmatch(r"(?:([✓!✕?]) )?(\w+) ([\d,]+)", text.strip())
        assert match, text
        glyph, level, number = match.groups()
        assert glyph == GLYPHS.get(level), text  # a glyph, not colour alone
        counts[level] = int(number.replace(",", ""))
    return counts


def test_a_large_env_is_counted_per_generation(page: Page, server: ApiServer) -> None:
    open_dashboard(page, server)
    answer = summary(server)
    production = next(e for e in answer["envs"] if e["env"] == "production")
    assert production["hosts"] == PRODUCTION > TILE_LIMIT
    assert production["tiles"] is None
    section = page.locator('#topology section.env[data-env="production"]')
    expect(section).to_have_attribute("data-drawn", "counts")
    expect(section.locator("a.host")).to_have_count(0)
    expect(section.locator("h3 a")).to_have_attribute("href", "#/env/production")

    boxes = section.locator(".gen-counts")
    expect(boxes).to_have_count(len(production["generations"]))
    assert len(production["generations"]) == 2
    for group in production["generations"]:
        number = group["generation"]
        selector = (
            f'#topology section.env[data-env="production"] .gen-counts[data-generation="{number}"]'
        )
        box = page.locator(selector)
        expect(box).to_have_attribute("data-hosts", str(group["hosts"]))
        expect(box).to_have_attribute("data-placements", str(group["placements"]))
        health = group["health"]
        wanted = {level: health[level] for level in (*WORST_FIRST, "stale") if health[level]}
        assert shown_counts(page, selector) == wanted
        assert {"critical", "warning", "ok", "stale"} <= set(wanted)
        label = box.locator(".health-bar")
        expect(label).to_have_attribute("role", "img")
        for level in WORST_FIRST:
            if health[level]:
                expect(label).to_have_attribute(
                    "aria-label", re.compile(rf"\b{health[level]:,} {level}\b")
                )
        expect(box.locator(".gen-label a")).to_have_attribute(
            "href", f"#/generation/production/{number}"
        )
        services = box.locator(".gen-services a.svc-count")
        expect(services).to_have_count(len(group["services"]))
        for link, service in zip(services.all(), group["services"], strict=True):
            assert link.get_attribute("data-service") == service["service"]
            assert link.get_attribute("href") == f"#/generation/production/{number}"
            assert (link.text_content() or "").startswith(
                f"{service['service']} {service['placements']:,}"
            )

    # Drawn in a few hundred elements, however many hosts: not one per host.
    elements = section.evaluate("s => s.getElementsByTagName('*').length")
    assert elements < production["hosts"] / 2, elements

    # The env's own counts, with their glyphs.
    pills = section.locator(".env-head .pill").all_text_contents()
    health = production["health"]
    assert pills == [
        *(f"{GLYPHS[level]} {level} {health[level]:,}" for level in WORST_FIRST if health[level]),
        f"stale {health['stale']:,}",
    ]
    page.screenshot(path=screenshot_dir() / "fleet-scale-1600.png", full_page=True)


def test_chips_and_tiles_link_to_their_pages(page: Page, server: ApiServer) -> None:
    open_dashboard(page, server)
    answer = summary(server)
    production = next(e for e in answer["envs"] if e["env"] == "production")
    attention = production["attention"]
    assert attention["total"] > len(attention["hosts"]) == 16
    chips = page.locator('#topology section.env[data-env="production"] .attention a.chip')
    expect(chips).to_have_count(16)
    for chip, host in zip(chips.all(), attention["hosts"], strict=True):
        assert chip.get_attribute("href") == f"#/host/production/{host['host']}"
        stale = " (stale)" if host["stale"] else ""
        assert (
            chip.text_content()
            == f"{GLYPHS[host['health']]} {host['host']} {host['health']}{stale}"
        )
    more = page.locator('#topology section.env[data-env="production"] .attention a.more')
    expect(more).to_have_text(f"and {attention['total'] - 16:,} more")
    expect(more).to_have_attribute("href", "#/env/production")

    # The small env: a tile per host, each a link saying its host and health.
    staging = next(e for e in answer["envs"] if e["env"] == "staging")
    assert staging["tiles"] is not None
    tiles = page.locator('#topology section.env[data-env="staging"] a.host')
    expect(tiles).to_have_count(STAGING)
    shown = {t.get_attribute("data-host"): (t.get_attribute("href"), t.get_attribute("aria-label"),
                                            t.text_content()) for t in tiles.all()}  # fmt: skip
    assert shown == {
        t["host"]: (f"#/host/staging/{t['host']}", f"{t['host']}: {t['health']}",
                    GLYPHS[t["health"]])
        for t in staging["tiles"]
    }  # fmt: skip

    first = attention["hosts"][0]["host"]
    chips.first.click()
    expect(page).to_have_url(re.compile(rf"#/host/production/{first}$"))
    expect(page.locator("#page")).to_have_attribute("data-route", "host")


def test_a_live_redraw_keeps_the_services_open(page: Page, server: ApiServer) -> None:
    open_dashboard(page, server)
    box = page.locator('#topology section.env[data-env="production"] .gen-counts').first
    box.locator(".gen-services summary").click()
    expect(box.locator(".gen-services")).to_have_attribute("open", "")
    # app-000 was ok: critical now, it becomes the first chip once the page redraws.
    event = {
        "kind": "health_reported", "event_id": str(uuid.uuid4()), "env": "production",
        "occurred_at": datetime.now(UTC).isoformat(), "actor": "e2e", "host": "app-000",
        "service": "api", "state": "critical",
    }  # fmt: skip
    posted = httpx.post(f"{server.base}/api/events", json=event, headers=server.headers("writer"))
    assert posted.status_code == 201, posted.text
    first = page.locator('#topology section.env[data-env="production"] .attention a.chip').first
    expect(first).to_have_attribute("data-host", "app-000")
    box = page.locator('#topology section.env[data-env="production"] .gen-counts').first
    expect(box.locator(".gen-services")).to_have_attribute("open", "")


@pytest.mark.parametrize("width", [390, 1024, 1600])
def test_the_counted_env_fits_the_screen(screen: Browser, server: ApiServer, width: int) -> None:
    with open_page(screen, {"width": width, "height": 900}) as page:
        open_dashboard(page, server)
        page.locator(".gen-services summary").first.click()
        found = cast(dict[str, list[str]], page.evaluate(SPILLS))
        assert found["spills"] == [], "\n".join(found["spills"])
        assert found["hiddenScrollbars"] == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.locator("#topology-panel").screenshot(
            path=screenshot_dir() / f"fleet-scale-{width}.png"
        )
