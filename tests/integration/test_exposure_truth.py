"""``exposure`` checked against an auditor's own reading of the raw stream, whatever order
the facts — placements, builds and advisories — reached the ledger in.

The auditor (``ExposureAuditor``) imports nothing of the views or of the matching code.
It reads the facts back as stored and answers by hand, the slow and obvious way:

- **the advisory group**: of each (database, advisory id), the version with the latest
  ``modified`` (ties: the later position) among those recorded by K; the records whose
  id or aliases connect to the asked id, transitively. A record whose latest version is
  withdrawn contributes nothing; an id no record has (as id or alias) is unknown.
- **matching**: a component is affected when an affected package names it — ``cpe``
  products by name in any ecosystem, other packages in their own ecosystem — and lists
  its version, or holds it in an OSV range (written as non-overlapping
  introduced/fixed/last_affected pairs) or an NVD bound. Versions are dotted integers
  (with an optional letter, 1.0.1f), compared as tuples: the streams keep to versions
  every ecosystem orders that way.
- **placements**: ``test_audit_truth.Auditor``'s intervals as known at K (facts sorted by
  ``occurred_at``, ties by position), of builds whose first ``build_recorded`` was known
  by K and holds an affected component.
- **windows**: per (env, host, service), then per (env, host) over all its services, the
  intervals starting by the horizon, merged when they overlap or touch, the one holding
  the horizon reported open; seconds up to the horizon; the part after publication and
  after the ledger first recorded any version of the group's records.

The issue's examples are regression tests (the auditor is checked against hand-computed
answers first, so each example is what the issue says); a hypothesis test drives random
late-arriving streams through random catch-up points and compares every field of every
answer with the auditor's, on both backends, before and after a rebuild. Seconds are
compared to 1e-6 s: they are sums of exact durations, never timings.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger, StoredFact
from ledger.errors import UnknownName
from ledger.events import Envelope
from projections.exposure import Exposure, exposure
from projections.runner import Views
from tests.examples import examples
from tests.factories import make_event
from tests.integration.test_audit_truth import (
    BASE,
    Arrivals,
    Auditor,
    FreshLedger,
    Interval,
    bid,
    clock,
    feed,
    fresh_ledger,  # noqa: F401  (the fixture, on both backends)
    incremental_then_rebuilt,
    minutes,
    stamp,
    when,
)

Span = tuple[datetime, datetime | None]
"""[start, end); end None: still exposed at the horizon."""
NOW = BASE + timedelta(days=1)  # after every fact of every stream here
SECONDS = 1e-6  # tolerance of a sum of exact durations (float rounding only)


# --- the auditor's matching: versions as int tuples, ranges as pairs ---------------


def version_key(version: str) -> tuple[tuple[int, ...], str]:
    """1.0.1f → ((1, 0, 1), "f"): dotted integers, then an optional letter (OpenSSL's
    and Nix's order for such versions: 1.0.1 < 1.0.1f < 1.0.1g < 1.0.2)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)([a-z]?)", version)
    assert match, f"the streams here use dotted-integer versions, not {version!r}"
    return tuple(int(part) for part in match[1].split(".")), match[2]


def component_identity(component: dict[str, Any]) -> tuple[str, str, str]:
    """(ecosystem, name, version): ``nix`` for a store path, else the purl's type."""
    if component.get("store_path"):
        return "nix", component["name"], component["version"]
    kind = str(component["purl"]).removeprefix("pkg:").split("/", 1)[0]
    return kind, component["name"], component["version"]


def in_osv_range(events: Sequence[dict[str, Any]], version: str) -> bool:
    """The range as consecutive pairs (introduced, then fixed or last_affected or
    nothing), as the streams here write them: no walk over sorted events."""
    v = version_key(version)
    pairs: list[tuple[str, dict[str, Any] | None]] = []
    for event in events:
        if event.get("introduced") is not None:
            pairs.append((event["introduced"], None))
        else:
            pairs[-1] = (pairs[-1][0], event)
    for introduced, end in pairs:
        if introduced != "0" and v < version_key(introduced):
            continue
        if end is None:
            return True
        if end.get("fixed") is not None and v < version_key(end["fixed"]):
            return True
        if end.get("last_affected") is not None and v <= version_key(end["last_affected"]):
            return True
    return False


def in_bounds(bounds: dict[str, Any], version: str) -> bool:
    v = version_key(version)
    if bounds.get("start") is not None:
        start = version_key(bounds["start"])
        if v < start or (bounds.get("start_excluding") and v == start):
            return False
    if bounds.get("end") is not None:
        end = version_key(bounds["end"])
        if v > end or (not bounds.get("end_including") and v == end):
            return False
    return True


def names_component(package: dict[str, Any], identity: tuple[str, str, str]) -> bool:
    ecosystem, name, _ = identity
    if package["ecosystem"] == "cpe":  # an NVD product: any ecosystem, case-insensitive
        return bool(package["name"].lower() == name.lower())
    return bool(package["ecosystem"] == ecosystem and package["name"] == name)


def covers(package: dict[str, Any], version: str) -> bool:
    return (
        version in package.get("versions", ())
        or any(in_osv_range(r["events"], version) for r in package.get("ranges", ()))
        or any(in_bounds(b, version) for b in package.get("bounds", ()))
    )


def fixes_of(package: dict[str, Any]) -> set[str]:
    """The versions a package's data names as fixing it: what ``fixed`` may say."""
    found = {e["fixed"] for r in package.get("ranges", ()) for e in r["events"] if e.get("fixed")}
    found |= {
        b["end"] for b in package.get("bounds", ()) if b.get("end") and not b.get("end_including")
    }
    return found


# --- windows by hand ------------------------------------------------------------------


def merge(spans: Iterable[tuple[datetime, datetime | None]], horizon: datetime) -> list[Span]:
    """Spans starting by the horizon, merged when they overlap or touch; the one holding
    the horizon is open (end None)."""
    merged: list[list[Any]] = []
    for start, end in sorted((s for s in spans if s[0] <= horizon), key=lambda s: s[0]):
        if merged and (merged[-1][1] is None or start <= merged[-1][1]):
            last = merged[-1]
            last[1] = None if end is None or last[1] is None else max(last[1], end)
        else:
            merged.append([start, end])
    return [(s, None if e is None or e > horizon else e) for s, e in merged]


def seconds(spans: Sequence[Span], horizon: datetime, since: datetime | None = None) -> float:
    """Seconds of the spans up to the horizon, and only from ``since`` when given."""
    total = 0.0
    for start, end in spans:
        lo = start if since is None else max(start, since)
        hi = horizon if end is None else min(end, horizon)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


# --- the auditor's answer, in the shape of the module's --------------------------------

AffectedRow = tuple[str, str, str, str, str, str, str]
"""env, host, service, build_id, ecosystem, name, version."""


@dataclass(frozen=True)
class Expected:
    ids: tuple[str, ...]
    horizon: datetime
    published: datetime | None
    recorded: datetime | None  # None only when every record asked about is withdrawn
    affected: list[AffectedRow]  # sorted
    fixes: dict[AffectedRow, set[str]]  # what each row's ``fixed`` may be, besides None
    windows: list[tuple[str, str, str, tuple[Span, ...], float]]
    hosts: list[tuple[str, str, tuple[Span, ...], float]]
    host_seconds: float
    after_published: float | None
    after_recorded: float | None
    hosts_exposed: int
    withdrawn_only: bool  # known id, but every record of it withdrawn: nothing exposed


class ExposureAuditor:
    """What the facts say about one advisory, read afresh for every question."""

    def __init__(self, facts: Sequence[StoredFact]) -> None:
        self.placements = Auditor(facts)

    def advisories(self, known_at: datetime | None) -> list[StoredFact]:
        return [
            f for f in self.placements.known(known_at) if f.event["kind"] == "advisory_recorded"
        ]

    def latest(self, known_at: datetime | None) -> dict[tuple[str, str], dict[str, Any]]:
        """Each record's latest version: by ``modified``, ties by the later position."""
        best: dict[tuple[str, str], tuple[datetime, int, dict[str, Any]]] = {}
        for fact in self.advisories(known_at):
            e = fact.event
            key = (e["database"], e["advisory_id"])
            mark = (when(e["modified"]), fact.position, e)
            if key not in best or mark[:2] > best[key][:2]:
                best[key] = mark
        return {key: e for key, (_, _, e) in best.items()}

    def exposure(
        self,
        asked: str,
        *,
        at: datetime | None = None,
        known_at: datetime | None = None,
        env: str | None = None,
        now: datetime = NOW,
    ) -> Expected | None:
        """The answer, or None when the id is unknown (as known at ``known_at``)."""
        latest = self.latest(known_at)
        if not any(asked == e["advisory_id"] or asked in e["aliases"] for e in latest.values()):
            return None
        live = {key: e for key, e in latest.items() if e["withdrawn"] is None}
        ids, members = {asked}, set()
        grew = True
        while grew:
            grew = False
            for key, e in live.items():
                names = {e["advisory_id"], *e["aliases"]}
                if key not in members and names & ids:
                    members.add(key)
                    ids |= names
                    grew = True
        packages = [p for key in members for p in live[key]["affected"]]
        published = [when(live[k]["published"]) for k in members if live[k]["published"]]
        recorded = [
            when(f.event["recorded_at"])
            for f in self.advisories(known_at)
            if (f.event["database"], f.event["advisory_id"]) in members
        ]
        horizon = now if at is None else at

        # Each build's affected package versions, from its closure as known at K.
        hits: dict[str, dict[tuple[str, str, str], set[str]]] = {}
        for build_id, closure in self.placements.closures(known_at).items():
            for component in closure:
                who = component_identity(component)
                matching = [p for p in packages if names_component(p, who) and covers(p, who[2])]
                if matching:
                    named = hits.setdefault(build_id, {}).setdefault(who, set())
                    named.update(*(fixes_of(p) for p in matching))
        intervals: list[Interval] = [
            i
            for i in self.placements.intervals(known_at)
            if i.build_id in hits and (env is None or i.env == env)
        ]
        fixes: dict[AffectedRow, set[str]] = {}
        for i in intervals:
            if i.holds(horizon):
                for (ecosystem, name, version), fixed in hits[i.build_id].items():
                    row = (i.env, i.host, i.service, i.build_id, ecosystem, name, version)
                    assert row not in fixes, f"two intervals at once: {row}"
                    fixes[row] = fixed
        by_service: dict[tuple[str, str, str], list[tuple[datetime, datetime | None]]] = {}
        by_host: dict[tuple[str, str], list[tuple[datetime, datetime | None]]] = {}
        for i in intervals:
            by_service.setdefault((i.env, i.host, i.service), []).append((i.start, i.end))
            by_host.setdefault((i.env, i.host), []).append((i.start, i.end))
        windows: list[tuple[str, str, str, tuple[Span, ...], float]] = []
        for (env_name, host, service), raw in sorted(by_service.items()):
            if merged := merge(raw, horizon):
                windows.append((env_name, host, service, tuple(merged), seconds(merged, horizon)))
        hosts: list[tuple[str, str, tuple[Span, ...], float]] = []
        for (env_name, host), raw in sorted(by_host.items()):
            if merged := merge(raw, horizon):
                hosts.append((env_name, host, tuple(merged), seconds(merged, horizon)))

        def after(since: datetime | None) -> float | None:
            if since is None:
                return None
            return sum(seconds(union, horizon, since) for _, _, union, _ in hosts)

        return Expected(
            ids=tuple(sorted({live[k]["advisory_id"] for k in members})),
            horizon=horizon,
            published=min(published, default=None),
            recorded=min(recorded, default=None),
            affected=sorted(fixes),
            fixes=fixes,
            windows=windows,
            hosts=hosts,
            host_seconds=sum(h[3] for h in hosts),
            after_published=after(min(published, default=None)),
            after_recorded=after(min(recorded, default=None)),
            hosts_exposed=sum(1 for h in hosts if any(end is None for _, end in h[2])),
            withdrawn_only=not members,
        )


# --- the module's answer against the auditor's ---------------------------------------


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0.0, abs_tol=SECONDS)


