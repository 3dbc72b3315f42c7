"""The dashboard's routes (``api/static/router.js``) in a real browser against a real
server on the demo ledger (plus one advisory): every route at 390, 1,024 and 1,600 px
with no page-level overflow, no request to any other host and the API's numbers on the
page; a click-through from the fleet page (host → generation → diff → package) with a
screenshot of each step and the back button walking it back; the errors of an unknown
route, host, generation and env; a copied address opened with a token in a fresh
browser; keyboard moves between panels; and a live redraw that keeps what was typed.

Screenshots go to the artifacts directory (``tests.services.browser``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api.app import STATIC
from tests.e2e.ledgers import ADVISORY
from tests.e2e.pages import api_get, open_dashboard, open_page, open_route, wait_drawn, with_token
from tests.e2e.test_layout import SPILLS, WIDTHS, viewport
from tests.services.api import ApiServer
from tests.services.browser import screenshot_dir

ENV = "production"


def route_names() -> list[str]:
    """The names of router.js's ROUTES, in its order: the walk must cover each."""
    text = (STATIC / "router.js").read_text()
    block = text[text.index("export const ROUTES = {") :]
    return re.findall(r"^\s+(\w+): \[", block[: block.index("};")], re.MULTILINE)


ROUTES = route_names()


# --- the addresses on the shared demo ledger -------------------------------------------


@pytest.fixture(name="examples", scope="module")
def examples_fixture(demo_server: ApiServer) -> dict[str, str]:
    """An address of each route, on things the demo ledger holds: a host that failed an
    activation, a generation that failed (it has a parent and failures), its diff."""
    failure = api_get(
        demo_server,
        "/api/failures",
        env=ENV,
        kind="activation_failed",
        newest_first="true",
        limit=1,
    )["items"][0]
    generation = failure["generation"]
    parent = api_get(demo_server, f"/api/generations/{generation}", env=ENV)["parent"]
    assert parent
    return {
        "fleet": "#/",
        "env": f"#/env/{ENV}",
        "host": f"#/host/{ENV}/{failure['host']}",
        "generation": f"#/generation/{ENV}/{generation}",
        "diff": f"#/diff/{ENV}/{parent}/{generation}",
        "package": f"#/package/openssl?env={ENV}",
        "advisory": f"#/advisory/{ADVISORY}?env={ENV}",
        "vulns": f"#/vulns?env={ENV}",
        "alerts": "#/alerts",
        "drift": f"#/drift?env={ENV}",
        "metrics": f"#/metrics?env={ENV}",
    }


def drawn_here(page: Page) -> str:
    """Wait for the page of the address now in the address bar; its fragment."""
    fragment = cast(str, page.evaluate("location.hash"))
    wait_drawn(page, fragment)
    return fragment


def shot(page: Page, name: str) -> None:
    page.screenshot(path=screenshot_dir() / f"routes-{name}.png", full_page=True)


def texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_text_contents()]


# --- what each page must show, from the API --------------------------------------------


def check_fleet(page: Page, server: ApiServer, _: str) -> None:
    envs = api_get(server, "/api/status")["envs"]
    expect(page.locator("#topology section.env")).to_have_count(len(envs))


def check_env(page: Page, server: ApiServer, _: str) -> None:
    summary = api_get(server, "/api/topology/summary", env=ENV, attention_limit=1000)
    attention = summary["envs"][0]["attention"]
    assert attention["total"] > 0
    assert texts(page, "#env-attention li[data-host] a[href^='#/host/']") == [
        host["host"] for host in attention["hosts"]
    ]
    generations = api_get(server, "/api/generations", env=ENV, limit=1000)["total"]
    expect(page.locator("#env-generations li.gen")).to_have_count(generations)


def check_host(page: Page, server: ApiServer, fragment: str) -> None:
    host = fragment.rsplit("/", 1)[1]
    manifest = api_get(server, f"/api/hosts/{host}/manifest", env=ENV)
    shown = page.eval_on_selector_all(
        "[data-testid=services] tbody tr",
        "rows => rows.map(r => [r.dataset.service, r.querySelector('.health').textContent])",
    )
    expected = sorted(manifest, key=lambda p: p["service"])
    # Health as a glyph and words, never colour alone.
    assert [(s, re.sub(r"^\S+ ", "", health)) for s, health in shown] == [
        (p["service"], p["health"] or "no report") for p in expected
    ]
    history = api_get(server, f"/api/hosts/{host}/history", env=ENV, limit=1)["total"]
    expect(page.locator("#host-history-panel .pager")).to_contain_text(f"of {history:,}")
    names = {(c["name"], c["version"]) for p in manifest for c in p["closure"]}
    expect(page.locator("[data-testid=closure] tbody tr")).to_have_count(len(names))


