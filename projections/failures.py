"""The failures view: what went wrong, and facts that contradict the stream.

Failures are recorded as such (failed builds, distributions, activations and
generations, drains that timed out). Anomalies are well-formed facts that do not fit
what came before: the ledger stores them (it records reality, it does not refuse it)
and this view points them out —

* an activation of a build that was never distributed to that host;
* a deactivation of a build that was never activated there.

To tell, the view keeps which builds reached which hosts and which were activated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.history import detail
from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View, rows_for_hosts

COLUMNS = (
    "position",
    "env",
    "host",
    "service",
    "build_id",
    "generation",
    "kind",
    "problem",
    "occurred_at",
    "actor",
    "reason",
)
FAILED = {
    "build_failed": "build failed",
    "distribution_failed": "distribution failed",
    "activation_failed": "activation failed",
    "drain_timed_out": "drain timed out",
    "generation_failed": "generation failed",
}


class FailuresView(View):
    name = "failures"
    description = "failures and contradicting facts (failures, metrics)"
    kinds = frozenset({*FAILED, "distribution_completed", "activation_completed", "deactivated"})
    tables = ("failures", "failures_distributed", "failures_activated")
    ddl = (
        "CREATE TABLE IF NOT EXISTS failures ("
        "position BIGINT PRIMARY KEY, env TEXT NOT NULL, host TEXT, service TEXT, "
        "build_id TEXT, generation BIGINT, kind TEXT NOT NULL, problem TEXT NOT NULL, "
        "occurred_at BIGINT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL)" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS failures_distributed ("
        "host TEXT NOT NULL, build_id TEXT NOT NULL, env TEXT NOT NULL, "
        "PRIMARY KEY (host, build_id, env))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS failures_activated ("
        "host TEXT NOT NULL, service TEXT NOT NULL, build_id TEXT NOT NULL, env TEXT NOT NULL, "
        "PRIMARY KEY (host, service, build_id, env))" + WITHOUT_ROWID,
    )
    read_ddl = ("CREATE INDEX IF NOT EXISTS failures_env ON failures (env, position)",)

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        checked = [f.event for f in facts if f.kind in ("activation_completed", "deactivated")]
        hosts = {e["host"] for e in checked}
        builds = {e["build_id"] for e in checked}
        distributed = {
            (r["env"], r["host"], r["build_id"])
            for r in rows_for_hosts(
                tx, "SELECT * FROM failures_distributed", hosts, build_ids=builds
            )
        }
        activated = {
            (r["env"], r["host"], r["service"], r["build_id"])
            for r in rows_for_hosts(tx, "SELECT * FROM failures_activated", hosts, build_ids=builds)
        }
        new_distributed: set[tuple[str, str, str]] = set()
        new_activated: set[tuple[str, str, str, str]] = set()
        rows: list[tuple[Any, ...]] = []
        for fact in facts:
            event = fact.event
            problem, reason = FAILED.get(fact.kind, ""), ""
            if problem:
                reason = detail(event) if fact.kind == "drain_timed_out" else event["reason"]
            elif fact.kind == "distribution_completed":
                key = (event["env"], event["host"], event["build_id"])
                if key not in distributed:
                    distributed.add(key)
                    new_distributed.add(key)
            elif fact.kind == "activation_completed":
                if (event["env"], event["host"], event["build_id"]) not in distributed:
                    problem = "anomaly"
                    reason = "activated a build never distributed to this host"
                key4 = (event["env"], event["host"], event["service"], event["build_id"])
                if key4 not in activated:
                    activated.add(key4)
                    new_activated.add(key4)
            elif (
                event["env"],
                event["host"],
                event["service"],
                event["build_id"],
            ) not in activated:
                problem = "anomaly"
                reason = "deactivated a build never activated on this host"
            if problem:
                rows.append(
                    (
                        fact.position,
                        event["env"],
                        event.get("host"),
                        event.get("service"),
                        event.get("build_id"),
                        event.get("generation") or event.get("number"),
                        fact.kind,
                        problem,
                        to_micros(event["occurred_at"]),
                        event["actor"],
                        reason,
                    )
                )
        tx.insert("failures", COLUMNS, rows)
        tx.insert(
            "failures_distributed",
            ("env", "host", "build_id"),
            sorted(new_distributed),
            ignore="host, build_id, env",
        )
        tx.insert(
            "failures_activated",
            ("env", "host", "service", "build_id"),
            sorted(new_activated),
            ignore="host, service, build_id, env",
        )
