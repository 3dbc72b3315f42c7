"""The pictures over time (``api/static/charts.js``) in a real browser against a real server
on the demo ledger (plus one advisory): each chart drawn into a test panel through the
module itself, at 390 and 1,600 px; the numbers it draws (the ``data-*`` of its bands and
bars, and its "as a table" rows) equal the API's answer; nothing sticks out of its panel;
every request stays on the server. A screenshot of each goes to the artifacts directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from ledger.application import Ledger
from ledger.store import locate
from tests.e2e.ledgers import ADVISORY
from tests.e2e.pages import api_get, open_page, open_route
from tests.services.api import ApiServer, serve
from tests.services.browser import screenshot_dir
from tests.story import api_upgrade, minute

WIDTHS = [390, 1600]
MAX_ROWS = 400  # charts.js: moments drawn and tabled at most

# A wide panel at the top of the dashboard, the chart drawn into an empty <div> in it as a
# page would; answers what the browser drew, or the refusal's status and message.
DRAW = """async ({fn, options}) => {
  const m = await import('./charts.js');
  document.getElementById('chart-test-panel')?.remove();
  const panel = document.createElement('section');
  panel.className = 'panel wide';
  panel.id = 'chart-test-panel';
  const box = document.createElement('div');
  box.id = 'chart-test';
  panel.append(box);
  const main = document.getElementById('dashboard');
  main.insertBefore(panel, main.firstChild);
  try {
    await m[fn](box, options);
  } catch (error) {
    return {error: error.name, status: error.status, message: error.message};
  }
  const data = (el) => Object.fromEntries([...el.attributes]
    .filter(a => a.name.startsWith('data-')).map(a => [a.name.slice(5), a.value]));
  const edge = panel.getBoundingClientRect();
  const outside = [...panel.querySelectorAll('*')].filter(el => {
    for (let up = el.parentElement; up && up !== panel; up = up.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(up).overflowX)) return false;
    }
    const r = el.getBoundingClientRect();
    return (r.width || r.height) && (r.left < edge.left - 1 || r.right > edge.right + 1);
  }).map(el => el.tagName);
  return {
    caption: box.querySelector('figcaption').textContent,
    svgs: [...box.querySelectorAll('svg.chart-svg')].map(s => s.getAttribute('aria-label')),
    tops: [...box.querySelectorAll('svg.chart-svg')].map(s => Number(s.getAttribute('data-y-top'))),
    bands: [...box.querySelectorAll('svg.chart-svg path.band')].map(data),
    lines: [...box.querySelectorAll('svg.chart-svg path.line')].map(data),
    bars: [...box.querySelectorAll('rect.bar')].map(data),
    series: JSON.parse(box.querySelector('table')?.dataset.series || 'null'),
    rows: [...box.querySelectorAll('details.chart-table tbody tr')].map(data),
    cells: [...box.querySelectorAll('details.chart-table tbody tr')].map(
      tr => [...tr.children].map(c => c.textContent)),
    legend: [...box.querySelectorAll('.chart-legend li')].map(li => li.textContent),
    note: box.querySelector('.chart-note')?.textContent || '',
    links: [...box.querySelectorAll('a')].map(a => a.getAttribute('href')),
    outside,
    overflow: panel.scrollWidth > panel.clientWidth + 1
      || document.documentElement.scrollWidth > document.documentElement.clientWidth + 1,
  };
}"""


def draw(page: Page, fn: str, **options: Any) -> dict[str, Any]:
    drawn: dict[str, Any] = page.evaluate(DRAW, {"fn": fn, "options": options})
    return drawn


def stepped(changes: list[dict[str, Any]], key: Any) -> tuple[list[str], dict[Any, list[int]]]:
    """The API's changes as the chart must draw them: per moment, each series' value
    (the last change at or before it; 0 before its first)."""
    moments = sorted({c["at"] for c in changes})
    values: dict[Any, list[int]] = {}
    for c in changes:
        values.setdefault(key(c), [])
    for moment in moments:
        for k, row in values.items():
            now = [c["hosts"] for c in changes if c["at"] == moment and key(c) == k]
            row.append(now[-1] if now else (row[-1] if row else 0))
    return moments, values


def to_ms(iso: str) -> str:
    """An ISO time to the millisecond, as the browser's Date keeps it."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.isoformat(timespec="milliseconds")