def spans_of(intervals: Iterable[tuple[Any, Any]]) -> tuple[Span, ...]:
    return tuple((when(s), None if e is None else when(e)) for s, e in intervals)


def agree(answer: Exposure, expected: Expected, label: str) -> None:
    """Every field of the answer is the auditor's (``fixed``: one the data names)."""
    rows = [
        (a.env, a.host, a.service, a.build_id, a.ecosystem, a.name, a.version)
        for a in answer.affected
    ]
    assert sorted(rows) == expected.affected, f"{label}: affected"
    order = [(r[0], r[1], r[2], r[4], r[6], r[3]) for r in rows]
    assert order == sorted(order), f"{label}: affected not sorted"
    for row, a in zip(rows, answer.affected, strict=True):
        assert a.fixed is None or a.fixed in expected.fixes[row], (
            f"{label}: fixed {a.fixed!r} for {row} is none of {sorted(expected.fixes[row])}"
        )
    windows = [(w.env, w.host, w.service, spans_of(w.intervals)) for w in answer.windows]
    assert windows == [w[:4] for w in expected.windows], f"{label}: windows"
    for w, ew in zip(answer.windows, expected.windows, strict=True):
        assert close(w.seconds, ew[4]), f"{label}: seconds of {ew[:3]}: {w.seconds} != {ew[4]}"
    hosts = [(h.env, h.host, spans_of(h.intervals)) for h in answer.hosts]
    assert hosts == [h[:3] for h in expected.hosts], f"{label}: hosts"
    for h, eh in zip(answer.hosts, expected.hosts, strict=True):
        assert close(h.seconds, eh[3]), f"{label}: seconds of {eh[:2]}: {h.seconds} != {eh[3]}"
    assert close(answer.host_seconds, expected.host_seconds), f"{label}: host_seconds"
    assert answer.hosts_exposed == expected.hosts_exposed, f"{label}: hosts_exposed"
    assert when(answer.horizon) == expected.horizon, f"{label}: horizon"
    if expected.withdrawn_only:
        # Which ids and times a withdrawn record lends its answer is left open.
        return
    assert answer.ids == expected.ids, f"{label}: ids"
    published = None if answer.published is None else when(answer.published)
    assert published == expected.published, f"{label}: published"
    assert when(answer.recorded) == expected.recorded, f"{label}: recorded"
    assert close(answer.host_seconds_after_published, expected.after_published), (
        f"{label}: after published {answer.host_seconds_after_published}"
        f" != {expected.after_published}"
    )
    assert close(answer.host_seconds_after_recorded, expected.after_recorded), (
        f"{label}: after recorded {answer.host_seconds_after_recorded} != {expected.after_recorded}"
    )


