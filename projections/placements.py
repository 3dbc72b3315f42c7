"""The placements view: which build of which service is active on which host, and when.

Every activation opens an interval for (env, host, service); the next activation of
another build there, or the deactivation of that build, closes it. An interval keeps
both times of its ends: ``valid_*`` (``occurred_at``, when it happened) and
``recorded_*`` (``recorded_at``, when the ledger learnt it). So "what was active at T,
as the ledger knew it at T" is one indexed query, without replaying anything:

    valid_from <= T and recorded_from <= T
    and not (ended and valid_to <= T and recorded_to <= T)

Open intervals are the current topology. The view also keeps the latest health report
of every host and every service on it. An interval's id is the position of the
activation that opened it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View, rows_for_hosts

PLACEMENT_COLUMNS = (
    "id",
    "env",
    "host",
    "service",
    "build_id",
    "generation",
    "valid_from",
    "recorded_from",
    "end_position",
    "valid_to",
    "recorded_to",
    "ended_by",
)
HEALTH_COLUMNS = (
    "env",
    "host",
    "service",
    "state",
    "metric",
    "description",
    "ttl_s",
    "occurred_at",
    "position",
)


class PlacementsView(View):
    name = "placements"
    description = "activation intervals and health (topology, manifest, where, metrics)"
    kinds = frozenset({"activation_completed", "deactivated", "health_reported"})
    tables = ("placements", "health")
    ddl = (
        "CREATE TABLE IF NOT EXISTS placements ("
        "id BIGINT PRIMARY KEY, env TEXT NOT NULL, host TEXT NOT NULL, "
        "service TEXT NOT NULL, build_id TEXT NOT NULL, generation BIGINT NOT NULL, "
        "valid_from BIGINT NOT NULL, recorded_from BIGINT NOT NULL, end_position BIGINT, "
        "valid_to BIGINT, recorded_to BIGINT, ended_by TEXT)" + WITHOUT_ROWID,
        "CREATE UNIQUE INDEX IF NOT EXISTS placements_open "
        "ON placements (host, service, env) WHERE end_position IS NULL",
        # Covering indexes for `where`: now (open intervals only) and at a moment.
        "CREATE INDEX IF NOT EXISTS placements_open_build ON placements "
        "(build_id, env, host, service, valid_from, generation) WHERE end_position IS NULL",
        "CREATE INDEX IF NOT EXISTS placements_build ON placements "
        "(build_id, valid_from, recorded_from, valid_to, recorded_to, end_position, "
        "env, host, service, generation)",
        "CREATE TABLE IF NOT EXISTS health ("
        "env TEXT NOT NULL, host TEXT NOT NULL, service TEXT NOT NULL, state TEXT NOT NULL, "
        "metric DOUBLE PRECISION, description TEXT NOT NULL, ttl_s DOUBLE PRECISION, "
        "occurred_at BIGINT NOT NULL, position BIGINT NOT NULL, "
        "PRIMARY KEY (env, host, service))" + WITHOUT_ROWID,
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        moves = [f.event for f in facts if f.kind != "health_reported"]
        open_rows = rows_for_hosts(
            tx,
            "SELECT id, env, host, service, build_id FROM placements",
            {e["host"] for e in moves},
            services={e["service"] for e in moves},
            condition="end_position IS NULL",
        )
        current: dict[tuple[str, str, str], dict[str, Any]] = {
            (r["env"], r["host"], r["service"]): r for r in open_rows
        }
        opened: dict[int, dict[str, Any]] = {}  # intervals opened in this batch
        closed: list[dict[str, Any]] = []  # intervals opened earlier, closed now
        health: dict[tuple[str, str, str], tuple[Any, ...]] = {}

        def close(row: dict[str, Any], fact: Fact, how: str) -> None:
            row["end_position"] = fact.position
            row["valid_to"] = to_micros(fact.event["occurred_at"])
            row["recorded_to"] = to_micros(fact.event["recorded_at"])
            row["ended_by"] = how
            if row["id"] not in opened:
                closed.append(row)

        for fact in facts:
            event = fact.event
            if fact.kind == "health_reported":
                key = (event["env"], event["host"], event.get("service") or "")
                health[key] = (
                    *key,
                    event["state"],
                    event.get("metric"),
                    event.get("description", ""),
                    event.get("ttl_s"),
                    to_micros(event["occurred_at"]),
                    fact.position,
                )
                continue
            key = (event["env"], event["host"], event["service"])
            active = current.get(key)
            if fact.kind == "deactivated":
                if active is not None and active["build_id"] == event["build_id"]:
                    close(active, fact, "deactivated")
                    del current[key]
                continue
            if active is not None:
                if active["build_id"] == event["build_id"]:
                    continue  # activated again: it has been active all along
                close(active, fact, "replaced")
            row = {
                "id": fact.position,
                "env": event["env"],
                "host": event["host"],
                "service": event["service"],
                "build_id": event["build_id"],
                "generation": event["generation"],
                "valid_from": to_micros(event["occurred_at"]),
                "recorded_from": to_micros(event["recorded_at"]),
                "end_position": None,
                "valid_to": None,
                "recorded_to": None,
                "ended_by": None,
            }
            opened[fact.position] = current[key] = row
        # Close before opening: at most one open interval per (host, service, env).
        tx.update(
            "placements",
            "id",
            ("end_position", "valid_to", "recorded_to", "ended_by"),
            [(r["id"], r["end_position"], r["valid_to"], r["recorded_to"], r["ended_by"])
             for r in closed],
        )  # fmt: skip
        tx.insert(
            "placements",
            PLACEMENT_COLUMNS,
            [tuple(r[c] for c in PLACEMENT_COLUMNS) for r in opened.values()],
        )
        tx.insert("health", HEALTH_COLUMNS, list(health.values()), update_on="env, host, service")
