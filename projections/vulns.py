"""Every advisory that affects what runs: ``ledger vulns``.

What runs is the placements active now (or at T, as known at K). Their builds' package
names select the advisories that could touch them (``advisory_keys``); each candidate's
latest version (as known at K) is then matched exactly, as ``exposure`` matches
(``projections.exposure.affected_builds``). Records about one vulnerability (joined by
ids and aliases) make one row, ranked by CVSS base score, then hosts exposed.
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
    latest,
    severity_of,
)
from projections.exposure import affected_builds
from projections.queries import placement_condition, require_env
from projections.store import Tx, to_micros
from projections.view import IN_LIST

if TYPE_CHECKING:
    from projections.matching import CpeMap
    from projections.runner import Views

Row = dict[str, Any]
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
    with views.read() as tx:
        require_env(tx, env)
        condition, params = placement_condition(at, known_at, env)
        placements = tx.tuples(
            f"SELECT p.env, p.host, p.service, p.build_id FROM placements p WHERE {condition}",
            params,
        )
        running = {build for *_, build in placements}
        records = _candidates(tx, running, known, cpe_map)
        exposed: dict[str, set[tuple[str, str, str, str]]] = {}
        found: dict[str, dict[tuple[str, str, str | None], None]] = {}
        for record in records:
            held = {
                build: versions
                for build, versions in affected_builds(tx, [record], known, cpe_map).items()
                if build in running
            }
            if not held:
                continue
            exposed[record.advisory_id] = {p for p in placements if p[3] in held}
            found[record.advisory_id] = {
                (v.name, v.version, v.fixed): None for versions in held.values() for v in versions
            }
    rows = [
        _row([r for r in vulnerability if r.advisory_id in exposed], exposed, found)
        for vulnerability in _vulnerabilities([r for r in records if r.advisory_id in exposed])
    ]
    if min_severity is not None:
        floor = THRESHOLDS[min_severity]
        rows = [r for r in rows if r["score"] is not None and r["score"] >= floor]
    rows.sort(key=lambda r: (-(r["score"] or -1), -r["hosts"], r["id"]))
    return rows


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
    exposed: dict[str, set[tuple[str, str, str, str]]],
    found: dict[str, dict[tuple[str, str, str | None], None]],
) -> Row:
    records = list(records)
    ids = sorted({r.advisory_id for r in records}, key=lambda i: (not i.startswith("CVE-"), i))
    placements = set().union(*(exposed[r.advisory_id] for r in records))
    scores = [r.score for r in records if r.score is not None]
    score = max(scores) if scores else None
    versions: dict[tuple[str, str, str | None], None] = {}
    for r in records:
        versions |= found[r.advisory_id]
    return {
        "id": ids[0],
        "aliases": sorted({*ids[1:], *(a for r in records for a in r.aliases)} - {ids[0]}),
        "score": score,
        "severity": severity_of(score),
        "hosts": len({(env, host) for env, host, _, _ in placements}),
        "services": len({(env, host, service) for env, host, service, _ in placements}),
        "packages": [
            {"name": name, "version": version, "fixed": fixed}
            for name, version, fixed in sorted(versions, key=lambda v: (v[0], v[1]))
        ],
        "summary": next((r.summary for r in records if r.summary), ""),
    }