def ask(
    views: Views,
    auditor: ExposureAuditor,
    asked: str,
    label: str,
    *,
    at: datetime | None = None,
    known_at: datetime | None = None,
    env: str | None = None,
) -> None:
    """One question, to the module and to the auditor."""
    expected = auditor.exposure(asked, at=at, known_at=known_at, env=env)
    label = (
        f"{label}: exposure {asked} at {at and stamp(at)} known at"
        f" {known_at and stamp(known_at)} env {env}"
    )
    if expected is None:
        with pytest.raises(UnknownName):
            exposure(views, asked, env=env, at=at, known_at=known_at, now=NOW)
        return
    agree(exposure(views, asked, env=env, at=at, known_at=known_at, now=NOW), expected, label)


# --- the examples ------------------------------------------------------------

HOUR = 3600.0
HEARTBLEED = "CVE-2014-0160"
NIX_HASH = "0" * 32


def nix(name: str, version: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "store_path": f"/nix/store/{NIX_HASH}-{name}-{version}",
    }


def pypi(name: str, version: str) -> dict[str, Any]:
    return {"name": name, "version": version, "purl": f"pkg:pypi/{name}@{version}"}


def advisory(
    s: Arrivals,
    advisory_id: str,
    modified: str,
    recorded: str,
    *affected: dict[str, Any],
    database: str = "nvd",
    aliases: Sequence[str] = (),
    published: str | None = None,
    withdrawn: bool = False,
) -> None:
    """An advisory version as the importer records it: ``occurred_at`` is ``modified``."""
    s.add(
        "advisory_recorded",
        modified,
        recorded,
        env="*",
        advisory_id=advisory_id,
        database=database,
        aliases=list(aliases),
        published=None if published is None else clock(published).isoformat(),
        modified=clock(modified).isoformat(),
        withdrawn=clock(modified).isoformat() if withdrawn else None,
        severity=[],
        affected=list(affected),
        unmatched=[],
    )


