"""Exposure: which hosts and services ran a build an advisory affects, and from when to when.

``exposure(views, ID)`` answers the auditor's question after an advisory: were we exposed,
where, from when to when, and how long after we knew. It reads the advisory's records
(every database's record about the vulnerability, joined by aliases: see
``projections.advisories.group``), finds the package versions they cover among the
closures the ledger holds (``projections.matching``: ecosystem, name and version range
in that ecosystem's order), and then the placements of the builds holding them
(``projections.placements``: intervals in valid time, versions in transaction time).

- The **horizon** is ``at``, or now. Only what started by the horizon counts, and an
  interval still open there (or holding it) is "still exposed".
- **Windows**: per (env, host, service), the intervals its affected builds were active,
  merged where they overlap or touch (an upgrade from one affected build to another is
  one window); per (env, host), the same over all its services. Host-hours are the
  hosts' windows added up; the part after the advisory was published, and after the
  ledger recorded it (time to remediate once known), is the same clipped at that moment.
- **As known at K** (``known_at``): the advisory versions, builds and placement versions
  recorded by K; an interval whose end was recorded after K was open at K.
- ``affected``: the placements holding the horizon (with neither ``at`` nor ``known_at``:
  the open ones, as ``where`` answers now), one row per affected package version.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ledger.application import batched
from projections.advisories import CPE, AdvisoryRecord, first_recorded, group
from projections.queries import collector_paused, require_env
from projections.store import Tx, to_micros
from projections.view import IN_LIST

if TYPE_CHECKING:
    from projections.matching import CpeMap
    from projections.runner import Views

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Span = tuple[int, int | None]
"""An interval in epoch microseconds, half-open; None: still open at the horizon."""


def when(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, order=True)
class Affected:
    """A placement active at the horizon whose build holds an affected package version."""

    env: str
    host: str
    service: str
    ecosystem: str
    version: str
    build_id: str
    name: str
    fixed: str | None
    advisories: tuple[str, ...] = field(compare=False)


@dataclass(frozen=True)
class Window:
    """Where one (env, host, service) — or one (env, host), ``service`` None — was
    exposed: merged intervals, None as an end meaning still exposed at the horizon."""

    env: str
    host: str
    service: str | None
    intervals: tuple[tuple[datetime, datetime | None], ...]
    seconds: float

    @property
    def first_exposed(self) -> datetime:
        return self.intervals[0][0]

    @property
    def last_exposed(self) -> datetime | None:
        """When the exposure ended; None while it lasts."""
        return self.intervals[-1][1]


@dataclass(frozen=True)
class Exposure:
    """The answer of ``exposure``; see the module docstring."""

    ids: tuple[str, ...]
    horizon: datetime
    published: datetime | None
    recorded: datetime
    withdrawn: tuple[str, ...]
    affected: list[Affected]
    windows: list[Window]
    hosts: list[Window]
    host_seconds: float
    host_seconds_after_published: float | None
    host_seconds_after_recorded: float
    hosts_exposed: int
    unmatched: tuple[str, ...]

    @property
    def services_exposed(self) -> int:
        return sum(1 for w in self.windows if w.last_exposed is None)


@dataclass(frozen=True)
class HeldVersion:
    """An affected package version a build's closure holds, and what fixes it."""

    ecosystem: str
    name: str
    version: str
    fixed: str | None
    advisories: tuple[str, ...]


def exposure(
    views: Views,
    advisory_id: str,
    *,
    env: str | None = None,
    at: datetime | None = None,
    known_at: datetime | None = None,
    now: datetime | None = None,
    cpe_map: CpeMap | None = None,
) -> Exposure:
    """Where the vulnerability ``advisory_id`` names was exposed (module docstring).
    An advisory no record names (as known at ``known_at``), or an env the ledger never
    saw, is UnknownName."""
    from projections.matching import CpeMap

    horizon = to_micros(at or now or datetime.now(UTC))
    known = None if known_at is None else to_micros(known_at)
    # No reference cycles are made below, but hundreds of thousands of tuples are: with
    # the collector on, they set off full collections of the heap (a third of the time on
    # the bench fleet; see queries.collector_paused, which where uses for the same).
    with collector_paused():
        with views.read() as tx:
            records = group(tx, advisory_id, known_at)
            recorded = first_recorded(tx, records, known_at)
            require_env(tx, env)
            live = [r for r in records if r.withdrawn is None]
            held = affected_builds(tx, live, known, cpe_map or CpeMap.EMPTY)
            spans = _spans(tx, held, known, env)
        return _answer(records, live, recorded, held, spans, horizon, at, known_at)