def check_generation(page: Page, server: ApiServer, fragment: str) -> None:
    number = int(fragment.rsplit("/", 1)[1])
    generation = api_get(server, f"/api/generations/{number}", env=ENV)
    expect(page.locator("#generation-manifest-panel .panel-head")).to_contain_text(
        f"{generation['placements']:,} placements"
    )
    diff = api_get(server, "/api/diff", env=ENV, a=generation["parent"], b=number)
    assert texts(
        page, "#generation-diff-panel [data-testid=diff-services] tbody td:first-child"
    ) == [s["service"] for s in diff["services"]]
    failures = api_get(server, "/api/failures", env=ENV, limit=1000)["items"]
    failures = [f for f in failures if f["generation"] == number]
    assert failures
    expect(page.locator("[data-testid=generation-failures] tbody tr")).to_have_count(len(failures))
    # No Slack collector ever ran on the demo ledger: said so, not "no alert".
    expect(page.locator("[data-testid=generation-alerts]")).to_have_text(
        "alerts: the Slack collector's state is not available"
    )
    parent = page.locator(f"#generation-panel a[href='#/generation/{ENV}/{generation['parent']}']")
    expect(parent.first).to_be_visible()


def check_diff(page: Page, server: ApiServer, fragment: str) -> None:
    a, b = (int(n) for n in fragment.split("/")[-2:])
    diff = api_get(server, "/api/diff", env=ENV, a=a, b=b)
    assert texts(page, "[data-testid=diff-services] tbody td:first-child") == [
        s["service"] for s in diff["services"]
    ]
    assert texts(page, "[data-testid=diff-closure] tbody td:first-child") == [
        c["name"] for c in diff["closure_changes"]
    ]


def check_package(page: Page, server: ApiServer, _: str) -> None:
    answer = api_get(server, "/api/where", name="openssl", env=ENV, limit=50)
    shown = page.eval_on_selector_all(
        "#page .where-summary tbody tr",
        "rows => rows.map(r => [r.dataset.env, r.dataset.version, Number(r.dataset.hosts)])",
    )
    assert shown == [[r["env"], r["version"], r["hosts"]] for r in answer["summary"]]


def check_drawn(page: Page, _: ApiServer, __: str) -> None:
    """The ops engineer's pages: drawn, without an error in place of the page."""
    expect(page.locator("#page > .panel").first).to_be_visible()
    expect(page.locator("#page .page-error")).to_have_count(0)


CHECKS: dict[str, Callable[[Page, ApiServer, str], None]] = {
    "fleet": check_fleet,
    "env": check_env,
    "host": check_host,
    "generation": check_generation,
    "diff": check_diff,
    "package": check_package,
}

# Every input of a page has a label, every table its header cells.
UNLABELLED = """() => {
  const root = document.querySelector("main:not([hidden])");
  const inputs = [...root.querySelectorAll("input, select, textarea")].filter(
    (el) => el.type !== "hidden" && el.labels.length === 0 && !el.getAttribute("aria-label"));
  const tables = [...root.querySelectorAll("table")].filter((t) => !t.querySelector("th"));
  return [...inputs.map((el) => el.outerHTML.slice(0, 80)),
          ...tables.map((t) => t.outerHTML.slice(0, 80))];
}"""


# --- the tests -------------------------------------------------------------------------


def test_the_walk_covers_every_route(examples: dict[str, str]) -> None:
    assert ROUTES
    assert sorted(examples) == sorted(ROUTES), "a route without an address in the walk"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ROUTES)
def test_every_route_at_every_width(
    screen: Browser, demo_server: ApiServer, examples: dict[str, str], name: str, width: int
) -> None:
    fragment = examples[name]
    with open_page(screen, viewport(width)) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        open_route(page, demo_server, fragment)
        assert "token" not in page.url, "the token stays out of the address bar"
        expect(page.locator("#page")).to_have_attribute(
            "data-route", "" if name == "fleet" else name
        )
        CHECKS.get(name, check_drawn)(page, demo_server, fragment)

        found = cast(dict[str, list[str]], page.evaluate(SPILLS))
        assert found["spills"] == [], "\n".join(found["spills"])
        assert found["hiddenScrollbars"] == []
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= page.evaluate("document.documentElement.clientWidth"), (
            f"the page is {page_width} px wide at {width} px"
        )
        assert page.evaluate(UNLABELLED) == []
        shot(page, f"{name}-{width}")

        origin = urlsplit(demo_server.base)[:2]
        assert requests
        assert [url for url in requests if urlsplit(url)[:2] != origin] == []


