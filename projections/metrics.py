"""``ledger metrics``: the four DORA delivery figures, per environment and service.

All four come from the stream, over its whole span:

* **deployment frequency** — generations that activated a new build of the service,
  per day between the environment's first and last activation (at least one day);
* **lead time** — from a build being recorded (CI built its source revision; the
  stream has no commit times) to its first activation in the environment, median;
* **change failure rate** — of the generations that touched the service (activated
  it, or tried to), the share that failed or were rolled back;
* **time to restore** — from a bad generation being known (it failed, or the rollback
  of it was planned) to the next good generation completing, median.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from projections.queries import Row, env_clause, require_env
from projections.runner import Views

DAY = 86_400 * 1_000_000
HOUR = 3_600 * 1_000_000


def median_hours(values: list[int]) -> float | None:
    return round(statistics.median(values) / HOUR, 2) if values else None


def metrics(views: Views, env: str | None = None) -> list[Row]:
    clause, params = env_clause(env)
    with views.read() as tx:
        require_env(tx, env)
        gens = tx.query(f"SELECT * FROM generations WHERE 1 = 1{clause}", params)
        touched = tx.query(
            "SELECT env, service, generation, MIN(valid_from) AS first FROM placements "
            f"WHERE retired_by IS NULL{clause} GROUP BY env, service, generation",
            params,
        )
        tried = tx.query(
            "SELECT DISTINCT env, service, generation FROM failures "
            f"WHERE kind = 'activation_failed'{clause}",
            params,
        )
        leads = tx.query(
            "SELECT p.env, p.service, MIN(p.valid_from) - b.built_at AS lead FROM placements p "
            "JOIN builds b ON b.build_id = p.build_id "
            f"WHERE p.retired_by IS NULL{env_clause(env, 'p.env')[0]} "
            "GROUP BY p.env, p.service, p.build_id, b.built_at",
            params,
        )
    generation = {(g["env"], g["number"]): g for g in gens}
    restore = restore_times(gens)
    per: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"deployed": set(), "touched": set(), "leads": []}
    )
    span: dict[str, list[int]] = defaultdict(list)
    for row in touched:
        item = per[(row["env"], row["service"])]
        item["deployed"].add(row["generation"])
        item["touched"].add(row["generation"])
        span[row["env"]].append(row["first"])
    for row in tried:
        per[(row["env"], row["service"])]["touched"].add(row["generation"])
    for row in leads:
        if row["lead"] is not None and row["lead"] >= 0:
            per[(row["env"], row["service"])]["leads"].append(row["lead"])

    result = []
    for (env_name, service), item in sorted(per.items()):
        days = max((max(span[env_name], default=0) - min(span[env_name], default=0)) / DAY, 1.0)
        bad = [
            n
            for n in sorted(item["touched"])
            if (g := generation.get((env_name, n))) is not None
            and (g["status"] == "failed" or g["rolled_back_by"] is not None)
        ]
        known = [n for n in item["touched"] if (env_name, n) in generation]
        result.append(
            {
                "env": env_name,
                "service": service,
                "deployments": len(item["deployed"]),
                "deployments_per_day": round(len(item["deployed"]) / days, 3),
                "lead_time_hours": median_hours(item["leads"]),
                "change_failure_rate": round(len(bad) / len(known), 3) if known else None,
                "time_to_restore_hours": median_hours(
                    [restore[(env_name, n)] for n in bad if (env_name, n) in restore]
                ),
            }
        )
    return result


def restore_times(gens: list[Row]) -> dict[tuple[str, int], int]:
    """For each bad generation: microseconds from it being known bad to the next good
    generation of its environment completing (absent while none has)."""
    by_env: dict[str, list[Row]] = defaultdict(list)
    for g in gens:
        by_env[g["env"]].append(g)
    times = {}
    for env, rows in by_env.items():
        rows.sort(key=lambda g: g["number"])
        planned = {g["number"]: g["planned_at"] for g in rows}
        good = [
            g["finished_at"]
            for g in rows
            if g["status"] == "completed" and g["rolled_back_by"] is None
        ]
        for g in rows:
            if g["rolled_back_by"] is not None:
                known = planned.get(g["rolled_back_by"])
            elif g["status"] == "failed":
                known = g["finished_at"]
            else:
                continue
            if known is None:
                continue
            later = [t for t in good if t is not None and t >= known]
            if later:
                times[(env, g["number"])] = min(later) - known
    return times
