"""What the deployment planner reads from the views, and the plans it makes.

``plan_deploy``, ``plan_rollback`` and ``plan_resume`` each read the state of one
environment — what is active (placements), which builds each host holds (the failures
view keeps that, to spot activations of builds never distributed), the generations and
their manifests — and hand it to :func:`ledger.planner.plan_steps`. They read, never
write: recording the plan is the caller's decision (``--dry-run`` records nothing).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Literal, ParamSpec
from uuid import uuid4

import orjson

from ledger.application import batched
from ledger.errors import InvalidInput
from ledger.events import GenerationPlanned, ManifestEntry
from ledger.memory import cycle_collection_paused
from ledger.planner import (
    Desired,
    Running,
    Step,
    Target,
    Wanted,
    desired_from,
    minimal_steps,
    plan_steps,
)
from projections.queries import pick_env
from projections.runner import Views
from projections.store import Tx
from projections.view import IN_LIST

Reason = Literal["deploy", "rollback"]


P = ParamSpec("P")


def _planning(function: Callable[P, Plan]) -> Callable[P, Plan]:
    """Plans without the cycle collector (see ``ledger.memory``)."""

    @wraps(function)
    def plan(*args: P.args, **kwargs: P.kwargs) -> Plan:
        with cycle_collection_paused():
            return function(*args, **kwargs)

    return plan


@dataclass(frozen=True)
class Plan:
    """A generation to record (or being resumed) and the steps that carry it out."""

    env: str
    number: int
    parent: int | None
    reason: Reason
    target: int | None
    manifest: Desired
    """The desired manifest: one target per host and service."""
    steps: list[Step]
    active: Running
    held: set[tuple[str, str]]
    drained: set[tuple[str, str, str]]
    """Drains of this plan's builds already completed (when resumed)."""
    leftover: set[tuple[str, str, str]]
    """Builds replaced by the resumed generation's activations, not deactivated yet."""
    resumed: bool = False

    @property
    def unchanged(self) -> int:
        """Placements of the manifest already active as desired."""
        return len(self.manifest) - sum(1 for s in self.steps if s.kind == "activate")

    def minimal(self) -> int:
        """The fewest steps any plan needs (``ledger.planner.minimal_steps``), counted
        apart from the plan, as a check of it."""
        desired = {key: target[0] for key, target in self.manifest.items()}
        retiring = 2 * len(self.leftover)  # a drain and a deactivation each
        return minimal_steps(self.active, desired, self.held) + retiring - len(self.drained)

    def entries(self) -> tuple[ManifestEntry, ...]:
        """The desired manifest as the event records it, by host and service."""
        return tuple(
            ManifestEntry(
                host=host,
                service=service,
                build_id=build,
                artifact=artifact,
                depends_on=tuple(depends_on),
            )
            for (host, service), (build, artifact, depends_on) in sorted(self.manifest.items())
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "generation": self.number,
            "parent": self.parent,
            "reason": self.reason,
            "target": self.target,
            "resumed": self.resumed,
            "placements": len(self.manifest),
            "unchanged": self.unchanged,
            "minimal_steps": self.minimal(),
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


def planned_event(plan: Plan, actor: str) -> GenerationPlanned:
    """The generation_planned event that records ``plan`` (by ``actor``, now)."""
    return GenerationPlanned(
        event_id=uuid4(),
        env=plan.env,
        occurred_at=datetime.now(UTC),
        actor=actor,
        number=plan.number,
        parent=plan.parent,
        reason=plan.reason,
        target=plan.target,
        manifest=plan.entries(),
    )


def _latest(tx: Tx, env: str) -> dict[str, Any] | None:
    rows = tx.query(
        "SELECT number, status, reason, target, rolled_back_by, position FROM generations "
        "WHERE env = ? ORDER BY number DESC LIMIT 1",
        (env,),
    )
    return rows[0] if rows else None


def _manifest(tx: Tx, env: str, number: int) -> list[dict[str, Any]]:
    """Generation ``number``'s manifest as recorded (``manifest_entries`` also sorts
    and completes the entries: more than the planner needs)."""
    rows = tx.tuples(
        "SELECT manifest FROM generation_manifests WHERE env = ? AND number = ?", (env, number)
    )
    return orjson.loads(zlib.decompress(rows[0][0])) if rows else []


def _desired(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Target]:
    """A recorded manifest's targets, the first entry of each host and service (so the
    entries are read backwards: later ones are overwritten by earlier ones)."""
    return {
        (r["host"], r["service"]): (r["build_id"], r.get("artifact"), r.get("depends_on", ()))
        for r in reversed(rows)
    }


def bad_twin(tx: Tx, env: str, desired: Desired) -> int | None:
    """A generation of ``env`` marked bad (failed or rolled back) whose manifest places
    the same builds on the same hosts, if there is one."""
    wanted = {(host, service, target[0]) for (host, service), target in desired.items()}
    for row in tx.query(
        "SELECT g.number, m.manifest FROM generations g JOIN generation_manifests m "
        "ON m.env = g.env AND m.number = g.number WHERE g.env = ? AND g.placements = ? "
        "AND (g.status = 'failed' OR g.rolled_back_by IS NOT NULL) ORDER BY g.number DESC",
        (env, len(desired)),
    ):
        entries = orjson.loads(zlib.decompress(row["manifest"]))
        if {(e["host"], e["service"], e["build_id"]) for e in entries} == wanted:
            return int(row["number"])
    return None


def _state(
    tx: Tx, env: str, desired: Desired, current: int | None, leftover: set[tuple[str, str, str]]
) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]], list[Any], dict[str, str]]:
    """What is active in ``env``, which desired builds the hosts already hold, the
    current generation's dependencies (for services being dropped) and the artifacts of
    the builds involved."""
    active = {
        (host, service): build
        for host, service, build in tx.tuples(
            "SELECT host, service, build_id FROM placements "
            "WHERE end_position IS NULL AND retired_by IS NULL AND env = ?",
            (env,),
        )
    }
    # Artifacts of the active builds, and of desired ones the manifest names no artifact for.
    builds = set(active.values()) | {t[0] for t in desired.values() if t[1] is None}
    builds |= {build for _, _, build in leftover}
    artifacts: dict[str, str] = {}
    for batch in batched(sorted(builds), IN_LIST):
        artifacts.update(
            tx.tuples(
                f"SELECT build_id, artifact FROM builds WHERE build_id IN "
                f"({', '.join('?' * len(batch))})",
                batch,
            )
        )
    # Which desired builds the hosts hold (only those of changed placements matter, but
    # telling them apart here would cost as much as looking them all up).
    wanted = {(host, target[0]) for (host, _), target in desired.items()}
    held: set[tuple[str, str]] = set()
    for batch in batched(sorted({host for host, _ in desired}), IN_LIST):
        held.update(
            (host, build)
            for host, build in tx.tuples(
                f"SELECT host, build_id FROM failures_distributed WHERE env = ? AND host IN "
                f"({', '.join('?' * len(batch))})",
                [env, *batch],
            )
            if (host, build) in wanted
        )
    # Dependencies of services the desired manifest drops altogether come from the
    # current generation (read only then: it is a whole manifest to parse).
    graph: list[Any] = []
    if current is not None and {s for _, s in active} - {s for _, s in desired}:
        graph = [(e["service"], e.get("depends_on", ())) for e in _manifest(tx, env, current)]
    return active, held, graph, artifacts


