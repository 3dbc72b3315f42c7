"""The data of the dashboard's pictures over time, checked against an auditor's own reading
of the raw stream, whatever order the facts reached the ledger in, on both backends:

* ``projections.rollout`` (``GET /api/generations/{n}/rollout``): per generation, the
  placements planned, changing (build not the parent manifest's), activated, failed and
  drained at every moment;
* ``projections.metrics_timeline`` (``GET /api/metrics/timeline``): the DORA figures per
  UTC day, ISO week and month;
* ``projections.exposure_timeline`` (``GET /api/exposure/timeline``): hosts exposed to an
  advisory over time, against test_exposure_truth.py's auditor at every change.

The auditors here import nothing of the views: they sort the stored facts by when they
happened (ties: position) and count, the slow and obvious way. The HTTP routes are checked
for their answers, their 404s and 422s.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger, StoredFact
from ledger.errors import InvalidInput, UnknownName
from ledger.events import Envelope
from projections.exposure_timeline import exposure_over_time
from projections.metrics import metrics
from projections.metrics_timeline import metrics_over_time
from projections.rollout import rollout
from projections.runner import Views
from tests.examples import examples
from tests.factories import make_event
from tests.integration import test_exposure_truth as exposure_truth
from tests.integration.test_audit_truth import (
    Auditor,
    FreshLedger,
    bid,
    feed,
    fresh_ledger,  # noqa: F401 (the fixture, on both backends)
    stamp,
    when,
)
from tests.services.api import ApiServer, serve
from tests.story import api_upgrade, minute

BASE = datetime(2025, 3, 10, 8, tzinfo=UTC)  # a Monday, 08:00 UTC
SPAN_HOURS = 24 * 45  # facts happen within this many hours: days, weeks and months
ENVS = ("production", "staging")
HOSTS = ("app-01", "app-02", "app-03")
SERVICES = ("api", "web")
DELAYS = (0, 0, 1, 5, 30, 24 * 3)  # hours between happening and being sent
HOUR = 3_600 * 1_000_000
MEASURES = ("planned", "changing", "activated", "failed", "drained")


def hours(n: float) -> datetime:
    return BASE + timedelta(hours=n)


# --- random streams: builds, generations (rollbacks too), activations, drains ----------


@dataclass(frozen=True)
class Scenario:
    events: list[Envelope]
    chunks: list[int]
    catch_ups: list[bool]
    probes: list[bool]
    read_batch: int

    def __repr__(self) -> str:
        lines = []
        for e in self.events:
            d = e.model_dump(mode="json")
            what = {k: v for k, v in d.items() if k in ("number", "parent", "target", "reason",
                    "host", "service", "build_id", "generation")}  # fmt: skip
            lines.append(f"  {d['occurred_at']} rec {d['recorded_at']} {d['kind']} {what}")
        return "Scenario(\n" + "\n".join(lines) + f"\n chunks={self.chunks})"


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A stream in arrival order: each fact sent some hours after it happened, except that
    a generation's plan is sent after the plan before it (numbers are sequential) and its
    outcome after its plan."""
    happenings: list[tuple[str, float, float, dict[str, Any]]] = []  # kind, hour, sent, fields
    builds = {bid(f"b{i}"): draw(st.sampled_from(SERVICES)) for i in range(draw(st.integers(2, 4)))}
    for build, service in builds.items():
        at = draw(st.integers(0, SPAN_HOURS))
        happenings.append(("build_recorded", at, at + draw(st.sampled_from(DELAYS)), {
            "env": draw(st.sampled_from(ENVS)), "build_id": build, "service": service,
            "version": build[:2], "artifact": f"/nix/store/{build}-{service}", "closure": [],
        }))  # fmt: skip
    planned = {env: draw(st.integers(0, 5)) for env in ENVS}
    for env, count in planned.items():
        sent = -1.0
        for number in range(1, count + 1):
            at = draw(st.integers(0, SPAN_HOURS))
            sent = max(at + draw(st.sampled_from(DELAYS)), sent + 0.01)
            pairs = draw(st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(SERVICES)),
                                  min_size=1, max_size=5))  # fmt: skip
            manifest = [{"host": h, "service": s, "build_id": draw(st.sampled_from(list(builds))),
                         "depends_on": []} for h, s in pairs]  # fmt: skip
            rollback = number > 1 and draw(st.booleans())
            fields: dict[str, Any] = {
                "env": env, "number": number, "parent": number - 1 if number > 1 else None,
                "reason": "rollback" if rollback else "deploy", "manifest": manifest, "tags": [],
            }  # fmt: skip
            if rollback:
                fields["target"] = draw(st.one_of(st.none(), st.integers(1, number - 1)))
            happenings.append(("generation_planned", at, sent, fields))
            outcome = draw(st.sampled_from((None, "generation_completed", "generation_failed")))
            if outcome:
                end = at + draw(st.integers(0, 72))
                finish = {"env": env, "number": number}
                if outcome == "generation_failed":
                    finish["reason"] = "hosts failed"
                happenings.append((outcome, end, max(end, sent) + 0.005, finish))
    key, at = (ENVS[0], HOSTS[0], SERVICES[0]), 0
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(("activation_completed",) * 3 + ("activation_failed",
                    "drain_completed", "deactivated")))  # fmt: skip
        echo = draw(st.sampled_from(("new", "same key", "same moment")))
        if echo == "new":
            key = (draw(st.sampled_from(ENVS)), draw(st.sampled_from(HOSTS)),
                   draw(st.sampled_from(SERVICES)))  # fmt: skip
        if echo != "same moment":
            at = draw(st.integers(0, SPAN_HOURS))
        fields = dict(zip(("env", "host", "service"), key, strict=True))
        fields["build_id"] = draw(st.sampled_from(list(builds)))
        if kind in ("activation_completed", "activation_failed"):
            fields["generation"] = draw(st.integers(1, planned[key[0]] + 1))
        if kind == "activation_failed":
            fields["reason"] = "health check failed"
        happenings.append((kind, at, at + draw(st.sampled_from(DELAYS)), fields))
    events: list[Envelope] = []
    recorded: list[datetime] = []
    for kind, happened, sent, fields in sorted(happenings, key=lambda h: h[2]):
        moment = hours(sent)
        recorded.append(max(moment, recorded[-1] + timedelta(seconds=1)) if recorded else moment)
        events.append(make_event(
            kind, event_id=str(uuid.UUID(int=len(events) + 1)), occurred_at=stamp(hours(happened)),
            recorded_at=stamp(recorded[-1]), actor="deploy-bot", **fields,
        ))  # fmt: skip
    return Scenario(
        events,
        chunks=draw(st.lists(st.integers(1, 5), max_size=30)),
        catch_ups=draw(st.lists(st.booleans(), max_size=30)),
        probes=draw(st.lists(st.booleans(), max_size=30)),
        read_batch=draw(st.integers(1, 6)),
    )


