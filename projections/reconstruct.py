"""Reconstruction: a generation whose desired manifest is what the hosts report.

The ledger's counterpart of ``disnix-reconstruct``, which rebuilds a lost coordinator
manifest from the profile manifests kept on the target machines: the union of the latest
report of every host of an environment (the ``reports`` view) becomes the manifest of
a new generation (reason ``reconstruct``) whose parent is the current generation, so
deployments can go on from what is really there.

Hosts that never reported contribute nothing: their placements drop out of the
manifest, and the reconstruction names them so that the operator sees it before
recording it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

import orjson

from ledger.errors import InvalidInput
from ledger.events import GenerationPlanned, ManifestEntry
from projections.drift import current_generations, latest_reports
from projections.generations import manifest_entries
from projections.queries import Row
from projections.runner import Views

ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@dataclass(frozen=True)
class Reconstruction:
    """What ``ledger reconstruct`` records, and how it differs from the current
    generation (``parent``, None when the env has none)."""

    env: str
    parent: int | None
    manifest: tuple[ManifestEntry, ...]
    reported_hosts: int
    changes: list[Row]
    unreported: list[str]
    """Hosts of the current generation that never reported: left out of the manifest."""
    stale: list[str]
    """Hosts whose latest report was made before the current generation was planned."""

    @property
    def number(self) -> int:
        return (self.parent or 0) + 1

    def event(self, actor: str, occurred_at: datetime) -> GenerationPlanned:
        """The generation to record. Its number is given: if another generation was
        planned in the meantime the ledger refuses it, rather than record a
        reconstruction whose parent is no longer the current generation."""
        return GenerationPlanned(
            event_id=uuid4(),
            env=self.env,
            occurred_at=occurred_at,
            actor=actor,
            number=self.number,
            parent=self.parent,
            reason="reconstruct",
            manifest=self.manifest,
        )


def reconstruction(views: Views, env: str) -> Reconstruction:
    """The reconstruction of ``env`` from its hosts' latest reports; refuses an env no
    host of which has reported."""
    with views.read() as tx:
        times, reported = latest_reports(tx, env)
        if not times:
            raise InvalidInput(
                f"no host of {env} has reported what it runs, so there is nothing to "
                "reconstruct from: record reports first (`ledger report-host HOST "
                f"--manifest FILE --env {env}`)"
            )
        parent, planned_at = current_generations(tx, env).get(env, (None, None))
        entries = manifest_entries(tx, env, parent) if parent else []
    manifest = tuple(
        ManifestEntry(
            host=host,
            service=service,
            build_id=row["build_id"],
            artifact=row["artifact"],
            depends_on=tuple(orjson.loads(row["depends_on"])),
        )
        for (host, service), row in sorted(reported.items())
    )
    desired = {(e["host"], e["service"]): e["build_id"] for e in entries or []}
    return Reconstruction(
        env=env,
        parent=parent,
        manifest=manifest,
        reported_hosts=len(times),
        changes=_changes(desired, {(e.host, e.service): e.build_id for e in manifest}),
        unreported=sorted({host for host, _ in desired} - times.keys()),
        stale=sorted(h for h, at in times.items() if planned_at is not None and at < planned_at),
    )


def _changes(old: dict[tuple[str, str], str], new: dict[tuple[str, str], str]) -> list[Row]:
    rows = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        change = ADDED if before is None else REMOVED if after is None else CHANGED
        rows.append(
            {"host": key[0], "service": key[1], "change": change,
             "from_build": before, "to_build": after}
        )  # fmt: skip
    return rows
