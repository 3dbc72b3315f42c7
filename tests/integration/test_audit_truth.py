"""Audit answers that hold on real data: ``where``, ``where_counts`` and ``topology``
checked against an auditor's own reading of the raw stream, whatever order the facts
reached the ledger in.

The auditor (``Auditor`` below) knows nothing of the views. It reads the facts back as
stored (``Ledger.facts()``, what ``ledger log --json`` prints), sorts each
(env, host, service)'s activations and deactivations by when they happened (ties: by
ledger position) and walks them:

- an activation of the build already active changes nothing (it keeps its "since");
- an activation of another build (or of one where nothing is active) closes the active
  interval at that moment and opens the new one;
- a deactivation closes the interval only of the build active at that moment.

Intervals are half-open, [from, to). "Now" is the open intervals; "at T" the interval
holding T; "known at K" the same walk over the facts recorded by K only, with the
closures of the builds recorded by K only. Current health is the report that happened
last (ties: the later position), whatever its arrival.

The examples the issue quotes are regression tests; a hypothesis test drives random,
late-arriving streams through random catch-up boundaries and compares every answer
with the auditor's, before and after a rebuild.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger, StoredFact
from ledger.events import Envelope
from ledger.store import locate
from projections import queries
from projections.runner import VIEW_NAMES, Views
from tests.conftest import BACKENDS, with_query
from tests.examples import examples
from tests.factories import make_event
from tests.story import openssl, zlib

NAME = "openssl"
PLACEMENT_KINDS = frozenset({"activation_completed", "deactivated"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = tuple[str, str, str]  # env, host, service ("" for the host itself)
WhereRow = tuple[str, str, str, str, str, datetime]  # env, host, service, build, version, since
CountRow = tuple[str, str, int, tuple[str, ...]]  # env, version, hosts, services
TopologyRow = tuple[str, str, str, str, datetime, int, str | None]
HistoryRow = tuple[int, str, str | None]  # position, kind, service
"""env, host, service, build, since, generation, health."""


def when(value: object) -> datetime:
    """A time as the stream or the views spell it (ISO 8601, epoch microseconds or a
    datetime), in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int):
        return EPOCH + timedelta(microseconds=value)
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    raise TypeError(f"not a time: {value!r}")


# --- the auditor's answers, by brute force from the raw facts ------------------------


@dataclass(frozen=True)
class Interval:
    """A build active on (env, host, service) from ``start`` until ``end`` (excluded)."""

    env: str
    host: str
    service: str
    build_id: str
    generation: int
    start: datetime
    end: datetime | None

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