def _answer(
    records: Sequence[AdvisoryRecord],
    live: Sequence[AdvisoryRecord],
    recorded: int,
    held: dict[str, list[HeldVersion]],
    spans: list[tuple[tuple[str, str, str], str, Span]],
    horizon: int,
    at: datetime | None,
    known_at: datetime | None,
) -> Exposure:
    """The exposure of ``records`` from the placements (``spans``) of the builds that
    hold what they affect (``held``)."""
    published = [r.published for r in records if r.published is not None]
    if at is None and known_at is None:
        holding = [(key, build) for key, build, span in spans if span[1] is None]
    else:
        holding = [
            (key, build)
            for key, build, (start, end) in spans
            if start <= horizon and (end is None or end > horizon)
        ]
    affected = _affected(holding, held)
    by_service: dict[tuple[str, str, str], list[Span]] = defaultdict(list)
    for key, _, span in spans:
        if span[0] <= horizon:
            by_service[key].append(span)
    by_host: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for (env_name, host, _), service_spans in by_service.items():
        by_host[env_name, host] += service_spans
    windows = [_window(*key, merge(s, horizon), horizon) for key, s in sorted(by_service.items())]
    host_spans = [(key, merge(s, horizon)) for key, s in sorted(by_host.items())]
    hosts = [_window(*key, None, s, horizon) for key, s in host_spans]
    first_published = min(published) if published else None
    return Exposure(
        ids=tuple(sorted({r.advisory_id for r in records})),
        horizon=when(horizon),
        published=None if first_published is None else when(first_published),
        recorded=when(recorded),
        withdrawn=tuple(sorted(r.advisory_id for r in records if r.withdrawn is not None)),
        affected=affected,
        windows=windows,
        hosts=hosts,
        host_seconds=sum(w.seconds for w in hosts),
        host_seconds_after_published=(
            None
            if first_published is None
            else sum(_seconds(s, horizon, first_published) for _, s in host_spans)
        ),
        host_seconds_after_recorded=sum(_seconds(s, horizon, recorded) for _, s in host_spans),
        hosts_exposed=sum(1 for w in hosts if w.last_exposed is None),
        unmatched=tuple(sorted({text for r in live for text in r.unmatched})),
    )


def _affected(
    holding: Sequence[tuple[tuple[str, str, str], str]], held: dict[str, list[HeldVersion]]
) -> list[Affected]:
    """The ``Affected`` rows of the placements ``holding`` the horizon, in their order.

    Tens of thousands on a fleet: sorted as plain tuples (C comparisons) rather than as
    dataclasses (a Python ``__lt__`` building two tuples per comparison). Each tuple ends
    with its index, so equal keys keep their order, as ``sorted`` keeps equal Affected."""
    versions = [(key, build, v) for key, build in holding for v in held[build]]
    rows = [
        (*key, v.ecosystem, v.version, build, v.name, v.fixed, index)
        for index, (key, build, v) in enumerate(versions)
    ]
    rows.sort()
    return [Affected(*row[:8], versions[row[8]][2].advisories) for row in rows]


def affected_builds(
    tx: Tx, records: Sequence[AdvisoryRecord], known: int | None, cpe_map: CpeMap
) -> dict[str, list[HeldVersion]]:
    """build id → the affected package versions its closure holds (builds recorded by
    ``known`` only, when given), for the packages ``records`` name."""
    return _held_by(records, component_rows(tx, records, known, cpe_map), cpe_map)


def affected_builds_each(
    tx: Tx, records: Sequence[AdvisoryRecord], known: int | None, cpe_map: CpeMap
) -> list[dict[str, list[HeldVersion]]]:
    """``affected_builds`` of each record alone, in order, with the closures' rows read
    once for all: ``vulns`` asks this of hundreds of records, and one query per package
    of each took most of its time on a large fleet (``bench.exposure``)."""
    rows = component_rows(tx, records, known, cpe_map)
    return [_held_by([record], rows, cpe_map) for record in records]


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
"""How NVD names fold (``projections.matching``): ASCII letters only."""
ComponentRow = tuple[str, str, str, str, str]
"""build id, ecosystem, match_name, name (as written), version: a closure's component."""
LookupKey = tuple[str | None, str]
"""``projections.matching.lookup_keys``: (ecosystem, match_name), or (None, lower-case
ASCII name) for an NVD product."""


