"""The builds view: every recorded build and its full closure, one row per component.

Builds are content-addressed, so a build id names the same artifact in every
environment: the first ``build_recorded`` of an id is kept, later ones are repeats. Its
``recorded_at`` says since when the ledger knows the closure (``where --known-at``).
The closure table is what ``ledger where`` searches (indexed by component name) and
what ``ledger diff`` compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.application import batched
from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import IN_LIST, Fact, View


class BuildsView(View):
    name = "builds"
    description = "builds and their closures (where, manifest, diff)"
    kinds = frozenset({"build_recorded"})
    tables = ("builds", "build_components")
    ddl = (
        "CREATE TABLE IF NOT EXISTS builds ("
        "build_id TEXT PRIMARY KEY, env TEXT NOT NULL, service TEXT NOT NULL, "
        "version TEXT NOT NULL, artifact TEXT NOT NULL, source_revision TEXT NOT NULL, "
        "built_at BIGINT NOT NULL, recorded_at BIGINT NOT NULL, position BIGINT NOT NULL, "
        "components BIGINT NOT NULL)" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS build_components ("
        "build_id TEXT NOT NULL, ord BIGINT NOT NULL, name TEXT NOT NULL, "
        "version TEXT NOT NULL, hash TEXT, store_path TEXT, purl TEXT, "
        "PRIMARY KEY (build_id, ord))" + WITHOUT_ROWID,
        "CREATE INDEX IF NOT EXISTS build_components_name ON build_components (name)",
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        ids = {fact.event["build_id"] for fact in facts}
        known = set()
        for batch in batched(ids, IN_LIST):
            rows = tx.query(
                f"SELECT build_id FROM builds WHERE build_id IN ({', '.join('?' * len(batch))})",
                batch,
            )
            known |= {row["build_id"] for row in rows}
        builds: list[tuple[Any, ...]] = []
        components: list[tuple[Any, ...]] = []
        for fact in facts:
            event = fact.event
            if event["build_id"] in known:
                continue
            known.add(event["build_id"])
            closure = event["closure"]
            builds.append(
                (
                    event["build_id"],
                    event["env"],
                    event["service"],
                    event["version"],
                    event["artifact"],
                    event["source_revision"],
                    to_micros(event["occurred_at"]),
                    to_micros(event["recorded_at"]),
                    fact.position,
                    len(closure),
                )
            )
            components += [
                (
                    event["build_id"],
                    ord_,
                    c["name"],
                    c["version"],
                    c.get("hash"),
                    c.get("store_path"),
                    c.get("purl"),
                )
                for ord_, c in enumerate(closure)
            ]
        tx.insert(
            "builds",
            (
                "build_id",
                "env",
                "service",
                "version",
                "artifact",
                "source_revision",
                "built_at",
                "recorded_at",
                "position",
                "components",
            ),
            builds,
        )
        tx.insert(
            "build_components",
            ("build_id", "ord", "name", "version", "hash", "store_path", "purl"),
            components,
        )