def test_click_through_host_generation_diff_package(page: Page, demo_server: ApiServer) -> None:
    """From the fleet page with real clicks, then back again with the back button."""
    open_dashboard(page, demo_server)
    shot(page, "0-fleet")

    page.locator("#failures tbody tr").first.locator("a[href^='#/host/']").click()
    host = drawn_here(page)
    assert host.startswith(f"#/host/{ENV}/")
    expect(page.locator("#host-panel h2")).to_contain_text(host.rsplit("/", 1)[1])
    shot(page, "1-host")

    # The newest generation the host runs a service of (a later one has a parent).
    links = page.locator("[data-testid=services] td.num a")
    numbers = [int(n) for n in links.all_text_contents()]
    links.nth(numbers.index(max(numbers))).click()
    generation = drawn_here(page)
    assert generation == f"#/generation/{ENV}/{max(numbers)}"
    shot(page, "2-generation")

    page.locator("[data-testid=diff-link]").click()
    diff = drawn_here(page)
    assert diff.startswith(f"#/diff/{ENV}/")
    assert diff.endswith(f"/{max(numbers)}")
    check_diff(page, demo_server, diff)
    shot(page, "3-diff")

    package_link = page.locator("[data-testid=diff-closure] tbody tr").first.locator("a").first
    name = package_link.text_content()
    package_link.click()
    package = drawn_here(page)
    assert package == f"#/package/{name}?env={ENV}"
    answer = api_get(demo_server, "/api/where", name=name, env=ENV, limit=50)
    expect(page.locator("#page .where-summary tbody tr")).to_have_count(len(answer["summary"]))
    shot(page, "4-package")

    for fragment in (diff, generation, host):
        page.go_back()
        assert page.evaluate("location.hash") == fragment
        wait_drawn(page, fragment)
    page.go_back()
    wait_drawn(page, "#/")


def test_compare_a_generation_with_any_other(page: Page, demo_server: ApiServer) -> None:
    open_route(page, demo_server, f"#/generation/{ENV}/10")
    form = page.locator("[data-testid=compare-form]")
    form.get_by_label("compare #10 with generation").fill("999")
    form.locator("button").click()
    expect(form.locator(".error")).to_contain_text('production has no generation "999"')
    assert page.evaluate("location.hash") == f"#/generation/{ENV}/10"

    form.get_by_label("compare #10 with generation").fill("4")
    form.locator("button").click()
    assert drawn_here(page) == f"#/diff/{ENV}/4/10"
    check_diff(page, demo_server, f"#/diff/{ENV}/4/10")


@pytest.mark.parametrize(
    ("fragment", "api_path"),
    [
        (f"#/host/{ENV}/no-such-host", f"/api/hosts/no-such-host/manifest?env={ENV}"),
        (f"#/generation/{ENV}/9999", f"/api/generations/9999?env={ENV}"),
        ("#/env/no-such-env", "/api/generations/tree?env=no-such-env"),
        (f"#/diff/{ENV}/1/9999", f"/api/diff?env={ENV}&a=1&b=9999"),
    ],
)
def test_an_unknown_name_says_so(
    page: Page, demo_server: ApiServer, fragment: str, api_path: str
) -> None:
    refused = httpx.get(f"{demo_server.base}{api_path}", headers=demo_server.headers("reader"))
    assert refused.status_code == 404
    page.goto(f"{demo_server.base}/{with_token(fragment, demo_server.tokens['reader'])}")
    expect(page.locator("#page")).to_have_attribute("data-drawn", fragment)
    expect(page.locator("#page")).to_have_attribute("data-state", "error")
    expect(page.locator("#page .page-error")).to_have_text(
        f"404 not found: {refused.json()['message']}"
    )


def test_an_unknown_route_says_so(page: Page, demo_server: ApiServer) -> None:
    for fragment in ("#/no-such-page", f"#/host/{ENV}", f"#/diff/{ENV}/1/2/3"):
        page.goto(f"{demo_server.base}/{with_token(fragment, demo_server.tokens['reader'])}")
        expect(page.locator("#page")).to_have_attribute("data-drawn", fragment)
        expect(page.locator("#page [role=alert]")).to_have_text(
            f'"{fragment}" is not a page of this dashboard.'
        )
        expect(page.locator("#page a[href='#/']")).to_be_visible()
    shot(page, "unknown")