class Auditor:
    """What the facts say, read the slow and obvious way: no state kept between
    questions, every answer a fresh walk over the facts in valid-time order."""

    def __init__(self, facts: Sequence[StoredFact]) -> None:
        self.facts = sorted(facts, key=lambda f: f.position)

    def known(self, known_at: datetime | None) -> list[StoredFact]:
        return [
            f for f in self.facts if known_at is None or when(f.event["recorded_at"]) <= known_at
        ]

    def intervals(self, known_at: datetime | None = None) -> list[Interval]:
        moves = sorted(
            (f for f in self.known(known_at) if f.event["kind"] in PLACEMENT_KINDS),
            key=lambda f: (when(f.event["occurred_at"]), f.position),
        )
        ended: list[Interval] = []
        active: dict[Key, Interval] = {}
        for fact in moves:
            event = fact.event
            key = (event["env"], event["host"], event["service"])
            moment = when(event["occurred_at"])
            current = active.get(key)
            if event["kind"] == "deactivated":
                if current is not None and current.build_id == event["build_id"]:
                    ended.append(replace(current, end=moment))
                    del active[key]
                continue
            if current is not None:
                if current.build_id == event["build_id"]:
                    continue
                ended.append(replace(current, end=moment))
            active[key] = Interval(*key, event["build_id"], event["generation"], moment, None)
        return ended + list(active.values())

    def closures(self, known_at: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each build's closure, from its first ``build_recorded`` known by then."""
        closures: dict[str, list[dict[str, Any]]] = {}
        for fact in self.known(known_at):
            if fact.event["kind"] == "build_recorded":
                closures.setdefault(fact.event["build_id"], fact.event["closure"])
        return closures

    def placements(
        self, at: datetime | None = None, known_at: datetime | None = None
    ) -> list[Interval]:
        """Open intervals ("now"), or those holding ``at``, as known at ``known_at``."""
        return [
            i for i in self.intervals(known_at) if (i.end is None if at is None else i.holds(at))
        ]

    def where(
        self,
        name: str,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        env: str | None = None,
    ) -> list[WhereRow]:
        closures = self.closures(known_at)
        return sorted(
            (
                (i.env, i.host, i.service, i.build_id, c["version"], i.start)
                for i in self.placements(at, known_at)
                if env is None or i.env == env
                for c in closures.get(i.build_id, [])
                if c["name"] == name
            ),
            key=repr,
        )

    def where_counts(
        self,
        name: str,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        env: str | None = None,
    ) -> list[CountRow]:
        groups: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
        for env_name, host, service, _, version, _ in self.where(
            name, at=at, known_at=known_at, env=env
        ):
            hosts, services = groups.setdefault((env_name, version), (set(), set()))
            hosts.add(host)
            services.add(service)
        return sorted(
            (
                (env_name, version, len(hosts), tuple(sorted(services)))
                for (env_name, version), (hosts, services) in groups.items()
            ),
            key=repr,
        )

    def health(self) -> dict[Key, str]:
        """The state each (env, host, service) — and host, service "" — reported last."""
        latest: dict[Key, tuple[datetime, int, str]] = {}
        for fact in self.facts:
            event = fact.event
            if event["kind"] != "health_reported":
                continue
            key = (event["env"], event["host"], event.get("service") or "")
            mark = (when(event["occurred_at"]), fact.position, event["state"])
            if key not in latest or mark[:2] > latest[key][:2]:
                latest[key] = mark
        return {key: state for key, (_, _, state) in latest.items()}

    def topology(self, env: str | None = None) -> list[TopologyRow]:
        health = self.health()
        return sorted(
            (
                (i.env, i.host, i.service, i.build_id, i.start, i.generation,
                 health.get((i.env, i.host, i.service)) or health.get((i.env, i.host, "")))
                for i in self.placements()
                if env is None or i.env == env
            ),
            key=repr,
        )  # fmt: skip

    def history(self, host: str) -> list[HistoryRow]:
        """A host's facts in the order they happened (ties by position), less the health
        reports that repeat the state the one before them (same env, service) gave."""
        facts = sorted(
            (f for f in self.facts if f.event.get("host") == host),
            key=lambda f: (when(f.event["occurred_at"]), f.position),
        )
        rows: list[HistoryRow] = []
        last: dict[tuple[str, str], str] = {}
        for fact in facts:
            event = fact.event
            if event["kind"] == "health_reported":
                key = (event["env"], event.get("service") or "")
                if last.get(key) == event["state"]:
                    continue
                last[key] = event["state"]
            rows.append((fact.position, event["kind"], event.get("service") or None))
        return rows


# --- the views' answers, in the same shape (and order) as the auditor's -------------


def found(rows: Sequence[queries.Found]) -> list[WhereRow]:
    return sorted(
        ((f.env, f.host, f.service, f.build_id, f.version, when(f.since)) for f in rows),
        key=repr,
    )


def counted(rows: Sequence[dict[str, Any]]) -> list[CountRow]:
    return sorted(
        ((r["env"], r["version"], r["hosts"], tuple(r["services"])) for r in rows), key=repr
    )


def placed(rows: Sequence[dict[str, Any]]) -> list[TopologyRow]:
    return sorted(
        (
            (r["env"], r["host"], r["service"], r["build_id"], when(r["since"]),
             r["generation"], r["health"])
            for r in rows
        ),
        key=repr,
    )  # fmt: skip


def one_build_each(rows: Sequence[queries.Found], label: str) -> None:
    """At any valid time at most one build per (env, host, service)."""
    builds: dict[Key, set[str]] = {}
    for f in rows:
        builds.setdefault((f.env, f.host, f.service), set()).add(f.build_id)
    doubled = {key: sorted(ids) for key, ids in builds.items() if len(ids) > 1}
    assert not doubled, f"{label}: several builds at once on {doubled}"


# --- the examples ------------------------------------------------------------

DAY = "2025-03-10"


def clock(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hhmm}:00+00:00")


def bid(name: str) -> str:
    """A valid build id that reads as its short name (api1-0000…)."""
    return f"{name}-".ljust(32, "0")


class Arrivals:
    """Facts in the order they reached the ledger, each with when it happened and when
    it was recorded."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def add(self, kind: str, occurred: str, recorded: str, **fields: Any) -> None:
        fields.setdefault("env", "production")
        self.events.append(
            make_event(
                kind,
                event_id=str(uuid.UUID(int=len(self.events) + 1)),
                occurred_at=clock(occurred).isoformat(),
                recorded_at=clock(recorded).isoformat(),
                actor="deploy-bot",
                **fields,
            )
        )

    def build(self, name: str, occurred: str, recorded: str, *closure: dict[str, Any]) -> None:
        self.add(
            "build_recorded",
            occurred,
            recorded,
            build_id=bid(name),
            service="api",
            version=name,
            artifact=f"/nix/store/{bid(name)}-{name}",
            closure=list(closure),
        )

    def activate(self, host: str, build: str, occurred: str, recorded: str) -> None:
        self.add(
            "activation_completed",
            occurred,
            recorded,
            host=host,
            service="api",
            build_id=bid(build),
            generation=1,
        )

    def deactivate(self, host: str, build: str, occurred: str, recorded: str) -> None:
        self.add("deactivated", occurred, recorded, host=host, service="api", build_id=bid(build))

    def health(
        self, host: str, service: str | None, state: str, occurred: str, recorded: str
    ) -> None:
        self.add(
            "health_reported",
            occurred,
            recorded,
            host=host,
            service=service,
            state=state,
            ttl_s=86_400,
        )

    def record(self, ledger: Ledger) -> Views:
        """Append one fact at a time, the views caught up after each, as in production."""
        views = Views(ledger)
        for event in self.events:
            ledger.append([event])
            views.catch_up()
        return views


def incremental_then_rebuilt(views: Views) -> Iterator[str]:
    """Check the views as maintained fact by fact, then rebuilt from the stream."""
    yield "incremental"
    views.rebuild()
    yield "rebuilt"


def row(host: str, build: str, version: str, since: str, service: str = "api") -> WhereRow:
    return ("production", host, service, bid(build), version, clock(since))


def where_at(views: Views, at: str | None, known_at: str | None = None) -> list[WhereRow]:
    return found(
        queries.where(
            views,
            NAME,
            at=None if at is None else clock(at),
            known_at=None if known_at is None else clock(known_at),
        )
    )


Expected = dict[tuple[str | None, str | None], list[WhereRow]]
"""(at, known at) → the where rows, for the issue's examples."""


def auditor_says(auditor: Auditor, expected: Expected) -> None:
    """The brute-force auditor gives the issue's expected answers (so the example is
    what the issue says it is)."""
    for (at, known_at), rows in expected.items():
        assert auditor.where(
            NAME,
            at=None if at is None else clock(at),
            known_at=None if known_at is None else clock(known_at),
        ) == rows, (at, known_at)  # fmt: skip


def views_say(views: Views, expected: Expected, how: str) -> None:
    for (at, known_at), rows in expected.items():
        assert where_at(views, at, known_at) == rows, (how, at, known_at)


def test_a_late_activation_takes_its_place_in_time(ledger: Ledger) -> None:
    """Issue example: api2's activation happened at 10:00 but reached the ledger at
    14:00, after api3's at 12:00. At 11:30 app-02/api ran api2 — once."""
    s = Arrivals()
    s.build("api1", "08:00", "08:00", openssl("1.0.1p"))
    s.build("api2", "08:01", "08:01", openssl("1.0.2d"))
    s.build("api3", "08:02", "08:02", openssl("3.0.13"))
    s.activate("app-02", "api1", "09:00", "09:00")
    s.activate("app-02", "api3", "12:00", "12:00")
    s.activate("app-02", "api2", "10:00", "14:00")
    views = s.record(ledger)
    auditor = Auditor(list(ledger.facts()))
    expected = {
        ("11:30", None): [row("app-02", "api2", "1.0.2d", "10:00")],
        ("09:30", None): [row("app-02", "api1", "1.0.1p", "09:00")],
        ("12:30", None): [row("app-02", "api3", "3.0.13", "12:00")],
        ("10:00", None): [row("app-02", "api2", "1.0.2d", "10:00")],  # [from, to)
        ("12:00", None): [row("app-02", "api3", "3.0.13", "12:00")],
        ("11:30", "13:00"): [row("app-02", "api1", "1.0.1p", "09:00")],  # not known yet
        ("11:30", "14:00"): [row("app-02", "api2", "1.0.2d", "10:00")],
        (None, None): [row("app-02", "api3", "3.0.13", "12:00")],
        (None, "13:00"): [row("app-02", "api3", "3.0.13", "12:00")],
    }
    auditor_says(auditor, expected)
    for how in incremental_then_rebuilt(views):
        views_say(views, expected, how)
        counts = queries.where_counts(views, NAME, at=clock("11:30"))
        assert counted(counts) == [("production", "1.0.2d", 1, ("api",))], how
        [now] = queries.topology(views, now=clock("15:00"))
        assert (now["build_id"], when(now["since"])) == (bid("api3"), clock("12:00")), how


@pytest.mark.parametrize("active_before", [False, True], ids=["fresh", "active-since-06"])
def test_a_late_older_deactivation_does_not_remove_the_service(
    ledger: Ledger, active_before: bool
) -> None:
    """Issue example: a deactivation dated 08:00, recorded after the activation at 12:00,
    belongs before that activation: the service is active now, since 12:00."""
    s = Arrivals()
    s.build("api1", "05:00", "05:00", openssl("1.0.2d"))
    if active_before:
        s.activate("app-02", "api1", "06:00", "06:00")
    s.activate("app-02", "api1", "12:00", "12:00")
    s.deactivate("app-02", "api1", "08:00", "12:30")
    views = s.record(ledger)
    now = [row("app-02", "api1", "1.0.2d", "12:00")]
    expected: Expected = {
        (None, None): now,
        ("12:00", None): now,
        ("09:00", None): [],
        ("08:00", None): [],  # [06:00, 08:00) is half-open: it does not hold 08:00
        # Before the deactivation was known, api1 ran from the first activation on.
        ("09:00", "12:10"): [row("app-02", "api1", "1.0.2d", "06:00")] if active_before else [],
        (None, "12:10"): [row("app-02", "api1", "1.0.2d", "06:00" if active_before else "12:00")],
    }
    if active_before:
        expected[("07:00", None)] = [row("app-02", "api1", "1.0.2d", "06:00")]
    auditor = Auditor(list(ledger.facts()))
    auditor_says(auditor, expected)
    for how in incremental_then_rebuilt(views):
        views_say(views, expected, how)
        topology = queries.topology(views, now=clock("15:00"))
        assert [(r["host"], r["build_id"], when(r["since"])) for r in topology] == [
            ("app-02", bid("api1"), clock("12:00"))
        ], how


def test_a_late_older_health_report_does_not_override_a_newer_one(ledger: Ledger) -> None:
    """Issue example: "warning" at 09:30, recorded at 14:20, came after "ok" at 10:40
    reached the ledger; the current health is still ok — of a service and of a host."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", openssl("1.0.2d"))
    s.activate("app-01", "api1", "08:00", "08:00")
    s.activate("app-02", "api1", "08:00", "08:00")
    s.health("app-02", "api", "ok", "10:40", "10:40")
    s.health("app-01", None, "ok", "10:40", "10:41")
    s.health("app-02", "api", "warning", "09:30", "14:20")
    s.health("app-01", None, "critical", "09:30", "14:21")
    views = s.record(ledger)
    auditor = Auditor(list(ledger.facts()))
    assert [r[-1] for r in auditor.topology()] == ["ok", "ok"]
    for how in incremental_then_rebuilt(views):
        topology = queries.topology(views, now=clock("15:00"))
        assert [(r["host"], r["service"], r["health"]) for r in topology] == [
            ("app-01", "api", "ok"),
            ("app-02", "api", "ok"),
        ], how


def test_known_at_leaves_out_the_closure_of_a_build_recorded_later(ledger: Ledger) -> None:
    """Issue example: api9 was active from 09:00, but its build (and so its closure)
    reached the ledger only at 11:00: as known at 10:30, nothing holds openssl."""
    s = Arrivals()
    s.activate("app-02", "api9", "09:00", "09:00")
    s.build("api9", "08:00", "11:00", openssl("1.0.1p"), zlib("1.3"))
    views = s.record(ledger)
    active = [row("app-02", "api9", "1.0.1p", "09:00")]
    expected: Expected = {
        ("10:00", "10:30"): [],
        (None, "10:30"): [],
        ("10:00", "11:30"): active,
        ("10:00", "11:00"): active,  # recorded at 11:00 is known at 11:00
        ("10:00", None): active,
        (None, None): active,
    }
    auditor = Auditor(list(ledger.facts()))
    auditor_says(auditor, expected)
    for how in incremental_then_rebuilt(views):
        views_say(views, expected, how)
        assert queries.where_counts(views, NAME, at=clock("10:00"), known_at=clock("10:30")) == []
        assert counted(
            queries.where_counts(views, NAME, at=clock("10:00"), known_at=clock("11:30"))
        ) == [("production", "1.0.1p", 1, ("api",))]  # fmt: skip
        # The placement itself was known at 10:30: it is the closure that was not.
        assert [r["build_id"] for r in queries.topology(views, now=clock("15:00"))] == [
            bid("api9")
        ], how


# --- random late streams against the auditor ----------------------------------------

BASE = datetime(2025, 3, 10, 8, tzinfo=UTC)
HORIZON = 20  # facts happen within this many minutes after BASE
ENVS = ("production", "staging")
HOSTS = ("app-01", "app-02", "app-03")
SERVICES = ("api", "web")
OPENSSL_VERSIONS = ("1.0.1p", "1.0.2d", "1.1.1w", "3.0.13")
STATES = ("ok", "warning", "critical")
DELAYS = (0, 0, 0, 1, 3, 15, 90)  # minutes between happening and being sent
NOW = BASE + timedelta(days=1)  # for topology: no report is stale yet
TTL = 30 * 86_400.0


def minutes(n: float) -> datetime:
    return BASE + timedelta(minutes=n)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Scenario:
    """A stream in arrival order, how it is appended and caught up, and what is asked."""

    events: list[Envelope]
    chunks: list[int]  # events per append
    catch_ups: list[bool]  # catch the views up after each append?
    probes: list[bool]  # ... and then compare "now" with the auditor?
    read_batch: int  # the runner's batch size: more boundaries
    ats: list[datetime]
    pairs: list[tuple[datetime | None, datetime]]  # (at, known_at); at None: now

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a failing example: the stream, one fact a line."""
        printer.text(repr(self))

    def __repr__(self) -> str:
        lines = []
        for e in self.events:
            data = e.model_dump(mode="json")
            where_ = "/".join(str(data.get(k) or "-") for k in ("env", "host", "service"))
            what = str(data.get("build_id") or data.get("state")).split("-")[0]
            if data["kind"] == "build_recorded":
                what += " " + ",".join(f"{c['name']}={c['version']}" for c in data["closure"])
            if data.get("generation"):
                what += f" gen {data['generation']}"
            lines.append(
                f"  occurred {data['occurred_at'][11:19]} recorded {data['recorded_at'][11:19]}"
                f" {data['kind']} {where_} {what}"
            )
        return (
            "Scenario(arrival order:\n" + "\n".join(lines) + f"\n chunks={self.chunks}"
            f" catch_ups={self.catch_ups} probes={self.probes} read_batch={self.read_batch}"
            f"\n ats={[stamp(t) for t in self.ats]}"
            f"\n pairs={[(t and stamp(t), stamp(k)) for t, k in self.pairs]})"
        )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    versions = draw(
        st.lists(st.sampled_from(OPENSSL_VERSIONS), min_size=3, max_size=4, unique=True)
    )
    closures = [[openssl(v), zlib("1.3")] for v in versions] + [[zlib("1.3")]]
    builds = [bid(f"b{i}") for i in range(len(closures))]  # the last one has no openssl
    hosts = HOSTS[: draw(st.integers(1, len(HOSTS)))]
    happenings: list[tuple[str, int, int, dict[str, Any]]] = []  # kind, minute, delay, fields
    for build, closure in zip(builds, closures, strict=True):
        happenings.append(
            (
                "build_recorded",
                draw(st.integers(0, HORIZON)),
                draw(st.sampled_from((0, 5, 20, 90))),  # some after their activations
                {
                    "env": "production",
                    "build_id": build,
                    "service": "api",
                    "version": build[:2],
                    "artifact": f"/nix/store/{build}-api",
                    "closure": closure,
                },
            )
        )
    key, minute = (ENVS[0], hosts[0], SERVICES[0]), 0
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(
            st.sampled_from(
                ("activation_completed",) * 3 + ("deactivated",) + ("health_reported",) * 2
            )
        )
        # Often the same (env, host, service) as the fact before, often at the same
        # minute too: long timelines and ties, where the order rules matter.
        echo = draw(st.sampled_from(("new", "same key", "same key", "same moment")))
        if echo == "new":
            key = (
                draw(st.sampled_from(ENVS)),
                draw(st.sampled_from(hosts)),
                draw(st.sampled_from(SERVICES)),
            )
        if echo != "same moment":
            minute = draw(st.integers(0, HORIZON))
        fields: dict[str, Any] = dict(zip(("env", "host", "service"), key, strict=True))
        if kind == "health_reported":
            if draw(st.booleans()):
                fields["service"] = None  # the host's own health
            # A burst of reports about one target, often at the same minute.
            for _ in range(draw(st.integers(1, 3))):
                report = fields | {"state": draw(st.sampled_from(STATES)), "ttl_s": TTL}
                at = minute + draw(st.sampled_from((0, 0, 1)))
                happenings.append((kind, at, draw(st.sampled_from(DELAYS)), report))
            continue
        fields["build_id"] = draw(st.sampled_from(builds))
        if kind == "activation_completed":
            fields["generation"] = draw(st.integers(1, 5))
        happenings.append((kind, minute, draw(st.sampled_from(DELAYS)), fields))
    # Arrival: by when each was sent; recorded_at strictly increasing in arrival order.
    arrival = sorted(range(len(happenings)), key=lambda i: happenings[i][1] + happenings[i][2])
    events: list[Envelope] = []
    recorded: list[datetime] = []
    for i in arrival:
        kind, minute, delay, fields = happenings[i]
        sent = minutes(minute + delay)
        recorded.append(max(sent, recorded[-1] + timedelta(seconds=1)) if recorded else sent)
        events.append(
            make_event(
                kind,
                event_id=str(uuid.UUID(int=len(events) + 1)),
                occurred_at=stamp(minutes(minute)),
                recorded_at=stamp(recorded[-1]),
                actor="deploy-bot",
                **fields,
            )
        )
    # Moments to ask about: exactly at a fact, between facts, before and after them all.
    happened = sorted({m for _, m, _, _ in happenings})
    moments = sorted(
        {minutes(-1), minutes(HORIZON + 1)}
        | {minutes(m) for m in happened}
        | {minutes(m + 0.5) for m in happened}
    )
    ats = draw(st.lists(st.sampled_from(moments), min_size=3, max_size=8, unique=True))
    ats += [
        minutes(s / 60) for s in draw(st.lists(st.integers(-60, (HORIZON + 1) * 60), max_size=2))
    ]
    knowns = sorted(
        {recorded[0] - timedelta(seconds=1)}
        | set(recorded)
        | {r + timedelta(milliseconds=500) for r in recorded}  # between two arrivals
    )
    # Where "as known at K" turns: exactly when a late fact became known, asked about
    # the moment it happened (it may retire what was known before). Late: it happened
    # before something that arrived earlier.
    latest, turns = minutes(-1), []
    for event, known in zip(events, recorded, strict=True):
        if event.occurred_at < latest:
            for moment in (None, event.occurred_at, event.occurred_at + timedelta(seconds=30)):
                turns.append((moment, known))
        latest = max(latest, event.occurred_at)
    anywhere = st.tuples(st.sampled_from([None, *moments]), st.sampled_from(knowns))
    pairs = draw(
        st.lists(
            st.one_of(anywhere, st.sampled_from(turns)) if turns else anywhere,
            min_size=3,
            max_size=8,
        )
    )
    return Scenario(
        events,
        chunks=draw(st.lists(st.integers(1, 4), max_size=30)),
        catch_ups=draw(st.lists(st.booleans(), max_size=30)),
        probes=draw(st.lists(st.booleans(), max_size=30)),
        read_batch=draw(st.integers(1, 6)),
        ats=ats,
        pairs=pairs,
    )


def compare(views: Views, auditor: Auditor, scenario: Scenario, how: str) -> None:
    """Every answer of the views against the auditor's."""
    assert found(queries.where(views, NAME)) == auditor.where(NAME), f"{how}: where now"
    # Only envs the stream has activations in: an env the ledger never saw may be
    # refused (UnknownName) rather than answered with nothing.
    for env in sorted(
        {f.event["env"] for f in auditor.facts if f.event["kind"] == "activation_completed"}
    ):
        assert found(queries.where(views, NAME, env=env)) == auditor.where(NAME, env=env), (
            f"{how}: where now in {env}"
        )
    assert counted(queries.where_counts(views, NAME)) == auditor.where_counts(NAME), (
        f"{how}: where_counts now"
    )
    assert placed(queries.topology(views, now=NOW)) == auditor.topology(), f"{how}: topology"
    for host in sorted({f.event["host"] for f in auditor.facts if "host" in f.event}):
        assert [
            (r["position"], r["kind"], r["service"]) for r in queries.history(views, host)
        ] == auditor.history(host), f"{how}: history of {host}"
        # A host's manifest is its part of the topology (with closures and dependencies).
        assert sorted(
            (
                r["env"],
                r["host"],
                r["service"],
                r["build_id"],
                when(r["since"]),
                r["generation"],
                r["health"],
            )
            for r in queries.manifest(views, host, now=NOW)
        ) == [row for row in auditor.topology() if row[1] == host], f"{how}: manifest of {host}"
    for at in scenario.ats:
        rows = queries.where(views, NAME, at=at)
        one_build_each(rows, f"{how}: where at {stamp(at)}")
        assert found(rows) == auditor.where(NAME, at=at), f"{how}: where at {stamp(at)}"
        assert counted(queries.where_counts(views, NAME, at=at)) == auditor.where_counts(
            NAME, at=at
        ), f"{how}: where_counts at {stamp(at)}"
    for moment, known_at in scenario.pairs:
        label = f"{how}: where at {moment and stamp(moment)} known at {stamp(known_at)}"
        rows = queries.where(views, NAME, at=moment, known_at=known_at)
        one_build_each(rows, label)
        assert found(rows) == auditor.where(NAME, at=moment, known_at=known_at), label
        assert counted(
            queries.where_counts(views, NAME, at=moment, known_at=known_at)
        ) == auditor.where_counts(NAME, at=moment, known_at=known_at), label


def probe(views: Views, auditor: Auditor, how: str) -> None:
    """The views so far agree with the facts so far, now."""
    assert placed(queries.topology(views, now=NOW)) == auditor.topology(), f"{how}: topology"
    # Asking for a package no closure has held yet may be refused (UnknownName).
    if any(c["name"] == NAME for closure in auditor.closures().values() for c in closure):
        assert found(queries.where(views, NAME)) == auditor.where(NAME), f"{how}: where now"


def dump(views: Views) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    return {name: views.dump(name) for name in VIEW_NAMES}


FreshLedger = Callable[[], AbstractContextManager[Ledger]]


@pytest.fixture(params=BACKENDS)
def fresh_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> FreshLedger:
    """A new, empty ledger for each hypothesis example, on each backend in turn: the
    ``ledger`` fixture is made once per test, and examples must not see each other's
    facts. PostgreSQL gets a schema of its own per example, dropped after it."""
    server: str | None = None
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        server = str(request.getfixturevalue("postgres_server_url"))
    count = itertools.count()

    @contextmanager
    def fresh() -> Iterator[Ledger]:
        schema = f"audit_{uuid.uuid4().hex[:12]}"
        if server is None:
            url = str(tmp_path / f"ledger-{next(count)}.db")
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = with_query(server, schema=schema)
        app = Ledger(locate(url), create=True)
        try:
            yield app
        finally:
            app.close()
            if server is not None:
                with psycopg.connect(server, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return fresh


class Stream(Protocol):
    """A scenario's facts and how they are appended (``Scenario`` here, and others')."""

    @property
    def events(self) -> list[Envelope]: ...
    @property
    def chunks(self) -> list[int]: ...
    @property
    def catch_ups(self) -> list[bool]: ...
    @property
    def probes(self) -> list[bool]: ...


def feed(ledger: Ledger, views: Views, scenario: Stream, probe: Callable[[int], None]) -> None:
    """Append the scenario's facts in its chunks, catching the views up where it says and
    calling ``probe(facts appended so far)`` where it says; the views caught up at the end."""
    chunks, catch_ups, probes = (
        iter(scenario.chunks), iter(scenario.catch_ups), iter(scenario.probes)
    )  # fmt: skip
    start = 0
    while start < len(scenario.events):
        size = next(chunks, 2)
        ledger.append(scenario.events[start : start + size])
        start += size
        if next(catch_ups, True):
            views.catch_up()
            if next(probes, False):
                probe(start)
    views.catch_up()


# A failing run shrinks for up to hypothesis's 300 s: let it report rather than be
# cut off by the suite's 300 s timeout.
@pytest.mark.timeout(900)
@settings(
    max_examples=examples(40),
    deadline=None,
    report_multiple_bugs=False,  # shrink one failure, fast, rather than each kind
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_answers_agree_with_the_auditor(fresh_ledger: FreshLedger, scenario: Scenario) -> None:
    with fresh_ledger() as ledger:
        views = Views(ledger, batch=scenario.read_batch, commit_events=scenario.read_batch * 2)
        try:
            feed(ledger, views, scenario, lambda start: probe(
                views, Auditor(list(ledger.facts())), f"after {start} facts"
            ))  # fmt: skip
            auditor = Auditor(list(ledger.facts()))
            assert [when(f.event["recorded_at"]) for f in auditor.facts] == [
                e.recorded_at for e in scenario.events
            ]  # stored in arrival order, with the recorded_at given
            compare(views, auditor, scenario, "incremental")
            incremental = dump(views)
            views.rebuild()
            compare(views, auditor, scenario, "rebuilt")
            assert dump(views) == incremental, "rebuilt view tables differ from incremental"
        finally:
            views.recorder.datastore.close()