def component_rows(
    tx: Tx, records: Sequence[AdvisoryRecord], known: int | None, cpe_map: CpeMap
) -> dict[LookupKey, list[ComponentRow]]:
    """The components (of builds recorded by ``known``, when given) each lookup key of
    the packages ``records`` name selects, in a few IN-list queries.

    NVD products are selected with SQL's ``lower()``, which on PostgreSQL folds more than
    ASCII: rows are put under the key their name folds to in ASCII, which is exactly the
    rows ``names_match`` accepts; the others could never match."""
    from projections.matching import lookup_keys

    wanted: dict[str | None, set[str]] = defaultdict(set)
    for record in records:
        for package in record.affected:
            for ecosystem, key in lookup_keys(package, cpe_map):
                wanted[ecosystem].add(key)
    recorded = "" if known is None else " AND b.recorded_at <= ?"
    when_params: list[Any] = [] if known is None else [known]
    found: dict[LookupKey, list[ComponentRow]] = defaultdict(list)
    for ecosystem, keys in sorted(wanted.items(), key=lambda item: item[0] or ""):
        for batch in batched(sorted(keys), IN_LIST):
            if ecosystem is None:
                marks = ", ".join(["lower(?)"] * len(batch))
                clause, params = f"lower(k.name) IN ({marks})", batch
            else:
                marks = ", ".join("?" * len(batch))
                clause = f"k.ecosystem = ? AND k.match_name IN ({marks})"
                params = [ecosystem, *batch]
            rows = tx.tuples(
                "SELECT k.build_id, k.ecosystem, k.match_name, k.name, k.version "
                "FROM build_packages k JOIN builds b ON b.build_id = k.build_id "
                f"WHERE {clause}{recorded}",
                [*params, *when_params],
            )
            for row in rows:
                key = row[3].translate(_ASCII_LOWER) if ecosystem is None else row[2]
                found[ecosystem, key].append(row)
    return found


def _held_by(
    records: Sequence[AdvisoryRecord],
    rows: dict[LookupKey, list[ComponentRow]],
    cpe_map: CpeMap,
) -> dict[str, list[HeldVersion]]:
    """``affected_builds`` from the rows ``component_rows`` selected."""
    from projections.matching import affects, fixed_version, lookup_keys, names_match

    found: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    for record in records:
        for package in record.affected:
            for key in lookup_keys(package, cpe_map):
                # Builds share versions: each (name, version) is judged once, and its
                # fixed version found once.
                verdicts: dict[tuple[str, str, str, str], bool] = {}
                fixes: dict[tuple[str, str, str, str], str | None] = {}
                for build, eco, match_name, name, version in rows.get(key, ()):
                    judged = (eco, match_name, name, version)
                    verdict = verdicts.get(judged)
                    if verdict is None:
                        verdict = verdicts[judged] = names_match(
                            package, eco, match_name, name, cpe_map
                        ) and affects(package, version, eco)
                    if not verdict:
                        continue
                    entry = found.setdefault(
                        (build, eco, match_name, version, name),
                        {"fixed": None, "advisories": set()},
                    )
                    entry["advisories"].add(record.advisory_id)
                    if entry["fixed"] is None:
                        if judged not in fixes:
                            fixes[judged] = fixed_version(package, version, eco)
                        entry["fixed"] = fixes[judged]
    held: dict[str, list[HeldVersion]] = defaultdict(list)
    for (build, eco, _, version, name), entry in sorted(found.items()):
        held[build].append(
            HeldVersion(eco, name, version, entry["fixed"], tuple(sorted(entry["advisories"])))
        )
    return dict(held)