def cpe(name: str, **bounds: Any) -> dict[str, Any]:
    return {"ecosystem": "cpe", "name": name, "vendor": name, "bounds": [bounds]}


def heartbleed(s: Arrivals, modified: str, recorded: str, published: str = "10:00") -> None:
    """CVE-2014-0160 as NVD writes it: openssl from 1.0.1 up to 1.0.1g (excluded)."""
    advisory(
        s, HEARTBLEED, modified, recorded, cpe("openssl", start="1.0.1", end="1.0.1g"),
        aliases=["GHSA-heart-bleed-0001"], published=published,
    )  # fmt: skip


def by_hand(
    auditor: ExposureAuditor,
    asked: str,
    *,
    at: str | None = None,
    known_at: str | None = None,
    now: str = "15:00",
) -> Expected | None:
    return auditor.exposure(
        asked,
        at=None if at is None else clock(at),
        known_at=None if known_at is None else clock(known_at),
        now=clock(now),
    )


def module(
    views: Views, asked: str, *, at: str | None = None, known_at: str | None = None
) -> Exposure:
    return exposure(
        views,
        asked,
        at=None if at is None else clock(at),
        known_at=None if known_at is None else clock(known_at),
        now=clock("15:00"),
    )


def both_say(views: Views, auditor: ExposureAuditor, asked: str, **when_: str) -> Exposure:
    """The module agrees with the auditor (which the caller checked by hand)."""
    expected = by_hand(auditor, asked, **when_)
    assert expected is not None
    answer = module(views, asked, **when_)
    agree(answer, expected, f"{asked} {when_}")
    return answer


def test_heartbleed_four_host_hours_two_after_publication(ledger: Ledger) -> None:
    """Issue example: openssl 1.0.1f active 08:00-12:00 on web-001 while 1.0.1g replaces
    it; CVE-2014-0160 published at 10:00 (recorded by the ledger at 10:30): 4 host-hours
    exposed, 2 after publication, 1.5 after the ledger knew; nothing exposed now."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", nix("openssl", "1.0.1f"), nix("zlib", "1.2.11"))
    s.build("api2", "07:30", "07:30", nix("openssl", "1.0.1g"), nix("zlib", "1.2.11"))
    s.activate("web-001", "api1", "08:00", "08:00")
    heartbleed(s, "10:00", "10:30")
    s.activate("web-001", "api2", "12:00", "12:00")
    views = s.record(ledger)
    auditor = ExposureAuditor(list(ledger.facts()))

    now = by_hand(auditor, HEARTBLEED)
    assert now is not None
    assert (now.ids, now.published, now.recorded) == (
        (HEARTBLEED,), clock("10:00"), clock("10:30")
    )  # fmt: skip
    window = ((clock("08:00"), clock("12:00")),)
    assert now.windows == [("production", "web-001", "api", window, 4 * HOUR)]
    assert now.hosts == [("production", "web-001", window, 4 * HOUR)]
    assert (now.host_seconds, now.after_published, now.after_recorded) == (
        4 * HOUR, 2 * HOUR, 1.5 * HOUR
    )  # fmt: skip
    assert (now.affected, now.hosts_exposed) == ([], 0)

    during = by_hand(auditor, HEARTBLEED, at="11:00")
    assert during is not None
    row = ("production", "web-001", "api", bid("api1"), "nix", "openssl", "1.0.1f")
    assert during.affected == [row]
    assert during.fixes[row] == {"1.0.1g"}
    assert during.windows == [("production", "web-001", "api", ((clock("08:00"), None),), 3 * HOUR)]
    assert (during.host_seconds, during.after_published, during.after_recorded) == (
        3 * HOUR, 1 * HOUR, 0.5 * HOUR
    )  # fmt: skip
    assert during.hosts_exposed == 1
    # Before the ledger recorded the advisory, it knew of no such id.
    assert by_hand(auditor, HEARTBLEED, known_at="10:29") is None
    assert by_hand(auditor, "GHSA-heart-bleed-0001") == now  # asked by its alias

    for how in incremental_then_rebuilt(views):
        answer = both_say(views, auditor, HEARTBLEED)
        assert answer.host_seconds == pytest.approx(4 * HOUR, abs=SECONDS), how
        assert answer.host_seconds_after_published == pytest.approx(2 * HOUR, abs=SECONDS)
        answer = both_say(views, auditor, HEARTBLEED, at="11:00")
        assert [a.fixed for a in answer.affected] == ["1.0.1g"], how
        both_say(views, auditor, "GHSA-heart-bleed-0001")
        both_say(views, auditor, HEARTBLEED, at="11:00", known_at="11:00")
        with pytest.raises(UnknownName):
            module(views, HEARTBLEED, known_at="10:29")
        with pytest.raises(UnknownName):
            module(views, "CVE-2099-0001")


def test_a_late_deactivation_arriving_after_a_rebuild(ledger: Ledger) -> None:
    """Issue example: web-001 ran the vulnerable api1 from 08:00; its deactivation at
    09:00 reached the ledger only at 13:00, after the views were rebuilt and after web-002
    moved to the fixed rebuild api2 at 11:00. Before 13:00 the ledger knew web-001 as still
    exposed; after it, as exposed for one hour."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", nix("openssl", "1.0.1f"))
    s.build("api2", "07:30", "07:30", nix("openssl", "1.0.1g"))
    heartbleed(s, "07:45", "07:45", published="06:00")
    s.activate("web-001", "api1", "08:00", "08:00")
    s.activate("web-002", "api1", "08:00", "08:00")
    s.activate("web-002", "api2", "11:00", "11:00")
    views = s.record(ledger)
    views.rebuild()
    s.deactivate("web-001", "api1", "09:00", "13:00")
    ledger.append(s.events[-1:])
    views.catch_up()
    auditor = ExposureAuditor(list(ledger.facts()))

    now = by_hand(auditor, HEARTBLEED)
    assert now is not None
    assert [(h[1], h[2], h[3]) for h in now.hosts] == [
        ("web-001", ((clock("08:00"), clock("09:00")),), 1 * HOUR),
        ("web-002", ((clock("08:00"), clock("11:00")),), 3 * HOUR),
    ]
    assert (now.host_seconds, now.hosts_exposed, now.affected) == (4 * HOUR, 0, [])
    before = by_hand(auditor, HEARTBLEED, known_at="12:00")
    assert before is not None
    assert [(h[1], h[2], h[3]) for h in before.hosts] == [
        ("web-001", ((clock("08:00"), None),), 7 * HOUR),
        ("web-002", ((clock("08:00"), clock("11:00")),), 3 * HOUR),
    ]
    assert before.hosts_exposed == 1
    assert [r[1] for r in before.affected] == ["web-001"]

    for how in incremental_then_rebuilt(views):
        answer = both_say(views, auditor, HEARTBLEED)
        assert answer.hosts_exposed == 0, how
        both_say(views, auditor, HEARTBLEED, known_at="12:00")
        both_say(views, auditor, HEARTBLEED, at="08:30")
        both_say(views, auditor, HEARTBLEED, at="08:30", known_at="12:00")


