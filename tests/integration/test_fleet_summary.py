"""The fleet's first screen counted in the database (``projections.fleet_summary``,
``GET /api/topology/summary``), checked against a brute-force reading of the raw facts.

The expected answer knows nothing of the views: it replays the stored facts' activations
and deactivations sorted by when they happened (``Auditor.intervals`` of
test_audit_truth.py), takes for each placement the health report that happened last
(its service's, else its host's) and judges it stale when ``occurred_at + ttl_s`` is
before a fixed ``now``; then groups by host (worst level, stale when every placement at
it is, newest generation), by env and by generation, in plain Python. Random streams with
late facts and random catch-up boundaries, and a demo fleet, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger, StoredFact, numbered_batches
from ledger.demo import demo_fleet
from ledger.errors import UnknownName
from ledger.events import HealthReported
from projections.fleet_summary import fleet_summary
from projections.runner import Views
from tests.examples import examples
from tests.integration.test_audit_truth import (
    BASE,
    HORIZON,
    Auditor,
    FreshLedger,
    Scenario,
    feed,
    fresh_ledger,  # noqa: F401 (the `fresh_ledger` fixture)
    scenarios,
    when,
)
from tests.services.api import ApiServer, api_server_fixture  # noqa: F401 (a fixture)
from tests.story import Story, minute

LEVELS = {"ok": 1, "warning": 2, "critical": 3}
NAMES = ("unknown", "ok", "warning", "critical")
TTLS = (None, 60.0, 300.0, 1800.0, 86_400.0)
Row = dict[str, Any]


# --- the expected answer, by brute force -------------------------------------------


def last_reports(facts: Sequence[StoredFact]) -> dict[tuple[str, str, str], Row]:
    """The health report that happened last (ties: the later position) per (env, host,
    service; "" for the host itself), whatever order it arrived in."""
    latest: dict[tuple[str, str, str], Row] = {}
    for fact in sorted(facts, key=lambda f: (when(f.event["occurred_at"]), f.position)):
        event = fact.event
        if event["kind"] == "health_reported":
            latest[event["env"], event["host"], event.get("service") or ""] = event
    return latest


def counts(items: Sequence[tuple[int, bool]]) -> Row:
    """{ok, warning, critical, unknown, stale} of (level, stale) pairs."""
    found = {name: sum(1 for level, _ in items if NAMES[level] == name) for name in NAMES}
    return {
        "ok": found["ok"], "warning": found["warning"], "critical": found["critical"],
        "unknown": found["unknown"], "stale": sum(1 for _, stale in items if stale),
    }  # fmt: skip


def expected_summary(
    facts: Sequence[StoredFact], now: datetime, attention_limit: int, tile_limit: int
) -> Row:
    reports = last_reports(facts)
    placements: dict[tuple[str, str], list[tuple[str, int, int, bool]]] = {}
    for interval in Auditor(facts).placements():
        report = reports.get((interval.env, interval.host, interval.service)) or reports.get(
            (interval.env, interval.host, "")
        )
        level, stale = 0, False
        if report is not None:
            level = LEVELS[report["state"]]
            ttl = report.get("ttl_s")
            stale = ttl is not None and when(report["occurred_at"]).timestamp() + ttl < (
                now.timestamp()
            )
        placements.setdefault((interval.env, interval.host), []).append(
            (interval.service, interval.generation, level, stale)
        )
    hosts: dict[str, list[Row]] = {}
    for (env, host), placed in placements.items():
        level = max(p[2] for p in placed)
        hosts.setdefault(env, []).append({
            "host": host, "health": NAMES[level],
            "stale": level > 0 and all(p[3] for p in placed if p[2] == level),
            "generation": max(p[1] for p in placed), "placements": len(placed),
        })  # fmt: skip
    planned = {f.event["env"] for f in facts if f.event["kind"] == "generation_planned"}
    envs = []
    for env in sorted(planned | set(hosts)):
        in_env = sorted(hosts.get(env, []), key=lambda h: h["host"])
        level_of = {h["host"]: LEVELS.get(h["health"], 0) for h in in_env}
        generations = []
        for number in sorted({h["generation"] for h in in_env}, reverse=True):
            members = [h for h in in_env if h["generation"] == number]
            names = {h["host"] for h in members}
            services = []
            for service in sorted({p[0] for (e, host), placed in placements.items()
                                   if e == env and host in names for p in placed}):  # fmt: skip
                of_service = [
                    (host, p) for (e, host), placed in placements.items()
                    if e == env and host in names for p in placed if p[0] == service
                ]  # fmt: skip
                services.append({
                    "service": service, "hosts": len({host for host, _ in of_service}),
                    "placements": len(of_service),
                    "health": counts([(p[2], p[3]) for _, p in of_service]),
                })  # fmt: skip
            generations.append({
                "generation": number, "hosts": len(members),
                "placements": sum(h["placements"] for h in members),
                "health": counts([(level_of[h["host"]], h["stale"]) for h in members]),
                "services": services,
            })  # fmt: skip
        attention = sorted(
            (h for h in in_env if h["health"] in ("warning", "critical")),
            key=lambda h: (-LEVELS[h["health"]], h["host"]),
        )
        envs.append({
            "env": env, "hosts": len(in_env), "placements": sum(h["placements"] for h in in_env),
            "health": counts([(level_of[h["host"]], h["stale"]) for h in in_env]),
            "generations": generations,
            "attention": {"total": len(attention), "hosts": attention[:attention_limit]},
            "tiles": in_env if len(in_env) <= tile_limit else None,
        })  # fmt: skip
    return {"tile_limit": tile_limit, "attention_limit": attention_limit, "envs": envs}


def summary_of(
    views: Views, now: datetime, attention_limit: int, tile_limit: int, env: str | None = None
) -> Row:
    answer = fleet_summary(
        views, env, now=now, attention_limit=attention_limit, tile_limit=tile_limit
    )
    assert when(answer.pop("now")) == now
    return answer


# --- random late streams -------------------------------------------------------------


@st.composite
def fleet_streams(draw: st.DrawFn) -> tuple[Scenario, datetime, int, int]:
    """test_audit_truth's random late streams, with health reports that expire (random
    ttls), a ``now`` that makes some stale, and small limits so that lists are cut and
    some envs are tiled and others counted."""
    scenario = draw(scenarios())
    ttls = draw(st.lists(st.sampled_from(TTLS), min_size=1, max_size=6))
    events = [
        event.model_copy(update={"ttl_s": ttls[i % len(ttls)]})
        if isinstance(event, HealthReported)
        else event
        for i, event in enumerate(scenario.events)
    ]
    # Half a minute past a whole minute: never exactly when a report (at a whole minute,
    # with a ttl of whole minutes) expires.
    now = BASE + timedelta(minutes=draw(st.integers(0, HORIZON + 60)), seconds=30)
    return replace(scenario, events=events), now, draw(st.integers(0, 3)), draw(st.integers(1, 3))


@pytest.mark.timeout(900)
@settings(
    max_examples=examples(10),
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=fleet_streams())
def test_the_summary_agrees_with_the_facts(
    fresh_ledger: FreshLedger,  # noqa: F811
    stream: tuple[Scenario, datetime, int, int],
) -> None:
    scenario, now, attention_limit, tile_limit = stream

    def probe(start: int) -> None:
        facts = list(ledger.facts())
        assert summary_of(views, now, attention_limit, tile_limit) == expected_summary(
            facts, now, attention_limit, tile_limit
        ), f"after {start} facts"

    with fresh_ledger() as ledger:
        views = Views(ledger, batch=scenario.read_batch, commit_events=scenario.read_batch * 2)
        try:
            feed(ledger, views, scenario, probe)
            facts = list(ledger.facts())
            expected = expected_summary(facts, now, attention_limit, tile_limit)
            assert summary_of(views, now, attention_limit, tile_limit) == expected
            for env in expected["envs"]:
                assert summary_of(views, now, attention_limit, tile_limit, env["env"]) == {
                    **expected, "envs": [env]
                }  # fmt: skip
            views.rebuild()
            assert summary_of(views, now, attention_limit, tile_limit) == expected, "rebuilt"
        finally:
            views.recorder.datastore.close()


# --- the demo fleet and worked examples -----------------------------------------------


def test_the_demo_fleet_agrees_with_the_facts(ledger: Ledger) -> None:
    """A smaller demo fleet (60 hosts; 6 in staging): generations, rollbacks, failed
    activations and health reports, judged at its end and a day and a month later."""
    for batch in numbered_batches(demo_fleet(hosts=60, services=12), 2000):
        ledger.append([event for _, event in batch], source="demo")
    views = Views(ledger)
    try:
        views.catch_up()
        facts = list(ledger.facts())
        last = max(when(f.event["occurred_at"]) for f in facts)
        for now in (last + timedelta(seconds=1), last + timedelta(days=1),
                    last + timedelta(days=30)):  # fmt: skip
            for attention_limit, tile_limit in ((16, 500), (3, 10)):
                expected = expected_summary(facts, now, attention_limit, tile_limit)
                assert summary_of(views, now, attention_limit, tile_limit) == expected, now
        assert {e["env"] for e in expected["envs"]} == {"production", "staging"}
        assert all(e["hosts"] and len(e["generations"]) > 0 for e in expected["envs"])
    finally:
        views.recorder.datastore.close()


def worked_example() -> Story:
    """h1: api critical (fresh) and web critical (stale): critical, fresh. h2: api
    critical (stale), web ok (fresh): critical, stale. h3: no report: unknown. h4: only
    its host report, warning: warning. Generations: h1 on 2 (api) and 1 (web): 2."""
    s = Story()
    api = s.build("api", "1.0")
    web = s.build("web", "1.0")
    hosts = ("h1", "h2", "h3", "h4")
    s.plan(1, {(h, svc): b for h in hosts for svc, b in (("api", api), ("web", web))})
    for host in hosts:
        s.activate(host, "api", api, 1)
        s.activate(host, "web", web, 1)
    api2 = s.build("api", "1.1")
    s.plan(2, {("h1", "api"): api2})
    s.activate("h1", "api", api2, 2)
    s.add("health_reported", host="h1", service="api", state="critical", ttl_s=3600)
    s.add("health_reported", host="h1", service="web", state="critical", ttl_s=60)
    s.add("health_reported", host="h2", service="api", state="critical", ttl_s=60)
    s.add("health_reported", host="h2", service="web", state="ok", ttl_s=3600)
    s.add("health_reported", host="h4", service=None, state="warning", ttl_s=None)
    return s


def test_the_worst_placement_decides_and_staleness_needs_all_of_it(ledger: Ledger) -> None:
    worked_example().record(ledger)
    views = Views(ledger)
    try:
        views.catch_up()
        answer = summary_of(views, minute(40), attention_limit=1, tile_limit=10)
    finally:
        views.recorder.datastore.close()
    [env] = answer["envs"]
    tiles = {t["host"]: (t["health"], t["stale"], t["generation"]) for t in env["tiles"]}
    assert tiles == {"h1": ("critical", False, 2), "h2": ("critical", True, 1),
                     "h3": ("unknown", False, 1), "h4": ("warning", False, 1)}  # fmt: skip
    assert (env["hosts"], env["placements"]) == (4, 8)
    assert env["health"] == {"ok": 0, "warning": 1, "critical": 2, "unknown": 1, "stale": 1}
    assert env["attention"]["total"] == 3
    assert [h["host"] for h in env["attention"]["hosts"]] == ["h1"]
    assert [(g["generation"], g["hosts"], g["placements"]) for g in env["generations"]] == [
        (2, 1, 2), (1, 3, 6)
    ]  # fmt: skip
    gen1 = env["generations"][1]
    assert [(s["service"], s["hosts"], s["health"]["critical"], s["health"]["stale"])
            for s in gen1["services"]] == [("api", 3, 1, 1), ("web", 3, 0, 0)]  # fmt: skip


def test_an_unknown_env_is_refused(ledger: Ledger) -> None:
    worked_example().record(ledger)
    views = Views(ledger)
    try:
        views.catch_up()
        with pytest.raises(UnknownName, match="prod"):
            fleet_summary(views, "prod")
    finally:
        views.recorder.datastore.close()


# --- the HTTP route --------------------------------------------------------------------


def get(server: ApiServer, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.base}/api/topology/summary", params=params, headers=server.headers("reader")
    )


def test_the_route_answers_and_refuses(ledger: Ledger, api_server: ApiServer) -> None:
    worked_example().record(ledger)
    api_server.views.catch_up()
    answer = get(api_server, env="production", attention_limit=2)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    now = when(body["now"])
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)
    assert {k: v for k, v in body.items() if k != "now"} == summary_of(
        api_server.views, now, 2, body["tile_limit"]
    )
    assert [h["host"] for h in body["envs"][0]["attention"]["hosts"]] == ["h1", "h2"]
    unknown = get(api_server, env="prod")
    assert unknown.status_code == 404
    assert "'prod' is not in the ledger" in unknown.json()["message"]
    for bad in ("-1", "x", "1.0", "1001"):
        refused = get(api_server, attention_limit=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["message"].startswith("attention_limit"), refused.text
    anonymous = httpx.get(f"{api_server.base}/api/topology/summary")
    assert anonymous.status_code == 401
    schema = httpx.get(f"{api_server.base}/openapi.json").json()
    route = schema["paths"]["/api/topology/summary"]["get"]
    assert route["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FleetSummary"
    }
