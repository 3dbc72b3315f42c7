"""The generations view: each environment's tree of generations and their manifests.

A generation is planned (with its parent, reason, desired manifest and tags), then
completes or fails. A rollback generation marks every generation it undoes — from its
parent up the tree to, not including, its target — as rolled back by it: those are the
bad ones. Tags come with the plan or later (``generation_tagged``).

Generation events are few (one per deploy, not per host), so they are applied one by
one, in stream order. A manifest is one placement per host and service: tens of
thousands of entries for a large fleet, nearly the same from one generation to the
next. Each is kept whole, as compressed JSON, a row per generation: under a tenth of the room
of a row per entry, and every reader (``generation N``, ``diff``, ``where
--generation``) wants the whole manifest anyway.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View


class GenerationsView(View):
    name = "generations"
    description = "generation tree, status, tags and desired manifests (generations, diff)"
    kinds = frozenset(
        {"generation_planned", "generation_completed", "generation_failed", "generation_tagged"}
    )
    tables = ("generations", "generation_manifests", "generation_tags")
    ddl = (
        "CREATE TABLE IF NOT EXISTS generations ("
        "env TEXT NOT NULL, number BIGINT NOT NULL, parent BIGINT, reason TEXT NOT NULL, "
        "target BIGINT, actor TEXT NOT NULL, source_revision TEXT NOT NULL, "
        "planned_at BIGINT NOT NULL, recorded_at BIGINT NOT NULL, status TEXT NOT NULL, "
        "finished_at BIGINT, failure TEXT, rolled_back_by BIGINT, placements BIGINT NOT NULL, "
        "position BIGINT NOT NULL, PRIMARY KEY (env, number))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS generation_manifests ("
        "env TEXT NOT NULL, number BIGINT NOT NULL, manifest BYTEA NOT NULL, "
        "PRIMARY KEY (env, number))",
        "CREATE TABLE IF NOT EXISTS generation_tags ("
        "env TEXT NOT NULL, number BIGINT NOT NULL, tag TEXT NOT NULL, "
        "position BIGINT NOT NULL, PRIMARY KEY (env, number, tag))" + WITHOUT_ROWID,
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        for fact in facts:
            event = fact.event
            env, number = event["env"], event["number"]
            if fact.kind == "generation_planned":
                self._planned(tx, fact)
            elif fact.kind == "generation_tagged":
                self._tag(tx, env, number, event["tags"], fact.position)
            else:
                failed = fact.kind == "generation_failed"
                tx.execute(
                    "UPDATE generations SET status = ?, finished_at = ?, failure = ? "
                    "WHERE env = ? AND number = ?",
                    (
                        "failed" if failed else "completed",
                        to_micros(event["occurred_at"]),
                        event.get("reason") if failed else None,
                        env,
                        number,
                    ),
                )

    def _planned(self, tx: Tx, fact: Fact) -> None:
        event = fact.event
        env, number = event["env"], event["number"]
        manifest = event["manifest"]
        tx.insert(
            "generations",
            (
                "env",
                "number",
                "parent",
                "reason",
                "target",
                "actor",
                "source_revision",
                "planned_at",
                "recorded_at",
                "status",
                "placements",
                "position",
            ),
            [
                (
                    env,
                    number,
                    event.get("parent"),
                    event["reason"],
                    event.get("target"),
                    event["actor"],
                    event["source_revision"],
                    to_micros(event["occurred_at"]),
                    to_micros(event["recorded_at"]),
                    "planned",
                    len({(e["host"], e["service"]) for e in manifest}),
                    fact.position,
                )
            ],
        )
        tx.insert(
            "generation_manifests",
            ("env", "number", "manifest"),
            [(env, number, zlib.compress(orjson.dumps(manifest), 1))],
        )
        self._tag(tx, env, number, event.get("tags", ()), fact.position)
        if event["reason"] == "rollback" and event.get("parent") is not None:
            self._mark_rolled_back(tx, env, event["parent"], event.get("target"), number)

    @staticmethod
    def _tag(tx: Tx, env: str, number: int, tags: Sequence[str], position: int) -> None:
        tx.insert(
            "generation_tags",
            ("env", "number", "tag", "position"),
            [(env, number, tag, position) for tag in tags],
            ignore="env, number, tag",
        )

    @staticmethod
    def _mark_rolled_back(tx: Tx, env: str, parent: int, target: int | None, rollback: int) -> None:
        """Mark what the rollback undoes: the path from its parent up to where the
        target's line of ancestry is met (the target itself when it is an ancestor)."""
        parents = {
            row["number"]: row["parent"]
            for row in tx.query("SELECT number, parent FROM generations WHERE env = ?", (env,))
        }

        def line(start: int | None) -> list[int]:
            path: list[int] = []
            while start is not None and start in parents and start not in path:
                path.append(start)
                start = parents[start]
            return path

        if target is None:  # no target named: only the parent is undone
            target = parents.get(parent)
        kept = set(line(target))
        undone = []
        for number in line(parent):
            if number in kept:
                break
            undone.append(number)
        tx.execute_many(
            "UPDATE generations SET rolled_back_by = ? "
            "WHERE env = ? AND number = ? AND rolled_back_by IS NULL",
            [(rollback, env, number) for number in undone],
        )


def manifest_entries(
    tx: Tx, env: str, number: int, host: str | None = None
) -> list[dict[str, Any]] | None:
    """The desired manifest of a generation (None when there is no such generation),
    sorted by host and service, only ``host``'s entries when given; a placement listed
    twice counts once, the first time."""
    rows = tx.tuples(
        "SELECT manifest FROM generation_manifests WHERE env = ? AND number = ?", (env, number)
    )
    if not rows:
        return None
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in orjson.loads(zlib.decompress(rows[0][0])):
        if host is not None and entry["host"] != host:
            continue
        entry.setdefault("artifact", None)
        entry.setdefault("depends_on", [])
        entries.setdefault((entry["host"], entry["service"]), entry)
    return [entries[key] for key in sorted(entries)]
