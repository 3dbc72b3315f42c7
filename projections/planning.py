"""What the deployment planner reads from the views, and the plans it makes.

``plan_deploy``, ``plan_rollback`` and ``plan_resume`` each read the state of one
environment — what is active (placements), which builds each host holds (the failures
view keeps that, to spot activations of builds never distributed), the generations and
their manifests — and hand it to :func:`ledger.planner.plan_steps`. They read, never
write: recording the plan is the caller's decision (``--dry-run`` records nothing).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ledger.errors import InvalidInput
from ledger.events import ManifestEntry
from ledger.planner import Active, Step, minimal_steps, plan_steps
from projections.generations import manifest_entries
from projections.queries import pick_env
from projections.runner import Views
from projections.store import Tx
from projections.view import rows_for_hosts

Reason = Literal["deploy", "rollback"]


@dataclass(frozen=True)
class Plan:
    """A generation to record (or being resumed) and the steps that carry it out."""

    env: str
    number: int
    parent: int | None
    reason: Reason
    target: int | None
    manifest: tuple[ManifestEntry, ...]
    steps: list[Step]
    unchanged: int
    """Placements of the manifest already active as desired."""
    minimal: int
    """The fewest steps any plan needs (``ledger.planner.minimal_steps``)."""
    resumed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "generation": self.number,
            "parent": self.parent,
            "reason": self.reason,
            "target": self.target,
            "resumed": self.resumed,
            "placements": len({(e.host, e.service) for e in self.manifest}),
            "unchanged": self.unchanged,
            "minimal_steps": self.minimal,
            "steps": [
                {
                    "wave": s.wave,
                    "step": s.kind,
                    "host": s.host,
                    "service": s.service,
                    "build_id": s.build_id,
                    "artifact": s.artifact,
                    "replaces": s.replaces,
                }
                for s in self.steps
            ],
        }


def _entries(rows: Sequence[dict[str, Any]] | None) -> tuple[ManifestEntry, ...]:
    return tuple(ManifestEntry.model_validate_json(orjson.dumps(row)) for row in rows or ())


def _latest(tx: Tx, env: str) -> dict[str, Any] | None:
    rows = tx.query(
        "SELECT number, status, reason, target, rolled_back_by, position FROM generations "
        "WHERE env = ? ORDER BY number DESC LIMIT 1",
        (env,),
    )
    return rows[0] if rows else None


def bad_twin(tx: Tx, env: str, manifest: Sequence[ManifestEntry]) -> int | None:
    """A generation of ``env`` marked bad (failed or rolled back) whose manifest places
    the same builds on the same hosts, if there is one."""
    wanted = {(e.host, e.service, e.build_id) for e in manifest}
    count = len({(e.host, e.service) for e in manifest})
    for row in tx.query(
        "SELECT g.number, m.manifest FROM generations g JOIN generation_manifests m "
        "ON m.env = g.env AND m.number = g.number WHERE g.env = ? AND g.placements = ? "
        "AND (g.status = 'failed' OR g.rolled_back_by IS NOT NULL) ORDER BY g.number DESC",
        (env, count),
    ):
        entries = orjson.loads(zlib.decompress(row["manifest"]))
        if {(e["host"], e["service"], e["build_id"]) for e in entries} == wanted:
            return int(row["number"])
    return None


def _state(
    tx: Tx, env: str, desired: Sequence[ManifestEntry], current: int | None
) -> tuple[list[Active], set[tuple[str, str]], tuple[ManifestEntry, ...]]:
    """What is active in ``env``, which desired builds the hosts already hold, and the
    current generation's entries (for the dependencies of services being dropped)."""
    active = [
        Active(r["host"], r["service"], r["build_id"], r["artifact"])
        for r in tx.query(
            "SELECT p.host, p.service, p.build_id, b.artifact FROM placements p "
            "LEFT JOIN builds b ON b.build_id = p.build_id "
            "WHERE p.end_position IS NULL AND p.env = ?",
            (env,),
        )
    ]
    running = {(a.host, a.service): a.build_id for a in active}
    needed = [e for e in desired if running.get((e.host, e.service)) != e.build_id]
    held: set[tuple[str, str]] = set()
    if needed:
        held = {
            (r["host"], r["build_id"])
            for r in rows_for_hosts(
                tx,
                "SELECT host, build_id, env FROM failures_distributed",
                {e.host for e in needed},
                build_ids={e.build_id for e in needed},
            )
            if r["env"] == env
        }
    graph = _entries(manifest_entries(tx, env, current)) if current is not None else ()
    return active, held, graph


