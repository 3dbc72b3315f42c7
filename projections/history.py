"""The history view: everything that happened on each host.

One row per distribution, activation, drain, deactivation, host report and health
report. ``ledger history --host H`` reads it in time order (``occurred_at``, ties by
position) and leaves out the health reports that repeat the state before them
(heartbeats, not history): that is decided when reading, since a report that arrives
late can turn a repeat into a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View

COLUMNS = (
    "position",
    "env",
    "host",
    "service",
    "kind",
    "build_id",
    "generation",
    "occurred_at",
    "actor",
    "detail",
    "state",
)


def detail(event: dict[str, Any]) -> str:
    """One line saying what the fact adds to who/what/when."""
    kind = event["kind"]
    if kind == "distribution_completed":
        return f"{event['bytes']} bytes in {event['duration_s']:g} s"
    if kind in ("distribution_failed", "activation_failed"):
        code = f" (exit {event['exit_code']})" if event.get("exit_code") is not None else ""
        return f"{event['reason']}{code}"
    if kind in ("activation_completed", "drain_completed"):
        return f"in {event['duration_s']:g} s"
    if kind == "drain_started":
        return f"{event['in_flight']} in flight"
    if kind == "drain_timed_out":
        return f"{event['in_flight']} still in flight after {event['timeout_s']:g} s"
    if kind == "health_reported":
        metric = f" ({event['metric']:g})" if event.get("metric") is not None else ""
        return f"{event['state']}{metric} {event.get('description', '')}".rstrip()
    if kind == "host_reported":
        return ", ".join(f"{e['service']}={e['build_id'][:12]}" for e in event["manifest"])
    return ""


class HistoryView(View):
    name = "history"
    description = "per-host event history (history)"
    schema_version = 2  # 2: every health report kept, repeats dropped when read
    former_tables = ("history_health",)
    kinds = frozenset(
        {
            "distribution_completed",
            "distribution_failed",
            "activation_completed",
            "activation_failed",
            "drain_started",
            "drain_completed",
            "drain_timed_out",
            "deactivated",
            "health_reported",
            "host_reported",
        }
    )
    tables = ("host_history",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS host_history ("
        "position BIGINT PRIMARY KEY, env TEXT NOT NULL, host TEXT NOT NULL, "
        "service TEXT NOT NULL, kind TEXT NOT NULL, build_id TEXT, generation BIGINT, "
        "occurred_at BIGINT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL, "
        "state TEXT)" + WITHOUT_ROWID,
    )
    read_ddl = (
        "CREATE INDEX IF NOT EXISTS host_history_time ON host_history "
        "(host, occurred_at, position)",
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        rows = [
            (
                fact.position,
                fact.event["env"],
                fact.event["host"],
                fact.event.get("service") or "",
                fact.kind,
                fact.event.get("build_id"),
                fact.event.get("generation"),
                to_micros(fact.event["occurred_at"]),
                fact.event["actor"],
                detail(fact.event),
                fact.event.get("state"),
            )
            for fact in facts
        ]
        tx.insert("host_history", COLUMNS, rows)


def without_repeats(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (in time order) less the health reports that repeat the state the
    previous report of the same (env, service) gave: heartbeats, not history. Done when
    reading, because a late report can make a stored repeat a change."""
    last: dict[tuple[str, str], str] = {}
    kept = []
    for row in rows:
        if row["kind"] == "health_reported":
            key = (row["env"], row["service"])
            if last.get(key) == row["state"]:
                continue
            last[key] = row["state"]
        kept.append(row)
    return kept
