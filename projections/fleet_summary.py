"""The fleet at a glance: per environment and per generation, how many hosts and
placements there are and how healthy they are, counted in the database.

This is the dashboard's first screen at fleet scale. The whole topology (one row per
active placement: 64,895 on the 10,000-host bench fleet) costs seconds to read, send and
draw; this answer is a few hundred rows however large the fleet, and it follows the
topology's rules exactly (``queries.topology``, ``queries._placement``, ``queries._health``):

- a placement's health is its service's last report, else its host's own; none: unknown;
- a report is stale once ``occurred_at + ttl_s`` is before ``now``;
- a host's health is the worst of its placements'; it is stale when every placement at
  that worst level is (so one fresh "critical" makes a critical host fresh);
- a host's generation is that of its newest placement (the largest number).

Hosts are then counted per env and per generation (the host's), and placements per env,
generation and service. The hosts that need attention (warning or critical) are listed,
worst first then by name, at most ``attention_limit`` per env with their total; for an
env of at most ``TILE_LIMIT`` hosts every host is listed, so a page can draw a tile each.

One statement computes all of it: the placements with their health are read once (a
common table expression used several times, which both SQLite and PostgreSQL
materialise), and each part of the answer is a ``GROUP BY`` or a window over it, tagged
by the part it belongs to. A service is counted under its host's generation by joining
the hosts back (the 10,000-host bench fleet, SQLite, one run on a loaded machine: 0.19 s
for the whole answer, against 0.31-0.36 s with a window ``MAX(generation) OVER
(PARTITION BY env, host)``, which sorts every placement).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from projections.queries import iso, require_env
from projections.runner import Views
from projections.store import Tx

TILE_LIMIT = 500
"""Envs with at most this many hosts get one tile per host; larger ones, counts per
generation. 500 tiles of 14 px draw at once in any browser and still read as a picture
(the 300-host demo fits whole); the 9,091-host production of the bench fleet, drawn a
tile each, took 11,578 elements and most of its 44 s first screen."""
ATTENTION_LIMIT = 16
"""Hosts needing attention listed per env by default (the others counted)."""
LEVELS = ("unknown", "ok", "warning", "critical")
"""Health by level: a host's health is its placements' highest level."""

Row = dict[str, Any]

_STALE = (
    "CASE WHEN {h}.ttl_s IS NOT NULL AND CAST({h}.occurred_at AS DOUBLE PRECISION) / 1000000.0"
    " + {h}.ttl_s < CAST(? AS DOUBLE PRECISION) THEN 1 ELSE 0 END"
)
"""``queries._health``'s ``at / 1e6 + ttl < now``, the same floating-point operations in
the same order (so the same answer at the edge, on both backends)."""

_PLACED = f"""
placed AS (
  SELECT p.env, p.host, p.service, p.generation,
    CASE COALESCE(hs.state, hh.state)
      WHEN 'ok' THEN 1 WHEN 'warning' THEN 2 WHEN 'critical' THEN 3 ELSE 0 END AS level,
    CASE WHEN hs.state IS NOT NULL THEN {_STALE.format(h="hs")}
      WHEN hh.state IS NOT NULL THEN {_STALE.format(h="hh")} ELSE 0 END AS stale
  FROM placements p
  LEFT JOIN health hs ON hs.env = p.env AND hs.host = p.host AND hs.service = p.service
  LEFT JOIN health hh ON hh.env = p.env AND hh.host = p.host AND hh.service = ''
  WHERE p.end_position IS NULL AND p.retired_by IS NULL{{env}}
),
hosts AS (
  -- rank = level * 2 + 1 when some placement at the host's worst level is fresh, + 0
  -- when all are stale: the largest rank gives the level and the staleness at once.
  SELECT env, host, MAX(generation) AS generation, COUNT(*) AS placements,
    MAX(level * 2 + 1 - stale) AS rank
  FROM placed GROUP BY env, host
),
sized AS (SELECT env, COUNT(*) AS hosts FROM hosts GROUP BY env),
attention AS (
  SELECT env, host, generation, placements, rank,
    ROW_NUMBER() OVER (PARTITION BY env ORDER BY rank / 2 DESC, host{{collate}}) AS n
  FROM hosts WHERE rank / 2 >= 2
)"""

_COUNTS = (
    "SUM(CASE WHEN {level} = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN {level} = 2 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN {level} = 3 THEN 1 ELSE 0 END), SUM(CASE WHEN {level} = 0 THEN 1 ELSE 0 END)"
)
_HOST_COUNTS = _COUNTS.format(level="rank / 2")
# (rank - rank / 2 * 2: the remainder, without "%", which psycopg reads as a placeholder.)
_HOST_STALE = "SUM(CASE WHEN rank / 2 > 0 AND rank - rank / 2 * 2 = 0 THEN 1 ELSE 0 END)"

_PARTS = f"""
SELECT 'generation', env, generation, NULL, COUNT(*), SUM(placements), {_HOST_COUNTS},
  {_HOST_STALE}
FROM hosts GROUP BY env, generation
UNION ALL
SELECT 'service', p.env, h.generation, p.service, COUNT(DISTINCT p.host), COUNT(*),
  {_COUNTS.format(level="p.level")}, SUM(p.stale)