# --- the auditor -----------------------------------------------------------------------


@dataclass
class Gen:
    env: str
    number: int
    planned_at: datetime
    parent: int | None
    manifest: dict[tuple[str, str], str]
    status: str = "planned"
    finished_at: datetime | None = None
    rolled_back_by: int | None = None


class ChartAuditor:
    """Rollouts and DORA figures read from the facts by hand."""

    def __init__(self, facts: list[StoredFact]) -> None:
        self.facts = sorted(facts, key=lambda f: f.position)
        self.by_time = sorted(self.facts, key=lambda f: (when(f.event["occurred_at"]), f.position))
        self.gens: dict[tuple[str, int], Gen] = {}
        for fact in self.facts:  # in ledger order, as a rollback marks what it undoes
            e = fact.event
            if e["kind"] == "generation_planned":
                manifest: dict[tuple[str, str], str] = {}
                for entry in e["manifest"]:
                    manifest.setdefault((entry["host"], entry["service"]), entry["build_id"])
                self.gens[e["env"], e["number"]] = Gen(
                    e["env"], e["number"], when(e["occurred_at"]), e.get("parent"), manifest
                )
                if e["reason"] == "rollback" and e.get("parent") is not None:
                    self.undo(e["env"], e["parent"], e.get("target"), e["number"])
            elif e["kind"] in ("generation_completed", "generation_failed"):
                gen = self.gens.get((e["env"], e["number"]))
                if gen is not None:
                    gen.status = "completed" if e["kind"] == "generation_completed" else "failed"
                    gen.finished_at = when(e["occurred_at"])

    def ancestry(self, env: str, number: int | None) -> list[int]:
        line: list[int] = []
        while number is not None and (env, number) in self.gens and number not in line:
            line.append(number)
            number = self.gens[env, number].parent
        return line

    def undo(self, env: str, parent: int, target: int | None, rollback: int) -> None:
        """A rollback undoes its parent and the parent's ancestors down to (excluding) the
        first one on the target's own line (the target's parent when none is named)."""
        if target is None:
            target = self.gens[env, parent].parent if (env, parent) in self.gens else None
        kept = set(self.ancestry(env, target))
        for number in self.ancestry(env, parent):
            if number in kept:
                break
            if self.gens[env, number].rolled_back_by is None:
                self.gens[env, number].rolled_back_by = rollback

    # -- rollout --

    def rollout(self, env: str, number: int) -> list[dict[str, Any]]:
        gen = self.gens[env, number]
        later = [g.planned_at for (e, n), g in self.gens.items() if e == env and n > number]
        until = min(later, default=None)
        facts: dict[str, list[tuple[datetime, tuple[str, str]]]] = defaultdict(list)
        facts["planned"] = [(gen.planned_at, pair) for pair in gen.manifest]
        facts["changing"] = [(gen.planned_at, pair) for pair in self.changing(gen)]
        for fact in self.by_time:
            e = fact.event
            if e["env"] != env:
                continue
            pair, moment = (str(e.get("host")), str(e.get("service"))), when(e["occurred_at"])
            if e["kind"] == "activation_completed" and e["generation"] == number:
                facts["activated"].append((moment, pair))
            elif e["kind"] == "activation_failed" and e["generation"] == number:
                facts["failed"].append((moment, pair))
            elif (
                e["kind"] == "drain_completed"
                and pair in gen.manifest
                and e["build_id"] != gen.manifest[pair]
                and gen.planned_at <= moment
                and (until is None or moment < until)
            ):
                facts["drained"].append((moment, pair))
        moments = sorted({m for items in facts.values() for m, _ in items})
        steps: list[dict[str, Any]] = []
        for moment in moments:
            counts = {m: len({p for t, p in facts[m] if t <= moment}) for m in MEASURES}
            if not steps or any(steps[-1][m] != counts[m] for m in MEASURES):
                steps.append({"at": moment, **counts})
        return steps

    def changing(self, gen: Gen) -> list[tuple[str, str]]:
        """The pairs of the generation's planned manifest whose build its parent's planned
        manifest does not give them (all of them with no parent, or one never planned)."""
        parent = self.gens.get((gen.env, gen.parent)) if gen.parent is not None else None
        before = parent.manifest if parent is not None else {}
        return [pair for pair, build in gen.manifest.items() if before.get(pair) != build]

    # -- DORA --

    def service_known(self, env: str | None, service: str) -> bool:
        return any(
            f.event["kind"] in ("build_recorded", "activation_completed")
            and f.event["service"] == service
            and (env is None or f.event["env"] == env)
            for f in self.facts
        )

    def dora(self, env: str | None, service: str | None, bucket: str) -> dict[date, dict[str, Any]]:
        def fits(e: dict[str, Any]) -> bool:
            return (env is None or e["env"] == env) and (service is None or e["service"] == service)

        built: dict[str, datetime] = {}
        for fact in self.facts:
            if fact.event["kind"] == "build_recorded":
                built.setdefault(fact.event["build_id"], when(fact.event["occurred_at"]))
        intervals = [i for i in Auditor(self.facts).intervals()
                     if fits({"env": i.env, "service": i.service})]  # fmt: skip
        touched: dict[tuple[str, str, int], datetime] = {}
        first_run: dict[tuple[str, str, str], datetime] = {}
        for i in intervals:
            k = (i.env, i.service, i.generation)
            touched[k] = min(touched.get(k, i.start), i.start)
            b = (i.env, i.service, i.build_id)
            first_run[b] = min(first_run.get(b, i.start), i.start)
        tried = {(f.event["env"], f.event["service"], f.event["generation"]) for f in self.facts
                 if f.event["kind"] == "activation_failed" and fits(f.event)}  # fmt: skip
        figures: dict[date, dict[str, Any]] = defaultdict(
            lambda: {"deployments": 0, "leads": [], "known": 0, "bad": 0, "restores": {}}
        )
        for moment in touched.values():
            figures[start_of(moment, bucket)]["deployments"] += 1
        for (_, _, build), moment in first_run.items():
            if build in built and moment >= built[build]:
                figures[start_of(moment, bucket)]["leads"].append(moment - built[build])
        for env_name, _, number in set(touched) | tried:
            gen = self.gens.get((env_name, number))
            if gen is None:
                continue
            item = figures[start_of(gen.planned_at, bucket)]
            item["known"] += 1
            if gen.status == "failed" or gen.rolled_back_by is not None:
                item["bad"] += 1
                restored = self.restore(gen)
                if restored is not None:
                    item["restores"][env_name, number] = restored
        return {
            start: {
                "deployments": f["deployments"],
                "lead_time_hours": median_hours(f["leads"]),
                "builds": len(f["leads"]),
                "change_failure_rate": round(f["bad"] / f["known"], 3) if f["known"] else None,
                "changes": f["known"],
                "failed_changes": f["bad"],
                "time_to_restore_hours": median_hours(list(f["restores"].values())),
                "restores": len(f["restores"]),
            }
            for start, f in figures.items()
        }

    def restore(self, gen: Gen) -> timedelta | None:
        """From the generation known bad (its rollback planned, or it failing) to the next
        good generation of its env completing."""
        if gen.rolled_back_by is not None:
            known = self.gens[gen.env, gen.rolled_back_by].planned_at
        else:
            known = gen.finished_at  # type: ignore[assignment]
        good = [g.finished_at for g in self.gens.values() if g.env == gen.env
                and g.status == "completed" and g.rolled_back_by is None
                and g.finished_at is not None and g.finished_at >= known]  # fmt: skip
        return min(good) - known if good else None


