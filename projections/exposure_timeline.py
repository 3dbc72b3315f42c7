"""An advisory's exposure over time: how many hosts of each env ran a build it affects, at
every moment that number changed — the data of the dashboard's exposure picture.

It is ``projections.exposure``'s per-host windows (merged over a host's services, up to
the horizon: now) turned into a step function, so at any moment T the count of an env
is the number of its hosts ``exposure(at=T)`` reports still exposed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from projections.exposure import exposure
from projections.queries import iso
from projections.store import to_micros

if TYPE_CHECKING:
    from projections.matching import CpeMap
    from projections.runner import Views


def exposure_over_time(
    views: Views,
    advisory_id: str,
    *,
    env: str | None = None,
    now: datetime | None = None,
    cpe_map: CpeMap | None = None,
) -> dict[str, Any]:
    """``changes``: from each ``at`` on, ``hosts`` hosts of ``env`` exposed, in time order
    (ties by env); and the answer's ids, horizon, publication and first recording. An
    unknown advisory or env is UnknownName (as ``exposure``)."""
    answer = exposure(views, advisory_id, env=env, now=now, cpe_map=cpe_map)
    steps: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for window in answer.hosts:
        for start, end in window.intervals:
            steps[to_micros(start)][window.env] += 1
            if end is not None:
                steps[to_micros(end)][window.env] -= 1
    counts: dict[str, int] = defaultdict(int)
    changes = []
    for moment in sorted(steps):
        for env_name, delta in sorted(steps[moment].items()):
            if delta:
                counts[env_name] += delta
                changes.append({"at": iso(moment), "env": env_name, "hosts": counts[env_name]})
    return {
        "ids": list(answer.ids),
        "env": env,
        "horizon": iso(to_micros(answer.horizon)),
        "published": None if answer.published is None else iso(to_micros(answer.published)),
        "recorded": iso(to_micros(answer.recorded)),
        "hosts_exposed": answer.hosts_exposed,
        "changes": changes,
    }