def _plan(
    tx: Tx,
    env: str,
    manifest: tuple[ManifestEntry, ...],
    *,
    number: int,
    parent: int | None,
    reason: Reason,
    target: int | None,
    drained: set[tuple[str, str, str]] | None = None,
) -> Plan:
    active, held, graph = _state(tx, env, manifest, parent)
    running = {(a.host, a.service): a.build_id for a in active}
    # Drains a resumed deployment already completed, of builds still active.
    done = {d for d in drained or () if running.get((d[0], d[1])) == d[2]}
    steps = plan_steps(active, manifest, held, graph=graph, drained=done)
    desired = {(e.host, e.service): e.build_id for e in manifest}
    return Plan(
        env=env,
        number=number,
        parent=parent,
        reason=reason,
        target=target,
        manifest=manifest,
        steps=steps,
        unchanged=sum(1 for k, b in desired.items() if running.get(k) == b),
        minimal=minimal_steps(running, desired, held) - len(done),
        resumed=drained is not None,
    )


def plan_deploy(
    views: Views, env: str, manifest: Sequence[ManifestEntry], *, force: bool = False
) -> Plan:
    """A new generation of ``env`` with ``manifest`` as its desired state."""
    entries = tuple(manifest)
    with views.read() as tx:
        latest = _latest(tx, env)
        if not force and (twin := bad_twin(tx, env, entries)) is not None:
            raise InvalidInput(
                f"this manifest is the one of {env} generation {twin}, which is marked bad "
                "(failed or rolled back); give --force to deploy it anyway"
            )
        parent = latest["number"] if latest else None
        return _plan(
            tx, env, entries, number=(parent or 0) + 1, parent=parent, reason="deploy", target=None
        )


def plan_rollback(views: Views, env: str | None, to: int, *, force: bool = False) -> Plan:
    """A new generation of ``env`` whose desired manifest is generation ``to``'s."""
    env = pick_env(views, env)
    with views.read() as tx:
        latest = _latest(tx, env)
        target = tx.query(
            "SELECT number, status, rolled_back_by FROM generations WHERE env = ? AND number = ?",
            (env, to),
        )
        if latest is None or not target:
            raise InvalidInput(f"{env} has no generation {to}")
        if latest["number"] == to:
            raise InvalidInput(f"generation {to} is already the current generation of {env}")
        bad = target[0]["status"] == "failed" or target[0]["rolled_back_by"] is not None
        if bad and not force:
            raise InvalidInput(
                f"{env} generation {to} is marked bad (failed or rolled back); "
                "give --force to roll back to it anyway"
            )
        manifest = _entries(manifest_entries(tx, env, to))
        return _plan(
            tx,
            env,
            manifest,
            number=latest["number"] + 1,
            parent=latest["number"],
            reason="rollback",
            target=to,
        )


def plan_resume(views: Views, env: str | None) -> Plan:
    """The steps still to do for ``env``'s latest generation, if it did not complete:
    what is active now against its manifest, skipping drains already completed."""
    env = pick_env(views, env)
    with views.read() as tx:
        latest = _latest(tx, env)
        if latest is None:
            raise InvalidInput(f"{env} has no generations to resume")
        number = latest["number"]
        if latest["status"] == "completed":
            raise InvalidInput(f"{env} generation {number} completed: there is nothing to resume")
        if latest["rolled_back_by"] is not None:
            raise InvalidInput(
                f"{env} generation {number} was rolled back by {latest['rolled_back_by']}: "
                "it must not be resumed"
            )
        if latest["reason"] not in ("deploy", "rollback"):
            raise InvalidInput(
                f"{env} generation {number} was planned by `ledger {latest['reason']}`, "
                "not by deploy or rollback: there are no steps to resume"
            )
        parents = tx.query(
            "SELECT parent FROM generations WHERE env = ? AND number = ?", (env, number)
        )
        drained = {
            (r["host"], r["service"], r["build_id"])
            for r in tx.query(
                "SELECT host, service, build_id FROM host_history "
                "WHERE position > ? AND kind = 'drain_completed' AND env = ?",
                (latest["position"], env),
            )
        }
        manifest = _entries(manifest_entries(tx, env, number))
        plan = _plan(
            tx,
            env,
            manifest,
            number=number,
            parent=parents[0]["parent"],
            reason=latest["reason"],
            target=latest["target"],
            drained=drained,
        )
    return plan