def check_stacked(drawn: dict[str, Any], changes: list[dict[str, Any]], key: Any) -> None:
    """The table holds the step function's values at every change, or (past the chart's
    400 rows) at the last change of each UTC grain; the bands end at the last counts."""
    moments, values = stepped(changes, key)
    series = drawn["series"]
    assert sorted(series) == sorted(values)
    at = {to_ms(m): i for i, m in enumerate(moments)}
    shown = [at[to_ms(row["at"])] for row in drawn["rows"]]  # each a moment of a change
    assert shown == sorted(set(shown))
    assert shown[-1] == len(moments) - 1, "the last change is shown"
    if len(moments) <= MAX_ROWS:
        assert shown == list(range(len(moments)))
    else:
        assert len(shown) <= MAX_ROWS
        assert "Drawn and tabled at the last change of each UTC" in drawn["note"]
    for k, name in enumerate(series):
        assert [int(r[f"s{k}"]) for r in drawn["rows"]] == [values[name][i] for i in shown], name
    # The bands: one per series, in the table's order, ending at its last count.
    assert [(b["series"], int(b["last"])) for b in drawn["bands"]] == [
        (name, values[name][-1]) for name in series
    ]


def fits(drawn: dict[str, Any]) -> None:
    assert "error" not in drawn, drawn
    assert not drawn["outside"], drawn["outside"]
    assert not drawn["overflow"]
    assert drawn["svgs"]
    assert all(drawn["svgs"])  # role=img with a summary


def shot(page: Page, name: str, width: int) -> None:
    path = screenshot_dir() / f"chart-{name}-{width}.png"
    page.locator("#chart-test-panel").screenshot(path=path)


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def chart_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    with open_page(browser, {"width": request.param, "height": 900}) as page:
        yield page


def test_versions_over_time(chart_page: Page, demo_server: ApiServer) -> None:
    open_route(chart_page, demo_server)
    answer = api_get(demo_server, "/api/where/timeline", name="openssl", env="production")
    drawn = draw(chart_page, "renderVersionsOverTime", name="openssl", env="production")
    fits(drawn)
    check_stacked(drawn, answer["changes"], lambda c: f"{c['env']}\u0000{c['version']}")
    gone = [v for v in answer["versions"] if v["last_run"] and not v["hosts_now"]]
    expected = "; ".join(
        f"openssl {v['version']} gone from production on {v['last_run'][:10]}" for v in gone
    )
    assert drawn["caption"] == (expected or "openssl: every version that ran still runs")
    assert all(link.startswith("#/package/openssl") for link in drawn["links"])
    shot(chart_page, "versions", chart_page.viewport_size["width"])  # type: ignore[index]


@pytest.fixture(scope="module")
def story_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """api 1.0 (openssl 1.0.1p) on h1 and h2, replaced by 1.1 (openssl 1.0.2d)."""
    path = tmp_path_factory.mktemp("story") / "ledger.db"
    ledger = Ledger(locate(str(path)), create=True)
    api_upgrade().record(ledger)
    ledger.close()
    yield from serve(str(path))


def test_a_version_gone_is_named_with_its_last_day(page: Page, story_server: ApiServer) -> None:
    """The issue's caption: "openssl 1.0.1p gone from production on …"."""
    open_route(page, story_server)
    drawn = draw(page, "renderVersionsOverTime", name="openssl")
    fits(drawn)
    assert drawn["caption"] == f"openssl 1.0.1p gone from production on {minute(18):%Y-%m-%d}"
    answer = api_get(story_server, "/api/where/timeline", name="openssl")
    check_stacked(drawn, answer["changes"], lambda c: f"{c['env']}\u0000{c['version']}")
    assert drawn["legend"] == ["1.0.1p (production)", "1.0.2d (production)"]


def test_exposure_over_time(chart_page: Page, demo_server: ApiServer) -> None:
    open_route(chart_page, demo_server)
    answer = api_get(demo_server, "/api/exposure/timeline", id=ADVISORY)
    assert answer["changes"], "the advisory covers the demo's older openssl"
    drawn = draw(chart_page, "renderExposureOverTime", id=ADVISORY)
    fits(drawn)
    check_stacked(drawn, answer["changes"], lambda c: c["env"])
    shot(chart_page, "exposure", chart_page.viewport_size["width"])  # type: ignore[index]