def test_an_older_advisory_version_arriving_late_changes_nothing(ledger: Ledger) -> None:
    """The latest version of a record is the one with the latest ``modified``, whatever
    their arrival: v2 (09:00, narrowed to zlib < 1.2.12) arrives first, v1 (08:00, every
    zlib) late. Aliases join an OSV record about jinja2 to the CVE."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", nix("zlib", "1.2.13"), pypi("jinja2", "3.1.2"))
    s.build("api2", "07:00", "07:01", nix("zlib", "1.2.11"))
    s.activate("app-01", "api1", "08:00", "08:00")
    s.activate("app-02", "api2", "08:00", "08:00")
    advisory(s, "CVE-2025-0001", "09:00", "09:30", cpe("zlib", end="1.2.12"), published="07:00")
    advisory(s, "CVE-2025-0001", "08:00", "10:00", cpe("zlib"), published="07:00")
    jinja = {
        "ecosystem": "pypi", "name": "jinja2", "source_ecosystem": "PyPI",
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.3"}]}],
    }  # fmt: skip
    advisory(
        s, "GHSA-jjjj-0000-0001", "11:00", "11:00", jinja, database="osv",
        aliases=["CVE-2025-0001"], published="10:00",
    )  # fmt: skip
    views = s.record(ledger)
    auditor = ExposureAuditor(list(ledger.facts()))

    now = by_hand(auditor, "CVE-2025-0001")
    assert now is not None
    assert now.ids == ("CVE-2025-0001", "GHSA-jjjj-0000-0001")
    assert (now.published, now.recorded) == (clock("07:00"), clock("09:30"))
    assert now.affected == [
        ("production", "app-01", "api", bid("api1"), "pypi", "jinja2", "3.1.2"),
        ("production", "app-02", "api", bid("api2"), "nix", "zlib", "1.2.11"),
    ]
    alone = by_hand(auditor, "CVE-2025-0001", known_at="10:30")
    assert alone is not None
    assert alone.ids == ("CVE-2025-0001",)
    assert [r[1] for r in alone.affected] == ["app-02"]  # v1's every-zlib never counts
    assert (alone.hosts_exposed, alone.host_seconds) == (1, 7 * HOUR)

    for how in incremental_then_rebuilt(views):
        answer = both_say(views, auditor, "CVE-2025-0001")
        assert answer.ids == ("CVE-2025-0001", "GHSA-jjjj-0000-0001"), how
        both_say(views, auditor, "GHSA-jjjj-0000-0001")
        both_say(views, auditor, "CVE-2025-0001", known_at="10:30")
        both_say(views, auditor, "CVE-2025-0001", known_at="09:45", at="09:00")


def test_a_withdrawn_advisory_exposes_nothing_from_then_on(ledger: Ledger) -> None:
    """A record whose latest version is withdrawn contributes nothing; as known before the
    withdrawal arrived, it exposed what it named."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", pypi("jinja2", "3.1.2"))
    s.activate("app-01", "api1", "08:00", "08:00")
    package = {"ecosystem": "pypi", "name": "jinja2", "versions": ["3.1.2"]}
    advisory(s, "PYSEC-2025-9", "09:00", "09:00", package, database="osv")
    advisory(s, "PYSEC-2025-9", "10:00", "12:00", package, database="osv", withdrawn=True)
    views = s.record(ledger)
    auditor = ExposureAuditor(list(ledger.facts()))
    gone = by_hand(auditor, "PYSEC-2025-9")
    assert gone is not None
    assert gone.withdrawn_only
    assert (gone.affected, gone.windows, gone.hosts, gone.host_seconds) == ([], [], [], 0.0)
    before = by_hand(auditor, "PYSEC-2025-9", known_at="11:00")
    assert before is not None
    assert before.hosts_exposed == 1
    for how in incremental_then_rebuilt(views):
        answer = both_say(views, auditor, "PYSEC-2025-9")
        assert answer.hosts == [], how
        both_say(views, auditor, "PYSEC-2025-9", known_at="11:00")