def _spans(
    tx: Tx, held: dict[str, list[HeldVersion]], known: int | None, env: str | None
) -> list[tuple[tuple[str, str, str], str, Span]]:
    """((env, host, service), build, interval) of every placement of the ``held``
    builds, as known now or at ``known``."""
    env_clause, env_params = ("", []) if env is None else (" AND env = ?", [env])
    if known is None:
        condition, params = "retired_at IS NULL", []
    else:
        condition = "recorded_from <= ? AND (retired_at IS NULL OR retired_at > ?)"
        params = [known, known]
    spans: list[tuple[tuple[str, str, str], str, Span]] = []
    for build in sorted(held):
        rows = tx.tuples(
            "SELECT env, host, service, valid_from, valid_to, recorded_to FROM placements "
            f"WHERE build_id = ? AND {condition}{env_clause}",
            [build, *params, *env_params],
        )
        if known is None:
            spans += [((e, h, s), build, (start, end)) for e, h, s, start, end, _ in rows]
            continue
        for env_name, host, service, start, end, end_known in rows:
            # An end recorded after K was not known yet at K: the interval was open.
            unknown_end = end is not None and end_known > known
            spans.append(((env_name, host, service), build, (start, None if unknown_end else end)))
    return spans


def merge(spans: Iterable[Span], horizon: int) -> list[Span]:
    """Intervals merged where they overlap or touch; an interval holding the horizon
    (or open) ends in None."""
    if isinstance(spans, list) and len(spans) == 1:  # a service that ran one build
        ((start, end),) = spans
        return [(int(start), None if end is None or end > horizon else end)]
    merged: list[Span] = []
    for start, end in sorted(spans, key=itemgetter(0)):
        stop = None if end is None or end > horizon else end
        if merged:
            first, last_end = merged[-1]
            if last_end is None:
                break  # open to the horizon: it holds every later start
            if start <= last_end:
                merged[-1] = (first, None if stop is None else max(last_end, stop))
                continue
        merged.append((int(start), stop))
    return merged


def _seconds(spans: Sequence[Span], horizon: int, since: int | None = None) -> float:
    total = 0
    for start, end in spans:
        begin = start if since is None else max(start, since)
        stop = horizon if end is None else end
        total += max(0, stop - begin)
    return total / 1_000_000


def _window(env: str, host: str, service: str | None, spans: list[Span], horizon: int) -> Window:
    # when() inlined, with timedelta's positional form: a large answer makes 150,000 of
    # these (bench.exposure), and the keyword form and the call cost a third more.
    return Window(
        env,
        host,
        service,
        tuple(
            [
                (EPOCH + timedelta(0, 0, s), None if e is None else EPOCH + timedelta(0, 0, e))
                for s, e in spans
            ]
        ),
        _seconds(spans, horizon),
    )


def iso_window(window: Window) -> dict[str, Any]:
    """A window's JSON form."""
    return {
        "env": window.env,
        "host": window.host,
        **({} if window.service is None else {"service": window.service}),
        "intervals": [
            [_iso(start), None if end is None else _iso(end)] for start, end in window.intervals
        ],
        "first_exposed": _iso(window.first_exposed),
        "last_exposed": None if window.last_exposed is None else _iso(window.last_exposed),
        "hours": round(window.seconds / 3600, 6),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def exposure_json(answer: Exposure) -> dict[str, Any]:
    """The JSON form of an exposure (``--json``, the API)."""
    return {
        "ids": list(answer.ids),
        "horizon": _iso(answer.horizon),
        "published": None if answer.published is None else _iso(answer.published),
        "recorded": _iso(answer.recorded),
        "withdrawn": list(answer.withdrawn),
        "hosts_exposed": answer.hosts_exposed,
        "services_exposed": answer.services_exposed,
        "host_hours": round(answer.host_seconds / 3600, 6),
        "host_hours_after_published": (
            None
            if answer.host_seconds_after_published is None
            else round(answer.host_seconds_after_published / 3600, 6)
        ),
        "host_hours_after_recorded": round(answer.host_seconds_after_recorded / 3600, 6),
        "affected": [
            {
                "env": a.env,
                "host": a.host,
                "service": a.service,
                "build_id": a.build_id,
                "ecosystem": a.ecosystem,
                "name": a.name,
                "version": a.version,
                "fixed": a.fixed,
                "advisories": list(a.advisories),
            }
            for a in answer.affected
        ],
        "windows": [iso_window(w) for w in answer.windows],
        "hosts": [iso_window(w) for w in answer.hosts],
        "unmatched": list(answer.unmatched),
    }


__all__ = ["CPE", "Affected", "Exposure", "Window", "exposure", "exposure_json"]