def median_hours(spans: list[timedelta]) -> float | None:
    if not spans:
        return None
    return round(statistics.median(s / timedelta(microseconds=1) for s in spans) / HOUR, 2)


def start_of(moment: datetime, bucket: str) -> date:
    day = moment.astimezone(UTC).date()
    if bucket == "week":
        return day - timedelta(days=day.isoweekday() - 1)
    if bucket == "month":
        return date(day.year, day.month, 1)
    return day


EMPTY = {"deployments": 0, "lead_time_hours": None, "builds": 0, "change_failure_rate": None,
         "changes": 0, "failed_changes": 0, "time_to_restore_hours": None,
         "restores": 0}  # fmt: skip


def agree_dora(answer: dict[str, Any], expected: dict[date, dict[str, Any]], label: str) -> None:
    rows = answer["buckets"]
    if not expected:
        assert rows == [], label
        return
    starts = [when(r["start"]).date() for r in rows]
    assert starts[0] == min(expected), label
    assert starts[-1] == max(expected), label
    for row, following in pairwise(rows):
        assert row["end"] == following["start"], f"{label}: buckets follow each other"
    for row, start in zip(rows, starts, strict=True):
        assert when(row["start"]) == datetime(start.year, start.month, start.day, tzinfo=UTC)
        figures = {k: v for k, v in row.items() if k not in ("start", "end")}
        assert figures == expected.get(start, EMPTY), f"{label}: {start}"


