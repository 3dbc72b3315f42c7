"""A package's versions over time: how many hosts of each env ran each version, from the
placements' intervals — the data of the dashboard's "versions over time" picture
("openssl 1.0.1p gone from production on 14 January").

A host runs a version while any placement on it (any service) holds a build whose closure
holds that version; the count per (env, version) is of hosts, as ``where --summary``
counts them, so at any moment T the counts here equal ``where_counts(name, at=T)``. The
answer is the list of changes (a step function): at each moment a count changed, the new
count, in time order, ties by (env, ecosystem, version); plus, per (env, version), when it
was first run and, if no host runs it now, when it was last run.

Intervals are the placements view's, as the ledger knows them now (late facts in their
place); an interval still open counts up to now.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projections.exposure import merge
from projections.queries import asked_packages, held_builds, iso, require_env

if TYPE_CHECKING:
    from projections.runner import Views

VersionKey = tuple[str, str, str]
"""(env, ecosystem, version)"""
FOREVER = 2**63 - 1
"""A horizon no interval ends after: ``merge`` keeps every end as it is."""


@dataclass(frozen=True)
class Change:
    """From ``at`` on, ``hosts`` hosts of ``env`` run ``version`` (until the next change)."""

    at: int
    env: str
    ecosystem: str
    version: str
    hosts: int


def versions_over_time(views: Views, name: str, env: str | None = None) -> dict[str, Any]:
    """``changes`` (the step function, see the module docstring) and ``versions`` (per
    (env, version): first run, last run or None while it runs) of package ``name``, a
    name or a purl as ``where`` takes it. An unknown package or env is UnknownName."""
    with views.read() as tx:
        packages = asked_packages(tx, name, None, None)
        require_env(tx, env)
        held = held_builds(tx, packages)
        env_clause, env_params = ("", []) if env is None else (" AND env = ?", [env])
        runs: dict[tuple[str, str, str, str], list[tuple[int, int | None]]] = defaultdict(list)
        for build in sorted(held):
            for env_name, host, start, end in tx.tuples(
                "SELECT env, host, valid_from, valid_to FROM placements "
                f"WHERE build_id = ? AND retired_at IS NULL{env_clause}",
                [build, *env_params],
            ):
                for ecosystem, version in held[build]:
                    runs[env_name, host, ecosystem, version].append((start, end))
    # Per host and version: the union of its placements' intervals, as +1/-1 steps.
    steps: dict[int, dict[VersionKey, int]] = defaultdict(lambda: defaultdict(int))
    for (env_name, _, ecosystem, version), spans in runs.items():
        key = (env_name, ecosystem, version)
        for start, end in merge(spans, FOREVER):
            steps[start][key] += 1
            if end is not None:
                steps[end][key] -= 1
    counts: dict[VersionKey, int] = defaultdict(int)
    changes: list[Change] = []
    first: dict[VersionKey, int] = {}
    last: dict[VersionKey, int | None] = {}
    for moment in sorted(steps):
        for key, delta in sorted(steps[moment].items()):
            if not delta:
                continue
            counts[key] += delta
            changes.append(Change(moment, *key, counts[key]))
            first.setdefault(key, moment)
            last[key] = moment if counts[key] == 0 else None
    return {
        "name": name,
        "env": env,
        "changes": [
            {
                "at": iso(c.at),
                "env": c.env,
                "ecosystem": c.ecosystem,
                "version": c.version,
                "hosts": c.hosts,
            }
            for c in changes
        ],
        "versions": [
            {
                "env": key[0],
                "ecosystem": key[1],
                "version": key[2],
                "first_run": iso(first[key]),
                "last_run": iso(last[key]),
                "hosts_now": counts[key],
            }
            for key in sorted(first)
        ],
    }