def _plan(
    tx: Tx,
    env: str,
    desired: Desired,
    *,
    number: int,
    parent: int | None,
    reason: Reason,
    target: int | None,
    drained: set[tuple[str, str, str]] | None = None,
    leftover: set[tuple[str, str, str]] | None = None,
) -> Plan:
    active, held, graph, artifacts = _state(tx, env, desired, parent, leftover or set())
    # What a resumed deployment still has to retire: replaced builds not deactivated
    # yet (unless active again), and which of those and of the active ones it drained.
    leftover = {b for b in leftover or () if active.get((b[0], b[1])) != b[2]}
    done = {d for d in drained or () if active.get((d[0], d[1])) == d[2] or d in leftover}
    return Plan(
        env=env,
        number=number,
        parent=parent,
        reason=reason,
        target=target,
        manifest=desired,
        steps=plan_steps(
            active,
            desired,
            held,
            graph=graph,
            drained=done,
            leftover=leftover,
            artifacts=artifacts,
        ),
        active=active,
        held=held,
        drained=done,
        leftover=leftover,
        resumed=drained is not None,
    )


@_planning
def plan_deploy(views: Views, env: str, manifest: Sequence[Wanted], *, force: bool = False) -> Plan:
    """A new generation of ``env`` with ``manifest`` as its desired state."""
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(manifest):
        if (first := seen.setdefault((entry.host, entry.service), index)) != index:
            raise InvalidInput(
                f"manifest[{index}] places {entry.service} on {entry.host} again "
                f"(manifest[{first}] did): one build per service and host"
            )
    desired = desired_from(manifest)
    with views.read() as tx:
        latest = _latest(tx, env)
        if not force and (twin := bad_twin(tx, env, desired)) is not None:
            raise InvalidInput(
                f"this manifest is the one of {env} generation {twin}, which is marked bad "
                "(failed or rolled back); give --force to deploy it anyway"
            )
        parent = latest["number"] if latest else None
        return _plan(
            tx, env, desired, number=(parent or 0) + 1, parent=parent, reason="deploy", target=None
        )


@_planning
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
        manifest = _desired(_manifest(tx, env, to))
        return _plan(
            tx,
            env,
            manifest,
            number=latest["number"] + 1,
            parent=latest["number"],
            reason="rollback",
            target=to,
        )


@_planning
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
        since: dict[str, set[tuple[str, str, str]]] = {}
        for row in tx.tuples(
            "SELECT kind, host, service, build_id FROM host_history WHERE position > ? "
            "AND kind IN ('drain_completed', 'deactivated') AND env = ?",
            (latest["position"], env),
        ):
            since.setdefault(row[0], set()).add(row[1:])
        # Activations of this generation replaced these builds; until they are
        # deactivated they still run (in-flight work) and must be retired.
        replaced = {
            (host, service, build)
            for host, service, build in tx.tuples(
                "SELECT host, service, build_id FROM placements "
                "WHERE env = ? AND ended_by = 'replaced' AND end_position > ? "
                "AND retired_by IS NULL",
                (env, latest["position"]),
            )
        }
        manifest = _desired(_manifest(tx, env, number))
        plan = _plan(
            tx,
            env,
            manifest,
            number=number,
            parent=parents[0]["parent"],
            reason=latest["reason"],
            target=latest["target"],
            drained=since.get("drain_completed", set()),
            leftover=replaced - since.get("deactivated", set()),
        )
    return plan