def agree_rollout(answer: dict[str, Any], expected: list[dict[str, Any]], label: str) -> None:
    assert [{**s, "at": when(s["at"])} for s in answer["steps"]] == expected, label


def compare(views: Views, auditor: ChartAuditor, how: str) -> None:
    for (env, number), gen in sorted(auditor.gens.items()):
        answer = rollout(views, number, env)
        assert answer["placements"] == len(gen.manifest)
        assert answer["changing"] == len(auditor.changing(gen)), how
        assert answer["status"] == ("rolled back" if gen.rolled_back_by else gen.status), how
        agree_rollout(answer, auditor.rollout(env, number), f"{how}: rollout {env} {number}")
    for env in ENVS:
        last = max((n for e, n in auditor.gens if e == env), default=0)
        if last:
            with pytest.raises(InvalidInput, match=f"has no generation {last + 1}"):
                rollout(views, last + 1, env)
    seen = {f.event["env"] for f in auditor.facts
            if f.event["kind"] in ("build_recorded", "generation_planned",
                                   "activation_completed", "deactivated")}  # fmt: skip
    for env in [None, *sorted(seen)]:
        for service in (None, *SERVICES):
            if service is not None and not auditor.service_known(env, service):
                with pytest.raises(UnknownName):
                    metrics_over_time(views, env, service)
                continue
            for bucket in ("day", "week", "month"):
                label = f"{how}: DORA of {env} {service} per {bucket}"
                answer = metrics_over_time(views, env, service, bucket)
                agree_dora(answer, auditor.dora(env, service, bucket), label)
            if env is not None and service is not None:
                # Over every bucket, as many deployments as the whole span's figure.
                whole = [m for m in metrics(views, env) if m["service"] == service]
                buckets = metrics_over_time(views, env, service)["buckets"]
                total = sum(b["deployments"] for b in buckets)
                assert total == (whole[0]["deployments"] if whole else 0), label


