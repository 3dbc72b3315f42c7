"""The history view: everything that happened on each host, in ledger order.

One row per distribution, activation, drain, deactivation and host report, and per
health report that changed a host's or service's state (repeats of the same state are
left out: they are heartbeats, not history). ``ledger history --host H`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View, rows_for_hosts

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
    tables = ("host_history", "history_health")
    ddl = (
        "CREATE TABLE IF NOT EXISTS host_history ("
        "position BIGINT PRIMARY KEY, env TEXT NOT NULL, host TEXT NOT NULL, "
        "service TEXT NOT NULL, kind TEXT NOT NULL, build_id TEXT, generation BIGINT, "
        "occurred_at BIGINT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)" + WITHOUT_ROWID,
        "CREATE INDEX IF NOT EXISTS host_history_host ON host_history (host, position)",
        "CREATE TABLE IF NOT EXISTS history_health ("
        "env TEXT NOT NULL, host TEXT NOT NULL, service TEXT NOT NULL, state TEXT NOT NULL, "
        "PRIMARY KEY (host, service, env))" + WITHOUT_ROWID,
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        health_hosts = {f.event["host"] for f in facts if f.kind == "health_reported"}
        states = {
            (r["env"], r["host"], r["service"]): r["state"]
            for r in rows_for_hosts(tx, "SELECT * FROM history_health", health_hosts)
        }
        changed: dict[tuple[str, str, str], str] = {}
        rows: list[tuple[Any, ...]] = []
        for fact in facts:
            event = fact.event
            service = event.get("service") or ""
            if fact.kind == "health_reported":
                key = (event["env"], event["host"], service)
                if states.get(key) == event["state"]:
                    continue
                states[key] = changed[key] = event["state"]
            rows.append(
                (
                    fact.position,
                    event["env"],
                    event["host"],
                    service,
                    fact.kind,
                    event.get("build_id"),
                    event.get("generation"),
                    to_micros(event["occurred_at"]),
                    event["actor"],
                    detail(event),
                )
            )
        tx.insert("host_history", COLUMNS, rows)
        tx.insert(
            "history_health",
            ("env", "host", "service", "state"),
            [(*key, state) for key, state in changed.items()],
            update_on="host, service, env",
        )
