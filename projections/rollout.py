"""A generation's rollout over time: how many of its placements were planned, activated,
failed and drained at each moment — the data of the dashboard's rollout picture.

Read from what the views keep, in valid time (``occurred_at``), late facts in their place:

* **planned** — the placements (host, service) of the generation's manifest, all at
  once when it was planned (``generations``);
* **changing** — the manifest's placements the rollout has to change, all at once when
  it was planned: those whose build differs from the parent generation's manifest, or
  that the parent's manifest does not have; every placement when the generation has no
  parent (or names one the ledger does not hold). A rollout activates what changes
  (the rest already runs), so these, not the whole manifest, measure its progress;
* **activated** — the (host, service) pairs with an activation of the generation, each
  counted from its first one (``placement_facts``: every activation, even one that
  changed nothing because the build was already active);
* **failed** — the pairs with a failed activation of the generation, from the first
  (``failures``); a pair that failed and was then activated counts in both;
* **drained** — the manifest's pairs whose previous build finished draining while the
  generation was the newest planned of its environment (from its planning to the next
  generation's): drains name no generation, so that window is what ties them to it
  (``host_history``: ``drain_completed`` of a build other than the manifest's).

Counts are cumulative: ``steps`` holds, at each moment one of them changes, all five;
``placements`` (the manifest's size) and ``changing`` are also given on their own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ledger.errors import InvalidInput
from projections.generations import manifest_entries
from projections.queries import iso, pick_env

if TYPE_CHECKING:
    from projections.runner import Views

MEASURES = ("planned", "changing", "activated", "failed", "drained")
_FOREVER = 2**62
Pair = tuple[str, str]
"""(host, service)"""


def rollout(views: Views, number: int, env: str | None = None) -> dict[str, Any]:
    """Generation ``number``'s rollout (module docstring). ``env`` may be left out when
    only one environment has generations; an unknown generation is InvalidInput."""
    env = pick_env(views, env)
    with views.read() as tx:
        rows = tx.query(
            "SELECT number, parent, planned_at, finished_at, status, rolled_back_by "
            "FROM generations "
            "WHERE env = ? AND number = ?",
            (env, number),
        )
        if not rows:
            raise InvalidInput(f"{env} has no generation {number}")
        generation = rows[0]
        later = tx.tuples(
            "SELECT MIN(planned_at) FROM generations WHERE env = ? AND number > ?",
            (env, number),
        )
        manifest = manifest_entries(tx, env, number) or []
        parent = generation["parent"]
        before = (manifest_entries(tx, env, parent) if parent is not None else None) or []
        activations = tx.tuples(
            "SELECT host, service, occurred_at FROM placement_facts "
            "WHERE env = ? AND generation = ? AND kind = 'activation_completed'",
            (env, number),
        )
        failures = tx.tuples(
            "SELECT host, service, occurred_at FROM failures "
            "WHERE env = ? AND generation = ? AND kind = 'activation_failed'",
            (env, number),
        )
        planned_at: int = generation["planned_at"]
        until: int | None = later[0][0] if later else None
        drains = tx.tuples(
            "SELECT host, service, build_id, occurred_at FROM host_history "
            "WHERE env = ? AND kind = 'drain_completed' AND occurred_at >= ? "
            "AND occurred_at < ?",
            (env, planned_at, _FOREVER if until is None else until),
        )
    builds = {(e["host"], e["service"]): e["build_id"] for e in manifest}
    firsts: dict[str, dict[Pair, int]] = {m: {} for m in MEASURES}
    firsts["planned"] = dict.fromkeys(builds, planned_at)
    was = {(e["host"], e["service"]): e["build_id"] for e in before}
    changing = [pair for pair, build in builds.items() if was.get(pair) != build]
    firsts["changing"] = dict.fromkeys(changing, planned_at)
    for measure, facts in (("activated", activations), ("failed", failures)):
        for host, service, moment in facts:
            _earliest(firsts[measure], (host, service), moment)
    for host, service, build, moment in drains:
        pair = (host, service)
        if pair in builds and build != builds[pair]:
            _earliest(firsts["drained"], pair, moment)
    changes: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for measure, pairs in firsts.items():
        for moment in pairs.values():
            changes[moment][measure] += 1
    totals = dict.fromkeys(MEASURES, 0)
    steps = []
    for moment in sorted(changes):
        for measure in MEASURES:
            totals[measure] += changes[moment][measure]
        steps.append({"at": iso(moment), **totals})
    status = "rolled back" if generation["rolled_back_by"] is not None else generation["status"]
    return {
        "env": env,
        "number": number,
        "status": status,
        "planned_at": iso(planned_at),
        "finished_at": iso(generation["finished_at"]),
        "next_planned_at": iso(until),
        "placements": len(builds),
        "changing": len(changing),
        "steps": steps,
    }


def _earliest(firsts: dict[Pair, int], pair: Pair, moment: int) -> None:
    if pair not in firsts or moment < firsts[pair]:
        firsts[pair] = moment