FROM placed p JOIN hosts h ON h.env = p.env AND h.host = p.host
GROUP BY p.env, h.generation, p.service
UNION ALL
SELECT 'attention', env, generation, host, n, placements, rank, 0, 0, 0, 0
FROM attention WHERE n <= ?
UNION ALL
SELECT 'tile', h.env, h.generation, h.host, 0, h.placements, h.rank, 0, 0, 0, 0
FROM hosts h JOIN sized s ON s.env = h.env WHERE s.hosts <= ?"""


def fleet_summary(
    views: Views,
    env: str | None = None,
    *,
    attention_limit: int = ATTENTION_LIMIT,
    tile_limit: int = TILE_LIMIT,
    now: datetime | None = None,
) -> Row:
    """The fleet's first screen (see the module's docstring), health judged stale or not
    as of ``now`` (by default the clock's). Every env with a generation or an active
    placement is in it (one with nothing active, all zeros); ``env`` only that one (an
    env the ledger never saw is UnknownName)."""
    seconds = time.time() if now is None else now.timestamp()
    with views.read() as tx:
        require_env(tx, env)
        rows = _parts(tx, env, seconds, attention_limit, tile_limit)
        names = _envs(tx, env)
    summary = {name: _empty_env(name) for name in names}
    for part, env_name, generation, name, *numbers in rows:
        entry = summary.setdefault(env_name, _empty_env(env_name))
        if part == "generation":
            _add_generation(entry, generation, numbers)
        elif part == "service":
            _add_service(entry, generation, name, numbers)
        elif part == "attention":
            entry["attention"]["hosts"].append((numbers[0], _host(name, generation, numbers)))
        else:
            entry["tiles"].append(_host(name, generation, numbers))
    return {
        "now": iso(round(seconds * 1_000_000)),
        "tile_limit": tile_limit,
        "attention_limit": attention_limit,
        "envs": [_finish(summary[name], tile_limit) for name in sorted(summary)],
    }


def _parts(
    tx: Tx, env: str | None, seconds: float, attention_limit: int, tile_limit: int
) -> list[tuple[Any, ...]]:
    placed = _PLACED.format(
        env=" AND p.env = ?" if env else "",
        # Hosts by name in code-point order on both backends (PostgreSQL's default
        # collation may be a locale's), as Python sorts them.
        collate=' COLLATE "C"' if tx.postgres else "",
    )
    params: list[Any] = [seconds, seconds, *([env] if env else []), attention_limit, tile_limit]
    return tx.tuples(f"WITH {placed}{_PARTS}", params)


def _envs(tx: Tx, env: str | None) -> list[str]:
    """The envs the answer holds even with nothing active: those with generations (the
    dashboard's list, ``/api/status``)."""
    if env is not None:
        return [env]
    return [str(e) for (e,) in tx.tuples("SELECT DISTINCT env FROM generations")]


def _health(numbers: Sequence[int]) -> Row:
    ok, warning, critical, unknown, stale = (int(n or 0) for n in numbers)
    return {"ok": ok, "warning": warning, "critical": critical, "unknown": unknown,
            "stale": stale}  # fmt: skip


def _empty_env(env: str) -> Row:
    return {"env": env, "hosts": 0, "placements": 0, "health": _health([0] * 5),
            "generations": {}, "attention": {"total": 0, "hosts": []}, "tiles": []}  # fmt: skip


def _add_generation(entry: Row, generation: int, numbers: Sequence[int]) -> None:
    hosts, placements, *health = numbers
    group = entry["generations"].setdefault(generation, {"services": []})
    group.update(generation=int(generation), hosts=int(hosts), placements=int(placements),
                 health=_health(health))  # fmt: skip
    entry["hosts"] += int(hosts)
    entry["placements"] += int(placements)
    for level, count in _health(health).items():
        entry["health"][level] += count


def _add_service(entry: Row, generation: int, service: str, numbers: Sequence[int]) -> None:
    hosts, placements, *health = numbers
    group = entry["generations"].setdefault(generation, {"services": []})
    group["services"].append(
        {"service": service, "hosts": int(hosts), "placements": int(placements),
         "health": _health(health)}
    )  # fmt: skip


def _host(host: str, generation: int, numbers: Sequence[int]) -> Row:
    _, placements, rank, *_ = numbers
    level = int(rank) // 2
    return {"host": host, "health": LEVELS[level], "stale": level > 0 and int(rank) % 2 == 0,
            "generation": int(generation), "placements": int(placements)}  # fmt: skip


def _finish(entry: Row, tile_limit: int) -> Row:
    """Generations newest first, services and tiles by name, attention in its order."""
    generations = [entry["generations"][g] for g in sorted(entry["generations"], reverse=True)]
    for group in generations:
        group["services"].sort(key=lambda s: s["service"])
    health = entry["health"]
    listed = [host for _, host in sorted(entry["attention"]["hosts"], key=lambda a: a[0])]
    return {
        **entry,
        "generations": generations,
        "attention": {"total": health["warning"] + health["critical"], "hosts": listed},
        "tiles": sorted(entry["tiles"], key=lambda t: t["host"])
        if entry["hosts"] <= tile_limit
        else None,
    }
