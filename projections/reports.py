"""The reports view: what each host's agent last found active on it (drift, reconstruct).

An agent's ``host_reported`` event is a snapshot of its host's profile manifest at
``occurred_at``. The view keeps, per env and host, the latest snapshot only: its time
and number of services in ``host_report_times`` (so a host that reported an empty
manifest still counts as reported) and one row per service in ``host_reports``. A newer
report replaces all of its host's rows.

"Latest" is by ``occurred_at``, not by stream order; between reports of the same moment
the later position wins. A report that arrives late — an agent that was offline uploads
the snapshot it took before its newer one was recorded — describes the host as it was
before what the view already holds, so it changes nothing here (``history`` still lists
it). Taking the last report in stream order instead would let a delayed upload put an
old state back and show drift that is not there. The kept report is the maximum of
(``occurred_at``, position) over the host's reports, whatever the order and batches
they were applied in, so a rebuilt view equals the incrementally maintained one.

A report that lists a service twice keeps the first entry, as a generation's manifest
does (``projections.generations.manifest_entries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View, rows_for_hosts

REPORT_COLUMNS = ("env", "host", "service", "build_id", "artifact", "depends_on", "position")
TIME_COLUMNS = ("env", "host", "occurred_at", "position", "entries")


class ReportsView(View):
    name = "reports"
    description = "each host's latest report of what is active on it (drift, reconstruct)"
    kinds = frozenset({"host_reported"})
    tables = ("host_report_times", "host_reports")
    ddl = (
        "CREATE TABLE IF NOT EXISTS host_report_times ("
        "env TEXT NOT NULL, host TEXT NOT NULL, occurred_at BIGINT NOT NULL, "
        "position BIGINT NOT NULL, entries BIGINT NOT NULL, "
        "PRIMARY KEY (env, host))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS host_reports ("
        "env TEXT NOT NULL, host TEXT NOT NULL, service TEXT NOT NULL, "
        "build_id TEXT NOT NULL, artifact TEXT, depends_on TEXT NOT NULL, "
        "position BIGINT NOT NULL, PRIMARY KEY (env, host, service))" + WITHOUT_ROWID,
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        kept = {
            (r["env"], r["host"]): (r["occurred_at"], r["position"])
            for r in rows_for_hosts(
                tx,
                "SELECT env, host, occurred_at, position FROM host_report_times",
                {f.event["host"] for f in facts},
            )
        }
        latest: dict[tuple[str, str], tuple[int, int, Fact]] = {}
        for fact in facts:
            key = (fact.event["env"], fact.event["host"])
            order = (to_micros(fact.event["occurred_at"]), fact.position)
            if order > kept.get(key, (-1, -1)):
                kept[key] = order
                latest[key] = (*order, fact)
        if not latest:
            return
        tx.execute_many(
            "DELETE FROM host_reports WHERE env = ? AND host = ?", [list(k) for k in latest]
        )
        reports: list[tuple[Any, ...]] = []
        times: list[tuple[Any, ...]] = []
        for (env, host), (occurred_at, position, fact) in sorted(latest.items()):
            services: dict[str, dict[str, Any]] = {}
            for entry in fact.event["manifest"]:
                services.setdefault(entry["service"], entry)
            reports += [
                (
                    env,
                    host,
                    service,
                    entry["build_id"],
                    entry.get("artifact"),
                    orjson.dumps(list(entry.get("depends_on", ()))).decode(),
                    position,
                )
                for service, entry in services.items()
            ]
            times.append((env, host, occurred_at, position, len(services)))
        tx.insert("host_report_times", TIME_COLUMNS, times, update_on="env, host")
        tx.insert("host_reports", REPORT_COLUMNS, reports)