# A failing run shrinks for up to hypothesis's 300 s: let it report rather than be
# cut off by the suite's 300 s timeout. Each stream is compared after every chunk, about
# twice the cost of one of test_audit_truth.py's (30 took 53 s on PostgreSQL in CI): 10 in
# the suite, as test_fleet_summary.py has, keep the test near the other truth tests'
# time; ``make truth`` runs 300.
@pytest.mark.timeout(900)
@settings(
    max_examples=examples(10),
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_rollout_and_dora_agree_with_the_auditor(
    fresh_ledger: FreshLedger,  # noqa: F811
    scenario: Scenario,
) -> None:
    with fresh_ledger() as ledger:
        views = Views(ledger, batch=scenario.read_batch, commit_events=scenario.read_batch * 2)
        try:
            feed(ledger, views, scenario, lambda start: compare(
                views, ChartAuditor(list(ledger.facts())), f"after {start} facts"
            ))  # fmt: skip
            auditor = ChartAuditor(list(ledger.facts()))
            compare(views, auditor, "incremental")
            views.rebuild()
            compare(views, auditor, "rebuilt")
        finally:
            views.recorder.datastore.close()


# --- exposure over time ----------------------------------------------------------------


def exposed_at(auditor: exposure_truth.ExposureAuditor, asked: str, moment: datetime,
               env: str | None) -> dict[str, int]:  # fmt: skip
    """Per env, the hosts the auditor finds exposed at ``moment``."""
    expected = auditor.exposure(asked, at=moment, env=env)
    assert expected is not None
    counts: dict[str, int] = defaultdict(int)
    for env_name, _, spans, _ in expected.hosts:
        if any(end is None for _, end in spans):
            counts[env_name] += 1
    return dict(counts)


def steps_at(answer: dict[str, Any], moment: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in answer["changes"]:
        if when(change["at"]) > moment:
            break
        counts[change["env"]] = change["hosts"]
    return {env: hosts for env, hosts in counts.items() if hosts}


@pytest.mark.timeout(900)
@settings(
    max_examples=examples(25),
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=exposure_truth.scenarios())
def test_exposure_over_time_agrees_with_the_auditor(
    fresh_ledger: FreshLedger,  # noqa: F811
    scenario: exposure_truth.Scenario,
) -> None:
    with fresh_ledger() as ledger:
        views = Views(ledger, batch=scenario.read_batch, commit_events=scenario.read_batch * 2)
        try:
            feed(ledger, views, scenario, lambda _: None)
            auditor = exposure_truth.ExposureAuditor(list(ledger.facts()))
            for asked, _, _, wanted in scenario.questions:
                if auditor.exposure(asked) is None:
                    with pytest.raises(UnknownName):
                        exposure_over_time(views, asked, now=exposure_truth.NOW)
                    continue
                known = exposure_truth.envs_known(auditor, None)
                env = wanted if wanted in known else None
                answer = exposure_over_time(views, asked, env=env, now=exposure_truth.NOW)
                moments = {when(c["at"]) for c in answer["changes"]}
                moments |= {when(f.event["occurred_at"]) for f in auditor.placements.facts}
                for moment in sorted(moments):
                    for probe in (moment - timedelta(microseconds=1), moment):
                        assert steps_at(answer, probe) == exposed_at(auditor, asked, probe, env), (
                            asked, env, probe,
                        )  # fmt: skip
                assert sum(steps_at(answer, exposure_truth.NOW).values()) == answer["hosts_exposed"]
        finally:
            views.recorder.datastore.close()


# --- the routes ------------------------------------------------------------------------


@pytest.fixture
def chart_server(ledger: Ledger) -> Iterator[ApiServer]:
    """The API on the story of api 1.0 replaced by 1.1 on h1 and h2 (a failed activation
    after it), and an advisory affecting 1.0's openssl."""
    story = api_upgrade()
    story.add("activation_failed", host="h1", service="api", build_id=bid("x"), generation=2,
              reason="health check failed")  # fmt: skip
    story.record(ledger)
    ledger.append([make_event(
        "advisory_recorded", advisory_id="CVE-2015-0001", aliases=[], unmatched=[],
        affected=[{"ecosystem": "cpe", "name": "openssl", "vendor": "openssl",
                   "bounds": [{"start": "1.0.1", "end": "1.0.2"}]}],
    )])  # fmt: skip
    yield from serve(ledger.location.url)


def get(server: ApiServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.base + path, headers=server.headers("reader"), params=params)


def test_the_routes_answer_as_the_projections(chart_server: ApiServer) -> None:
    answer = get(chart_server, "/api/generations/2/rollout").json()
    iso = {n: stamp(minute(n)) for n in range(30)}
    # The story: generation 2 planned at minute 9; h1 drained at 12, activated at 14; h2
    # drained at 17, activated at 19; h1's failed activation at 21.
    assert [(s["at"], *(s[m] for m in MEASURES)) for s in answer["steps"]] == [
        (iso[9], 2, 2, 0, 0, 0), (iso[12], 2, 2, 0, 0, 1), (iso[14], 2, 2, 1, 0, 1),
        (iso[17], 2, 2, 1, 0, 2), (iso[19], 2, 2, 2, 0, 2), (iso[21], 2, 2, 2, 1, 2),
    ]  # fmt: skip
    assert answer["status"] == "completed"
    assert (answer["placements"], answer["changing"]) == (2, 2)  # api 1.0 -> 1.1 on both
    first = get(chart_server, "/api/generations/1/rollout").json()
    assert first["changing"] == first["placements"] == 2, "no parent: every placement"
    week = get(chart_server, "/api/metrics/timeline", service="api").json()
    assert week["bucket"] == "week"
    assert [(b["start"], b["deployments"], b["changes"]) for b in week["buckets"]] == [
        ("2026-02-23T00:00:00Z", 2, 2)  # 2026-03-01 is a Sunday: the week of Monday 23 Feb
    ]
    exposed = get(chart_server, "/api/exposure/timeline", id="CVE-2015-0001").json()
    assert [(c["at"], c["hosts"]) for c in exposed["changes"]] == [
        (iso[5], 1),
        (iso[7], 2),
        (iso[13], 1),
        (iso[18], 0),
    ]
    assert exposed["hosts_exposed"] == 0
    schema = get(chart_server, "/openapi.json").json()
    for path, model in (
        ("/api/generations/{number}/rollout", "Rollout"),
        ("/api/metrics/timeline", "DeliveryOverTime"),
        ("/api/exposure/timeline", "ExposureOverTime"),
    ):
        answers = schema["paths"][path]["get"]["responses"]
        assert answers["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"
        }, path
        assert "404" in answers, path


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/api/generations/3/rollout", {}, 404, "has no generation 3"),
        ("/api/generations/1/rollout", {"env": "nowhere"}, 404, "nowhere"),
        ("/api/generations/0/rollout", {}, 422, "number"),
        ("/api/generations/x/rollout", {}, 422, "number"),
        ("/api/metrics/timeline", {"env": "nowhere"}, 404, "environment 'nowhere'"),
        ("/api/metrics/timeline", {"service": "nothing"}, 404, "service 'nothing'"),
        ("/api/metrics/timeline", {"bucket": "year"}, 422, "bucket"),
        ("/api/exposure/timeline", {"id": "CVE-2099-0001"}, 404, "CVE-2099-0001"),
        ("/api/exposure/timeline", {}, 422, "id"),
        ("/api/exposure/timeline", {"id": "CVE-2015-0001", "env": "nowhere"}, 404, "nowhere"),
    ],
)
def test_refusals_say_why(
    chart_server: ApiServer, path: str, params: dict[str, str], status: int, words: str
) -> None:
    response = get(chart_server, path, **params)
    assert response.status_code == status, response.text
    assert words in response.json()["message"]