def test_an_update_that_drops_an_alias_splits_the_group(ledger: Ledger) -> None:
    """The group is made of each record's latest version: once the CVE's update (modified
    09:00) no longer names the GHSA, the GHSA's jinja2 is not the CVE's any more. As known
    before the update arrived, the two were one vulnerability."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", nix("openssl", "1.0.2"), pypi("jinja2", "3.1.2"))
    s.activate("app-01", "api1", "08:00", "08:00")
    jinja = {"ecosystem": "pypi", "name": "jinja2", "versions": ["3.1.2"]}
    advisory(s, "GHSA-aaaa-bbbb-cccc", "08:00", "08:00", jinja, database="osv")
    advisory(s, "CVE-2025-1001", "08:00", "08:10", cpe("openssl"), aliases=["GHSA-aaaa-bbbb-cccc"])
    advisory(s, "CVE-2025-1001", "09:00", "09:10", cpe("openssl"))
    views = s.record(ledger)
    auditor = ExposureAuditor(list(ledger.facts()))
    now = by_hand(auditor, "CVE-2025-1001")
    assert now is not None
    assert now.ids == ("CVE-2025-1001",)
    assert [r[5] for r in now.affected] == ["openssl"]
    joined = by_hand(auditor, "CVE-2025-1001", known_at="09:00")
    assert joined is not None
    assert joined.ids == ("CVE-2025-1001", "GHSA-aaaa-bbbb-cccc")
    assert [r[5] for r in joined.affected] == ["openssl", "jinja2"]  # nix, then pypi
    for how in incremental_then_rebuilt(views):
        answer = both_say(views, auditor, "CVE-2025-1001", known_at="09:00")
        assert len(answer.affected) == 2, how
        answer = both_say(views, auditor, "CVE-2025-1001")
        assert answer.ids == ("CVE-2025-1001",), how


def test_recorded_is_when_the_ledger_first_knew_of_the_advisory(ledger: Ledger) -> None:
    """An update of a record (NVD re-modifies old CVEs all the time) does not make the
    vulnerability newly known: "after recorded" (time to remediate once known) counts
    from the first version the ledger recorded, 09:00, not from the update at 12:00."""
    s = Arrivals()
    s.build("api1", "07:00", "07:00", nix("openssl", "1.0.1f"))
    s.activate("web-001", "api1", "08:00", "08:00")
    heartbleed(s, "08:30", "09:00", published="08:00")
    heartbleed(s, "11:30", "12:00", published="08:00")  # the update: same data, new modified
    views = s.record(ledger)
    auditor = ExposureAuditor(list(ledger.facts()))
    now = by_hand(auditor, HEARTBLEED)
    assert now is not None
    assert (now.recorded, now.host_seconds, now.after_recorded) == (
        clock("09:00"), 7 * HOUR, 6 * HOUR
    )  # fmt: skip
    for how in incremental_then_rebuilt(views):
        answer = both_say(views, auditor, HEARTBLEED)
        assert answer.host_seconds_after_recorded == pytest.approx(6 * HOUR, abs=SECONDS), how


def test_the_auditor_merges_touching_windows_across_builds_and_services() -> None:
    """The auditor's own arithmetic: spans that touch are one; the horizon opens the
    span holding it and cuts the seconds; a span starting after it is left out."""
    t = [clock(f"{h:02d}:00") for h in range(8, 16)]
    assert merge([(t[2], t[4]), (t[0], t[2]), (t[5], None)], t[3]) == [(t[0], None)]
    assert merge([(t[2], t[4]), (t[0], t[2]), (t[5], None)], t[7]) == [
        (t[0], t[4]), (t[5], None)
    ]  # fmt: skip
    assert merge([(t[0], t[3]), (t[1], t[2])], t[7]) == [(t[0], t[3])]
    assert merge([(t[0], t[3])], t[3]) == [(t[0], t[3])]  # [from, to): 11:00 is not held
    assert seconds([(t[0], t[4]), (t[5], None)], t[7], since=t[2]) == 4 * HOUR
    assert in_osv_range([{"introduced": "0"}, {"last_affected": "3.1.2"}], "3.1.2")
    assert not in_osv_range([{"introduced": "1.0.0"}, {"fixed": "1.2.0"}], "1.2.0")
    assert in_osv_range(
        [{"introduced": "1.0.0"}, {"fixed": "1.2.0"}, {"introduced": "2.0.0"}], "2.5.0"
    )
    assert in_bounds({"start": "1.0.1", "end": "1.0.1g"}, "1.0.1f")
    assert not in_bounds({"start": "1.0.1", "start_excluding": True}, "1.0.1")
    assert in_bounds({"end": "1.0.1g", "end_including": True}, "1.0.1g")


# --- random late streams against the auditor ----------------------------------------

HORIZON = 20  # facts happen within this many minutes after BASE
ENVS = ("production", "staging")
HOSTS = ("app-01", "app-02", "app-03")
SERVICES = ("api", "web")
DELAYS = (0, 0, 0, 1, 3, 15, 90)  # minutes between happening and being recorded
NIX_VERSIONS = {"openssl": ("1.0.1", "1.0.2", "1.1.1", "3.0.1"), "zlib": ("1.2.11", "1.3.0")}
PYPI_VERSIONS = {"jinja2": ("2.10.0", "3.1.2", "3.1.4")}
EDGES = ("1.0.0", "1.0.2", "1.2.0", "1.2.11", "2.0.0", "3.1.2", "3.1.3", "9.0.0")
"""Range ends besides the versions closures hold: between, on and beyond them."""
CVE, GHSA, PYSEC = "CVE-2025-1001", "GHSA-aaaa-bbbb-cccc", "PYSEC-2025-7"
LONE = "OSV-2025-9"  # no aliases; its later versions may be withdrawals
ALIAS_ONLY = "GHSA-zzzz-zzzz-zzzz"  # named in aliases, no record of its own
NEVER = "CVE-2099-0001"


@st.composite
def bounds_(draw: st.DrawFn, name: str) -> dict[str, Any]:
    pool = sorted(
        {*NIX_VERSIONS.get(name, ()), *PYPI_VERSIONS.get(name, ()), *EDGES}, key=version_key
    )
    start, end = draw(st.sampled_from([None, *pool])), draw(st.sampled_from([None, *pool]))
    return {
        "start": start,
        "start_excluding": draw(st.booleans()) if start else False,
        "end": end,
        "end_including": draw(st.booleans()) if end else False,
    }


@st.composite
def osv_range(draw: st.DrawFn, name: str) -> dict[str, Any]:
    pool = sorted({*PYPI_VERSIONS[name], *EDGES}, key=version_key)
    edges = sorted(
        draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True)), key=version_key
    )
    events: list[dict[str, str]] = [{"introduced": "0" if draw(st.booleans()) else edges[0]}]
    rest = edges[1:] if events[0]["introduced"] != "0" else edges
    while rest:
        end_kind = draw(st.sampled_from(("fixed", "fixed", "last_affected", "open")))
        if end_kind == "open":
            break
        events.append({end_kind: rest.pop(0)})
        if len(rest) < 1 or not draw(st.booleans()):
            break
        events.append({"introduced": rest.pop(0)})
    return {"type": "ECOSYSTEM", "events": events}


@st.composite
def affected_packages(draw: st.DrawFn, database: str) -> list[dict[str, Any]]:
    packages = []
    if database == "nvd":
        for name in draw(
            st.lists(
                st.sampled_from(("openssl", "zlib", "jinja2")), min_size=1, max_size=2, unique=True
            )
        ):
            versions = [*NIX_VERSIONS.get(name, ()), *PYPI_VERSIONS.get(name, ())]
            packages.append(
                {
                    "ecosystem": "cpe",
                    "name": name,
                    "vendor": name,
                    "bounds": draw(st.lists(bounds_(name), min_size=1, max_size=2)),
                    "versions": draw(st.lists(st.sampled_from(versions), max_size=1)),
                }
            )
    elif draw(st.integers(0, 3)):
        packages.append(
            {
                "ecosystem": "pypi",
                "name": "jinja2",
                "source_ecosystem": "PyPI",
                "purl": "pkg:pypi/jinja2",
                "ranges": draw(st.lists(osv_range("jinja2"), min_size=1, max_size=2)),
                "versions": draw(st.lists(st.sampled_from(PYPI_VERSIONS["jinja2"]), max_size=1)),
            }
        )
    return packages


@dataclass(frozen=True)
class Scenario:
    """A stream in arrival order, how it is appended and caught up, and what is asked."""

    events: list[Envelope]
    chunks: list[int]  # events per append
    catch_ups: list[bool]  # catch the views up after each append?
    probes: list[bool]  # ... and then ask about "now"?
    read_batch: int
    questions: list[tuple[str, datetime | None, datetime | None, str | None]]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a failing example: the stream, one fact a line."""
        printer.text(repr(self))

    def __repr__(self) -> str:
        lines = []
        for e in self.events:
            d = e.model_dump(mode="json")
            head = (
                f"  occurred {d['occurred_at'][11:19]} recorded {d['recorded_at'][11:19]}"
                f" {d['kind']}"
            )
            if d["kind"] == "build_recorded":
                what = " ".join(f"{c['name']}={c['version']}" for c in d["closure"])
                lines.append(f"{head} {d['build_id'][:3]} {what}")
            elif d["kind"] == "advisory_recorded":
                lines.append(
                    f"{head} {d['database']} {d['advisory_id']} aliases={d['aliases']}"
                    f" published={d['published'] and d['published'][11:19]}"
                    f" withdrawn={bool(d['withdrawn'])} affected={d['affected']}"
                )
            else:
                lines.append(f"{head} {d['env']}/{d['host']}/{d['service']} {d['build_id'][:3]}")
        questions = [(i, t and stamp(t), k and stamp(k), env) for i, t, k, env in self.questions]
        return (
            "Scenario(arrival order:\n" + "\n".join(lines) + f"\n chunks={self.chunks}"
            f" catch_ups={self.catch_ups} probes={self.probes} read_batch={self.read_batch}"
            f"\n questions={questions})"
        )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    happenings: list[tuple[str, float, int, dict[str, Any]]] = []  # kind, minute, delay, fields
    builds = [bid(f"b{i}") for i in range(draw(st.integers(2, 4)))]
    for build in builds:
        closure = [
            nix(name, draw(st.sampled_from(versions)))
            for name, versions in NIX_VERSIONS.items()
            if draw(st.booleans())
        ] + [pypi("jinja2", draw(st.sampled_from(PYPI_VERSIONS["jinja2"])))] * draw(
            st.integers(0, 1)
        )
        closure = closure or [nix("zlib", "1.3.0")]
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
    records = [(CVE, "nvd"), (GHSA, "osv"), (PYSEC, "osv")]
    records = records[: draw(st.integers(1, 3))] + [(LONE, "osv")] * draw(st.integers(0, 1))
    for advisory_id, database in records:
        published = draw(st.sampled_from((None, -60, 0, 5, 12, HORIZON + 5)))
        for version in range(draw(st.integers(1, 3))):
            others = [r for r, _ in records if r not in (advisory_id, LONE)] + [ALIAS_ONLY]
            # Few moments: updates often tie on modified (the later position wins). A
            # withdrawal is the record's last change (it may still arrive late).
            withdrawn = advisory_id == LONE and version > 0 and draw(st.booleans())
            modified = HORIZON if withdrawn else draw(st.sampled_from((-30, 0, 5, 12)))
            happenings.append(
                (
                    "advisory_recorded",
                    modified,
                    draw(st.sampled_from(DELAYS)),
                    {
                        "env": "*",
                        "advisory_id": advisory_id,
                        "database": database,
                        "aliases": []
                        if advisory_id == LONE
                        else draw(st.lists(st.sampled_from(others), unique=True)),
                        "published": None if published is None else stamp(minutes(published)),
                        "modified": stamp(minutes(modified)),
                        "withdrawn": stamp(minutes(modified)) if withdrawn else None,
                        "severity": [],
                        "affected": draw(affected_packages(database)),
                        "unmatched": [],
                    },
                )
            )
    key, minute = (ENVS[0], HOSTS[0], SERVICES[0]), 0
    hosts = HOSTS[: draw(st.integers(1, len(HOSTS)))]
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(("activation_completed",) * 3 + ("deactivated",)))
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
        fields["build_id"] = draw(st.sampled_from(builds))
        if kind == "activation_completed":
            fields["generation"] = 1
        happenings.append((kind, minute, draw(st.sampled_from(DELAYS)), fields))
    # Arrival: by when each was sent; recorded_at strictly increasing in arrival order.
    arrival = sorted(range(len(happenings)), key=lambda i: happenings[i][1] + happenings[i][2])
    events: list[Envelope] = []
    recorded: list[datetime] = []
    for i in arrival:
        kind, minute_, delay, fields = happenings[i]
        sent = minutes(max(minute_, 0) + delay)
        recorded.append(max(sent, recorded[-1] + timedelta(seconds=1)) if recorded else sent)
        events.append(
            make_event(
                kind,
                event_id=str(uuid.UUID(int=len(events) + 1)),
                occurred_at=stamp(minutes(minute_)),
                recorded_at=stamp(recorded[-1]),
                actor="deploy-bot",
                **fields,
            )
        )
    happened = sorted({m for _, m, _, _ in happenings if m >= 0})
    moments = sorted(
        {minutes(-1), minutes(HORIZON + 1)}
        | {minutes(m) for m in happened}
        | {minutes(m + 0.5) for m in happened}
    )
    knowns = sorted(
        {recorded[0] - timedelta(seconds=1)}
        | set(recorded)
        | {r + timedelta(milliseconds=500) for r in recorded}
    )
    ids = [r for r, _ in records] * 3 + [ALIAS_ONLY, NEVER]
    questions = draw(
        st.lists(
            st.tuples(
                st.sampled_from(ids),
                st.sampled_from([None, None, *moments]),
                st.sampled_from([None, None, *knowns]),
                st.sampled_from([None, None, *ENVS]),
            ),
            min_size=4,
            max_size=10,
        )
    )
    return Scenario(
        events,
        chunks=draw(st.lists(st.integers(1, 4), max_size=30)),
        catch_ups=draw(st.lists(st.booleans(), max_size=30)),
        probes=draw(st.lists(st.booleans(), max_size=30)),
        read_batch=draw(st.integers(1, 6)),
        questions=questions,
    )