def test_a_shared_address_opens_the_same_page(browser: Browser, demo_server: ApiServer) -> None:
    """An address copied from one browser opens the same page in another that has never
    seen the dashboard, with the token after the route."""
    with open_page(browser) as page:
        open_route(page, demo_server, f"#/package/openssl?env={ENV}")
        form = page.locator("#page form.where-form")
        form.locator("[name=range]").fill(">=1.0.1,<1.0.2")
        form.locator("[name=at]").fill("2026-01-12")
        form.locator("button[type=submit]").click()
        page.wait_for_function("() => location.hash.includes('range')")
        shared = drawn_here(page)
        assert shared.startswith("#/package/openssl?")
        first = page.locator("#page .where-summary").inner_text()
        caption = page.locator("#page .where-result .caption").inner_text()
    assert "at 2026-01-12T00:00:00Z" in caption

    for fragment, then in ((shared, first), (f"#/host/{ENV}/web-004", None)):
        with open_page(browser) as fresh:
            fresh.goto(f"{demo_server.base}/{with_token(fragment, demo_server.tokens['reader'])}")
            wait_drawn(fresh, fragment)
            assert "token" not in fresh.url
            assert urlsplit(fresh.url).fragment == fragment[1:]
            if then is not None:
                assert fresh.locator("#page .where-summary").inner_text() == then


def test_keys_move_between_panels_and_the_nav_says_where(
    page: Page, demo_server: ApiServer
) -> None:
    open_route(page, demo_server, f"#/host/{ENV}/web-004")
    focused = (
        "() => `${document.activeElement.closest('.panel')?.id} ${document.activeElement.tagName}`"
    )
    page.keyboard.press("]")
    assert page.evaluate(focused) == "host-panel H2"
    page.keyboard.press("]")
    assert page.evaluate(focused) == "host-closure-panel H2"
    page.keyboard.press("Alt+ArrowDown")
    assert page.evaluate(focused) == "host-history-panel H2"
    page.keyboard.press("[")
    assert page.evaluate(focused) == "host-closure-panel H2"
    # In a text field "[" is typed, not a move.
    search = page.get_by_label("search packages")
    search.focus()
    page.keyboard.type("[")
    assert search.input_value() == "["
    expect(page.locator("#nav")).to_contain_text("move between panels")
    expect(page.locator("#nav a[aria-current=page]")).to_have_count(0)

    # The fleet's panels too, and the nav marks the page shown.
    page.goto(f"{demo_server.base}/#/")
    wait_drawn(page, "#/")
    page.locator("body").focus()
    page.keyboard.press("]")
    assert page.evaluate(focused) == "topology-panel H2"
    expect(page.locator("#nav a[aria-current=page]")).to_have_text("fleet")
    page.goto(f"{demo_server.base}/#/alerts")
    expect(page.locator("#nav a[aria-current=page]")).to_have_text("alerts")


def test_a_live_redraw_keeps_the_search_typed(page: Page, writable_demo_server: ApiServer) -> None:
    """The host page follows the stream: a new health report shows without a reload,
    and the closure search keeps its text and its filter."""
    server = writable_demo_server  # a ledger of the module's own: this test appends
    host = "web-004"
    open_route(page, server, f"#/host/{ENV}/{host}")
    page.evaluate("window.e2eNotReloaded = true")
    search = page.get_by_label("search packages")
    search.fill("openssl")
    rows = page.locator("[data-testid=closure] tbody tr:not([hidden])")
    manifest = api_get(server, f"/api/hosts/{host}/manifest", env=ENV)
    versions = {c["version"] for p in manifest for c in p["closure"] if "openssl" in c["name"]}
    assert versions
    expect(rows).to_have_count(len(versions))

    service = manifest[0]["service"]
    description = f"e2e {uuid.uuid4().hex[:8]}"
    event = {
        "kind": "health_reported", "event_id": str(uuid.uuid4()), "env": ENV,
        "occurred_at": datetime.now(UTC).isoformat(), "actor": "e2e", "host": host,
        "service": service, "state": "critical", "description": description, "ttl_s": 3600,
    }  # fmt: skip
    response = httpx.post(f"{server.base}/api/events", json=event, headers=server.headers("writer"))
    assert response.status_code == 201, response.text
    row = page.locator(f"[data-testid=services] tbody tr[data-service='{service}']")
    expect(row).to_have_attribute("data-health", "critical")
    expect(row.locator(".health")).to_have_text(re.compile(r"^\S+ critical$"))
    assert search.input_value() == "openssl"
    expect(rows).to_have_count(len(versions))
    assert page.evaluate("window.e2eNotReloaded") is True
