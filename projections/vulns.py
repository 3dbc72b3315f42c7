"""Every advisory that affects what runs: ``ledger vulns``.

What runs is the placements active now (or at T, as known at K). Their builds' package
names select the advisories that could touch them (``advisory_keys``); each candidate's
latest version (as known at K) is then matched exactly, as ``exposure`` matches
(``projections.exposure.affected_builds_each``: the closures' rows are read once for all
candidates). Records about one vulnerability (joined by ids and aliases) make one row,
ranked by CVSS base score, then hosts exposed; its hosts and services are counted from
per-build bitmaps (``Reach``). On the bench fleet (10,000 hosts, 20,000 advisories,
``python -m bench.exposure``) that took an answer from about 5 s to under half a second.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.application import batched
from ledger.errors import InvalidInput
from projections.advisories import (
    CPE,
    SELECT_ADVISORIES,
    SEVERITIES,
    AdvisoryRecord,
    key_of,
    latest,
    severity_of,
)
from projections.exposure import affected_builds_each
from projections.queries import collector_paused, placement_condition, require_env
from projections.store import Tx, to_micros
from projections.view import IN_LIST

if TYPE_CHECKING:
    from projections.matching import CpeMap
    from projections.runner import Views

Row = dict[str, Any]
Placement = tuple[str, str, str, str]
"""env, host, service, build id."""
THRESHOLDS = {"none": 0.0, "low": 0.1, "medium": 4.0, "high": 7.0, "critical": 9.0}


def vulns(
    views: Views,
    *,
    env: str | None = None,
    at: datetime | None = None,
    known_at: datetime | None = None,
    min_severity: str | None = None,
    cpe_map: CpeMap | None = None,
) -> list[Row]:
    """One row per vulnerability affecting a placement active now (or at ``at``, as
    known at ``known_at``), most severe first (see the module docstring)."""
    from projections.matching import CpeMap

    if min_severity is not None and min_severity not in THRESHOLDS:
        raise InvalidInput(f"unknown severity {min_severity!r} (known: {', '.join(SEVERITIES)})")
    known = None if known_at is None else to_micros(known_at)
    cpe_map = cpe_map or CpeMap.EMPTY
    # Tens of thousands of tuples, no cycles: the collector would only rescan the heap.
    with collector_paused(), views.read() as tx:
        require_env(tx, env)
        condition, params = placement_condition(at, known_at, env)
        placements = tx.tuples(
            f"SELECT p.env, p.host, p.service, p.build_id FROM placements p WHERE {condition}",
            params,
        )
        by_build: dict[str, list[Placement]] = defaultdict(list)
        for placement in placements:
            by_build[placement[3]].append(placement)
        records = _candidates(tx, set(by_build), known, cpe_map)
        exposed: dict[str, set[str]] = {}
        found: dict[str, dict[tuple[str, str, str | None], None]] = {}
        for record, affected in zip(
            records, affected_builds_each(tx, records, known, cpe_map), strict=True
        ):
            held = {build: versions for build, versions in affected.items() if build in by_build}
            if not held:
                continue
            exposed[record.advisory_id] = set(held)
            found[record.advisory_id] = {
                (v.name, v.version, v.fixed): None for versions in held.values() for v in versions
            }
        reach = Reach({build: by_build[build] for build in set().union(*exposed.values())})
    rows = [
        _row([r for r in vulnerability if r.advisory_id in exposed], exposed, found, reach)
        for vulnerability in _vulnerabilities([r for r in records if r.advisory_id in exposed])
    ]
    if min_severity is not None:
        floor = THRESHOLDS[min_severity]
        rows = [r for r in rows if r["score"] is not None and r["score"] >= floor]
    # Unscored last; a score of 0.0 is a score.
    rows.sort(key=lambda r: (-(-1 if r["score"] is None else r["score"]), -r["hosts"], r["id"]))
    return rows


class Reach:
    """How many hosts and services a set of builds reaches among the placements.

    A vulnerability's row counts the distinct (env, host) and (env, host, service) of the
    placements of every build it affects. Held as sets of tuples, that was a pass over
    tens of thousands of placements per advisory: seconds for a few hundred advisories on
    the bench fleet (``bench.exposure``). Here each build has a bitmap of the hosts and
    one of the services it runs on (Python ints, bit i for the i-th one seen); a set of
    builds reaches the bits of their union, so a count is a few hundred ORs and a
    ``bit_count``, exact whatever the builds share."""

    def __init__(self, by_build: dict[str, list[Placement]]) -> None:
        hosts: dict[tuple[str, str], int] = {}
        services: dict[tuple[str, str, str], int] = {}
        for placements in by_build.values():
            for env, host, service, _ in placements:
                hosts.setdefault((env, host), len(hosts))
                services.setdefault((env, host, service), len(services))
        self.hosts = {
            build: _bitmap((hosts[env, host] for env, host, _, _ in placements), len(hosts))
            for build, placements in by_build.items()
        }
        self.services = {
            build: _bitmap(
                (services[env, host, service] for env, host, service, _ in placements),
                len(services),
            )
            for build, placements in by_build.items()
        }

    def count(self, builds: Iterable[str]) -> tuple[int, int]:
        """(hosts, services) the placements of ``builds`` run on."""
        hosts = services = 0
        for build in builds:
            hosts |= self.hosts[build]
            services |= self.services[build]
        return hosts.bit_count(), services.bit_count()


def _bitmap(indexes: Iterable[int], size: int) -> int:
    bits = bytearray((size + 7) // 8)
    for index in indexes:
        bits[index >> 3] |= 1 << (index & 7)
    return int.from_bytes(bits, "little")


def _candidates(
    tx: Tx, builds: set[str], known: int | None, cpe_map: CpeMap
) -> list[AdvisoryRecord]:
    """The latest live version (as known at ``known``) of every advisory naming a
    package the ``builds`` hold."""
    keys: dict[str, set[str]] = defaultdict(set)
    for batch in batched(sorted(builds), IN_LIST):
        marks = ", ".join("?" * len(batch))
        for ecosystem, match_name, name in tx.tuples(
            "SELECT DISTINCT ecosystem, match_name, name FROM build_packages "
            f"WHERE build_id IN ({marks})",
            batch,
        ):
            keys[ecosystem].add(match_name)
            if name.isascii():
                keys[CPE].add(name.lower())
    mapped = {name.lower(): product for (_, product), name in cpe_map.names.items()}
    keys[CPE] |= {mapped[n] for n in keys[CPE] if n in mapped}
    ids: set[str] = set()
    for ecosystem, wanted in keys.items():
        for batch in batched(sorted(wanted), IN_LIST):
            marks = ", ".join("?" * len(batch))
            ids |= {
                advisory_id
                for (advisory_id,) in tx.tuples(
                    "SELECT DISTINCT a.advisory_id FROM advisory_keys k JOIN advisories a "
                    f"ON a.position = k.position WHERE k.ecosystem = ? AND k.key IN ({marks})",
                    [ecosystem, *batch],
                )
            }
    recorded, when = ("", []) if known is None else (" AND recorded_at <= ?", [known])
    records: list[AdvisoryRecord] = []
    for batch in batched(sorted(ids), IN_LIST):
        marks = ", ".join("?" * len(batch))
        records += latest(
            AdvisoryRecord.from_row(row)
            for row in tx.tuples(
                f"{SELECT_ADVISORIES} WHERE advisory_id IN ({marks}){recorded}", [*batch, *when]
            )
        )
    return [r for r in records if r.withdrawn is None]


def _vulnerabilities(records: Sequence[AdvisoryRecord]) -> list[list[AdvisoryRecord]]:
    """``records`` grouped by vulnerability: joined by ids and aliases, transitively."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for record in records:
        for alias in record.aliases:
            parent[root(alias)] = root(record.advisory_id)
    groups: dict[str, list[AdvisoryRecord]] = defaultdict(list)
    for record in records:
        groups[root(record.advisory_id)].append(record)
    return list(groups.values())


def _row(
    records: Iterable[AdvisoryRecord],
    exposed: dict[str, set[str]],
    found: dict[str, dict[tuple[str, str, str | None], None]],
    reach: Reach,
) -> Row:
    records = list(records)
    names = {name for r in records for name in (r.advisory_id, *r.aliases)}
    key = key_of(names)  # as the alerts name it
    builds = set().union(*(exposed[r.advisory_id] for r in records))
    hosts, services = reach.count(builds)
    scores = [r.score for r in records if r.score is not None]
    score = max(scores) if scores else None
    versions: dict[tuple[str, str, str | None], None] = {}
    for r in records:
        versions |= found[r.advisory_id]
    return {
        "id": key,
        "aliases": sorted(names - {key}),
        "score": score,
        "severity": severity_of(score),
        "hosts": hosts,
        "services": services,
        "packages": [
            {"name": name, "version": version, "fixed": fixed}
            for name, version, fixed in sorted(versions, key=lambda v: (v[0], v[1]))
        ],
        "summary": next((r.summary for r in records if r.summary), ""),
    }