def envs_known(auditor: ExposureAuditor, known_at: datetime | None) -> set[str]:
    """Envs with an activation known by then: an env the ledger has not seen may be
    refused (UnknownName) rather than answered with nothing."""
    return {
        f.event["env"]
        for f in auditor.placements.known(known_at)
        if f.event["kind"] == "activation_completed"
    }


def compare(views: Views, auditor: ExposureAuditor, scenario: Scenario, how: str) -> None:
    for asked in sorted({q[0] for q in scenario.questions} | {CVE}):
        ask(views, auditor, asked, how)
    for asked, at, known_at, env in scenario.questions:
        seen = env is None or env in envs_known(auditor, known_at)
        ask(views, auditor, asked, how, at=at, known_at=known_at, env=env if seen else None)


# A failing run shrinks for up to hypothesis's 300 s: let it report rather than be
# cut off by the suite's 300 s timeout.
@pytest.mark.timeout(900)
@settings(
    max_examples=examples(40),
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_exposure_agrees_with_the_auditor(
    fresh_ledger: FreshLedger,  # noqa: F811  (imported above: the fixture)
    scenario: Scenario,
) -> None:
    with fresh_ledger() as ledger:
        views = Views(ledger, batch=scenario.read_batch, commit_events=scenario.read_batch * 2)
        try:

            def probe(start: int) -> None:
                so_far = ExposureAuditor(list(ledger.facts()))
                for asked in (CVE, ALIAS_ONLY):
                    ask(views, so_far, asked, f"after {start} facts")

            feed(ledger, views, scenario, probe)
            auditor = ExposureAuditor(list(ledger.facts()))
            assert [when(f.event["recorded_at"]) for f in auditor.placements.facts] == [
                e.recorded_at for e in scenario.events
            ]  # stored in arrival order, with the recorded_at given
            compare(views, auditor, scenario, "incremental")
            views.rebuild()
            compare(views, auditor, scenario, "rebuilt")
        finally:
            views.recorder.datastore.close()
