"""The DORA delivery figures over time: ``projections.metrics``'s four figures per UTC day,
ISO week (from Monday) or month — the data of the dashboard's DORA picture.

The definitions are ``metrics``'s, each fact put in the bucket of the moment it speaks of:

* **deployments** — a (service, generation) that activated a new build, in the bucket
  of its first activation;
* **lead time** — per build, from its recording to its first activation in the
  environment, in the bucket of that activation (median);
* **change failure rate** — of the (service, generation) pairs a generation touched
  (activated, or tried to), the share whose generation failed or was rolled back, in
  the bucket of the generation's planning;
* **time to restore** — per bad generation (counted once, whichever services it
  touched), from it being known bad to the next good generation completing
  (``metrics.restore_times``), in the bucket of its planning (median).

Buckets run from the first to the last with any fact, the empty ones included (no
deployment: 0; a median or a rate of nothing: null).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ledger.errors import InvalidInput, UnknownName
from projections.metrics import DAY, median_hours, restore_times
from projections.queries import env_clause, iso, require_env
from projections.store import to_micros

if TYPE_CHECKING:
    from projections.runner import Views

Bucket = Literal["day", "week", "month"]
EPOCH_DAY = date(1970, 1, 1)
MAX_BUCKETS = 3_700
"""Ten years of days: more is refused (ask by week or month)."""


def bucket_start(moment: int, bucket: Bucket) -> date:
    """The first day of the UTC ``bucket`` holding ``moment`` (epoch microseconds)."""
    day = EPOCH_DAY + timedelta(days=moment // DAY)  # integers: exact at midnight
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def next_start(start: date, bucket: Bucket) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def _micros(day: date) -> int:
    return to_micros(datetime(day.year, day.month, day.day, tzinfo=UTC))


def metrics_over_time(
    views: Views, env: str | None = None, service: str | None = None, bucket: Bucket = "week"
) -> dict[str, Any]:
    """The four figures per bucket (module docstring), of ``env`` (or every env) and
    ``service`` (or every service). An unknown env or service is UnknownName."""
    clause, params = env_clause(env)
    s_clause, s_params = ("", []) if service is None else (" AND service = ?", [service])
    with views.read() as tx:
        require_env(tx, env)
        if service is not None and not tx.tuples(
            f"SELECT 1 FROM builds WHERE service = ?{clause} UNION "
            f"SELECT 1 FROM placements WHERE service = ?{clause}",
            [service, *params, service, *params],
        ):
            where = f" in {env}" if env else ""
            raise UnknownName(f"service {service!r} has no build or placement{where}")
        gens = tx.query(f"SELECT * FROM generations WHERE 1 = 1{clause}", params)
        touched = tx.query(
            "SELECT env, service, generation, MIN(valid_from) AS first FROM placements "
            f"WHERE retired_by IS NULL{clause}{s_clause} GROUP BY env, service, generation",
            [*params, *s_params],
        )
        tried = tx.query(
            "SELECT DISTINCT env, service, generation FROM failures "
            f"WHERE kind = 'activation_failed'{clause}{s_clause}",
            [*params, *s_params],
        )
        leads = tx.query(
            "SELECT MIN(p.valid_from) AS first, MIN(p.valid_from) - b.built_at AS lead "
            "FROM placements p JOIN builds b ON b.build_id = p.build_id "
            f"WHERE p.retired_by IS NULL{env_clause(env, 'p.env')[0]}"
            f"{'' if service is None else ' AND p.service = ?'} "
            "GROUP BY p.env, p.service, p.build_id, b.built_at",
            [*params, *s_params],
        )
    generation = {(g["env"], g["number"]): g for g in gens}
    restore = restore_times(gens)
    per: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"deployments": 0, "leads": [], "known": 0, "bad": 0, "restores": {}}
    )

    def into(moment: int) -> dict[str, Any]:
        return per[_micros(bucket_start(moment, bucket))]

    for row in touched:
        into(row["first"])["deployments"] += 1
    for row in leads:
        if row["lead"] is not None and row["lead"] >= 0:
            into(row["first"])["leads"].append(row["lead"])
    pairs = {(r["env"], r["service"], r["generation"]) for r in [*touched, *tried]}
    for env_name, _, number in pairs:
        g = generation.get((env_name, number))
        if g is None:
            continue
        item = into(g["planned_at"])
        item["known"] += 1
        if g["status"] == "failed" or g["rolled_back_by"] is not None:
            item["bad"] += 1
            if (env_name, number) in restore:
                item["restores"][env_name, number] = restore[env_name, number]
    return {
        "env": env,
        "service": service,
        "bucket": bucket,
        "buckets": _filled(per, bucket),
    }


def _filled(per: dict[int, dict[str, Any]], bucket: Bucket) -> list[dict[str, Any]]:
    if not per:
        return []
    start = bucket_start(min(per), bucket)
    last = bucket_start(max(per), bucket)
    rows: list[dict[str, Any]] = []
    while start <= last:
        if len(rows) >= MAX_BUCKETS:
            raise InvalidInput(
                f"more than {MAX_BUCKETS:,} {bucket}s: ask with a longer bucket (week, month)"
            )
        end = next_start(start, bucket)
        item = per.get(_micros(start))
        rows.append(_figures(start, end, item))
        start = end
    return rows


def _figures(start: date, end: date, item: dict[str, Any] | None) -> dict[str, Any]:
    item = item or {"deployments": 0, "leads": [], "known": 0, "bad": 0, "restores": {}}
    return {
        "start": iso(_micros(start)),
        "end": iso(_micros(end)),
        "deployments": item["deployments"],
        "lead_time_hours": median_hours(item["leads"]),
        "builds": len(item["leads"]),
        "change_failure_rate": round(item["bad"] / item["known"], 3) if item["known"] else None,
        "changes": item["known"],
        "failed_changes": item["bad"],
        "time_to_restore_hours": median_hours(list(item["restores"].values())),
        "restores": len(item["restores"]),
    }