def changing_in_raw_events(path: Path, env: str, number: int) -> int:
    """The placements generation ``number`` of ``env`` changes, read from the stored
    generation_planned events themselves (not the views): its manifest's (host, service)
    pairs whose build its parent's manifest does not give them (the first entry of a pair
    listed twice counts)."""
    ledger = Ledger(locate(str(path)))
    try:
        manifests: dict[int, dict[tuple[str, str], str]] = {}
        parents: dict[int, int | None] = {}
        for fact in ledger.facts():
            e = fact.event
            if e["kind"] == "generation_planned" and e["env"] == env:
                manifest: dict[tuple[str, str], str] = {}
                for entry in e["manifest"]:
                    manifest.setdefault((entry["host"], entry["service"]), entry["build_id"])
                manifests[e["number"]] = manifest
                parents[e["number"]] = e.get("parent")
    finally:
        ledger.close()
    parent = parents[number]
    before = manifests.get(parent, {}) if parent is not None else {}
    return sum(before.get(pair) != build for pair, build in manifests[number].items())


ROLLOUT_TABLED = ("planned", "changing", "activated", "failed", "drained")
ROLLOUT_DRAWN = ("changing", "activated", "failed", "drained")


def check_rollout(drawn: dict[str, Any], answer: dict[str, Any], env: str, number: int) -> None:
    """The table holds every measure at each (kept) step, the lines end at the last counts
    of all but planned, the caption counts changes, the scale is what changes (or more)."""
    steps = {s["at"]: s for s in answer["steps"]}
    assert [{m: int(r[m]) for m in ROLLOUT_TABLED} for r in drawn["rows"]] == [
        {m: steps[r["at"]][m] for m in ROLLOUT_TABLED} for r in drawn["rows"]
    ]
    assert drawn["rows"][-1]["at"] == answer["steps"][-1]["at"]
    if len(answer["steps"]) <= MAX_ROWS:
        assert [r["at"] for r in drawn["rows"]] == [s["at"] for s in answer["steps"]]
    else:
        assert len(drawn["rows"]) <= MAX_ROWS
        assert "Drawn and tabled at the last change of each UTC" in drawn["note"]
    last = answer["steps"][-1]
    assert [(line["series"], int(line["last"])) for line in drawn["lines"]] == [
        (m, last[m]) for m in ROLLOUT_DRAWN
    ], "the manifest's size is not drawn"
    assert drawn["legend"] == list(ROLLOUT_DRAWN)
    assert drawn["caption"] == (
        f"generation {number} ({env}, {answer['status']}): {last['activated']:,} of "
        f"{answer['changing']:,} changes activated, {last['failed']:,} failed, "
        f"{last['drained']:,} drained (manifest: {answer['placements']:,} placements)"
    )
    # The y-axis: the nice round number at or above the largest of what changes and what
    # was done (at most twice it: 1, 2, 2.5, 5 or 10 times a power of ten).
    most = max(1, answer["changing"], *(last[m] for m in ROLLOUT_DRAWN))
    assert most <= drawn["tops"][0] <= 2 * most, (drawn["tops"], most)
    assert f"#/generation/{env}/{number}" in drawn["links"]


def test_rollout(chart_page: Page, demo_server: ApiServer) -> None:
    """A generation whose activation failed, and the first one of production: every
    placement of the fleet activated, thousands of changes (drawn thinned)."""
    open_route(chart_page, demo_server)
    failed = api_get(demo_server, "/api/failures", kind="activation_failed", limit=1)["items"]
    assert failed, "the demo has failed activations"
    width = chart_page.viewport_size["width"]  # type: ignore[index]
    for name, env, number in [
        ("rollout-failed", failed[0]["env"], failed[0]["generation"]),
        ("rollout", "production", 1),
    ]:
        answer = api_get(demo_server, f"/api/generations/{number}/rollout", env=env)
        drawn = draw(chart_page, "renderRollout", env=env, number=number)
        fits(drawn)
        check_rollout(drawn, answer, env, number)
        shot(chart_page, name, width)
    assert answer["steps"][-1]["activated"] == answer["placements"], "production 1 completed"
    assert answer["changing"] == answer["placements"], "the first generation changes all"
    assert len(answer["steps"]) > MAX_ROWS


