"""The events the benchmarks use: JSON Lines files of demo fleet events, and small
distinct events for single appends.

Files hold the first N events of ``demo_fleet`` (seed 0) in the documented form, one
``model_dump_json()`` per line, written as they are generated so that memory stays flat
whatever N. The demo's default 30 services give at most about 200,000 events (it caps
hosts at ``MAX_HOSTS``), so larger files come from a fleet of 5 services.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from ledger.demo import MAX_HOSTS, demo_fleet
from ledger.events import ActivationCompleted, Envelope, HealthReported

FLEETS = ((30, 60), (5, 260))
"""(services, rough events per host) to try in turn, the demo's default first."""


@dataclass(frozen=True)
class EventsFile:
    path: Path
    events: int
    size_bytes: int
    hosts: int
    services: int


def fleet_sizes(count: int) -> Iterator[tuple[int, int]]:
    """(hosts, services) candidates for ``count`` events, smallest first."""
    for services, per_host in FLEETS:
        hosts = max(1, math.ceil(count / per_host))
        if hosts > MAX_HOSTS:
            continue
        while True:
            yield hosts, services
            if hosts == MAX_HOSTS:
                break
            hosts = min(MAX_HOSTS, hosts * 2)


def write_events(path: Path, count: int) -> EventsFile:
    """Write the first ``count`` events of a demo fleet big enough to hold them."""
    for hosts, services in fleet_sizes(count):
        written = 0
        with path.open("wb") as out:
            for event in itertools.islice(demo_fleet(hosts, services), count):
                out.write(event.model_dump_json().encode())
                out.write(b"\n")
                written += 1
        if written == count:
            return EventsFile(path, count, path.stat().st_size, hosts, services)
    raise RuntimeError(f"demo_fleet yields fewer than {count} events at {MAX_HOSTS} hosts")


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
