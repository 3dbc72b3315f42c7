"""The events the benchmarks use: JSON Lines files of demo fleet events, and small
distinct events for single appends.

Files hold the demo fleet (300 hosts, 30 services) in the documented form, one
``model_dump_json()`` per line, written as they are generated so that memory stays flat
whatever N. One fleet is about 19,000 events; larger files chain fleets of seeds 0, 1,
2 …, each in environments of its own (``production-1``, ``staging-1``, …) so that every
fleet's generations are numbered from 1 as the ledger requires.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from ledger.demo import demo_fleet
from ledger.events import ActivationCompleted, Envelope, HealthReported

HOSTS = 300
SERVICES = 30


@dataclass(frozen=True)
class EventsFile:
    path: Path
    events: int
    size_bytes: int
    fleets: int


def _fleets() -> Iterator[tuple[int, Envelope]]:
    for seed in itertools.count():
        for event in demo_fleet(HOSTS, SERVICES, seed=seed):
            yield (
                seed,
                event if seed == 0 else event.model_copy(update={"env": f"{event.env}-{seed}"}),
            )


def write_events(path: Path, count: int) -> EventsFile:
    """Write ``count`` demo fleet events to ``path``."""
    fleets = 0
    with path.open("wb") as out:
        for seed, event in itertools.islice(_fleets(), count):
            out.write(event.model_dump_json().encode())
            out.write(b"\n")
            fleets = seed + 1
    return EventsFile(path, count, path.stat().st_size, fleets)


def small_events(count: int) -> list[Envelope]:
    """Distinct small events, alternately a health report and an activation."""
    now = datetime.now(UTC)
    events: list[Envelope] = []
    for i in range(count):
        host = f"bench-{i % 16:02d}"
        if i % 2:
            events.append(
                ActivationCompleted(
                    event_id=uuid4(),
                    env="bench",
                    occurred_at=now,
                    actor="deploy-bot",
                    host=host,
                    service="api",
                    build_id="0c9w2k7q0mbw4a1q2x5lq9lq0pb1jr4x",
                    generation=1,
                    duration_s=1.5,
                )
            )
        else:
            events.append(
                HealthReported(
                    event_id=uuid4(),
                    env="bench",
                    occurred_at=now,
                    actor=f"agent@{host}",
                    host=host,
                    service="api",
                    state="ok",
                    metric=42.0,
                    description="p99 latency 42.0 ms",
                    ttl_s=60.0,
                )
            )
    return events