def test_a_rollout_is_measured_against_what_it_changes(
    chart_page: Page, demo_server: ApiServer, demo_ledger: Path
) -> None:
    """Production's generation 25 changes a few dozen of its 1,368 placements (its parent's
    manifest read from the raw events): the caption counts those, and the scale fits them
    rather than the whole manifest."""
    open_route(chart_page, demo_server)
    changing = changing_in_raw_events(demo_ledger, "production", 25)
    answer = api_get(demo_server, "/api/generations/25/rollout", env="production")
    assert answer["changing"] == changing
    assert 0 < changing < answer["placements"] // 2, "the demo's gen 25 changes a few"
    last = answer["steps"][-1]
    assert last["activated"] == changing, "a completed rollout activated every change"
    drawn = draw(chart_page, "renderRollout", env="production", number=25)
    fits(drawn)
    check_rollout(drawn, answer, "production", 25)
    assert drawn["caption"].endswith(
        f": {changing:,} of {changing:,} changes activated, {last['failed']} failed, "
        f"{last['drained']} drained (manifest: {answer['placements']:,} placements)"
    )
    assert drawn["tops"][0] < answer["placements"], "scaled to the changes, not the manifest"
    shot(chart_page, "rollout-changes", chart_page.viewport_size["width"])  # type: ignore[index]


def test_dora_over_time(chart_page: Page, demo_server: ApiServer) -> None:
    open_route(chart_page, demo_server)
    answer = api_get(demo_server, "/api/metrics/timeline", env="production", bucket="week")
    drawn = draw(chart_page, "renderDoraOverTime", env="production")
    fits(drawn)
    fields = ("deployments", "lead_time_hours", "change_failure_rate", "time_to_restore_hours")
    assert len(drawn["svgs"]) == len(fields)
    bars = {(b["field"], b["start"]): float(b["value"]) for b in drawn["bars"]}
    assert bars == {
        (f, b["start"]): float(b[f]) for b in answer["buckets"] for f in fields if b[f] is not None
    }
    assert [r["start"] for r in drawn["rows"]] == [b["start"] for b in answer["buckets"]]
    for row, bucket in zip(drawn["rows"], answer["buckets"], strict=True):
        for f in fields:
            assert row[f] == ("" if bucket[f] is None else str(bucket[f]).removesuffix(".0")), f
    shot(chart_page, "dora", chart_page.viewport_size["width"])  # type: ignore[index]


def test_a_refused_request_is_an_api_error(page: Page, demo_server: ApiServer) -> None:
    open_route(page, demo_server)
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("renderRollout", {"env": "production", "number": 99_999}, 404),
        ("renderVersionsOverTime", {"name": "no-such-package"}, 404),
        ("renderDoraOverTime", {"env": "production", "service": "no-such-service"}, 404),
        ("renderExposureOverTime", {"id": "CVE-0000-0000"}, 404),
        ("renderDoraOverTime", {"env": "production", "bucket": "year"}, 422),
    ]
    for fn, options, status in cases:
        drawn = draw(page, fn, **options)
        assert drawn.get("error") == "ApiError", (fn, drawn)
        assert drawn["status"] == status, (fn, drawn)


def test_every_chart_request_goes_to_the_server(page: Page, demo_server: ApiServer) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_route(page, demo_server)
    draw(page, "renderVersionsOverTime", name="openssl")
    draw(page, "renderExposureOverTime", id=ADVISORY)
    draw(page, "renderRollout", env="production", number=3)
    draw(page, "renderDoraOverTime", env="staging", bucket="day")
    paths = {urlsplit(url).path for url in requests}
    assert {"/charts.js", "/charts/svg.js", "/api/where/timeline", "/api/exposure/timeline",
            "/api/generations/3/rollout", "/api/metrics/timeline"} <= paths  # fmt: skip
    origin = urlsplit(demo_server.base)
    assert all(urlsplit(url)[:2] == origin[:2] for url in requests)
