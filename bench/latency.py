"""Single-event append latency: ``Ledger.append([event], source="cli")``, in process.

Each backend gets a fresh ledger; after ``WARM_UP`` appends (connections opened,
statements prepared, caches filled) every call is timed with ``time.perf_counter``.
A call includes the whole append: read the head, look up the event id, build and hash
the entry, and commit the event and its index row in one transaction.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.events import small_events
from bench.postgres import create_schema, drop_schema, ledger_url
from ledger.application import Ledger
from ledger.store import locate

WARM_UP = 50


@dataclass(frozen=True)
class Latency:
    backend: str
    samples: int
    p50_ms: float
    p99_ms: float


def append_latency(backend: str, url: str, samples: int) -> Latency:
    events = small_events(WARM_UP + samples)
    ledger = Ledger(locate(url), create=True)
    timings: list[float] = []
    try:
        for event in events[:WARM_UP]:
            ledger.append([event], source="cli")
        for event in events[WARM_UP:]:
            start = time.perf_counter()
            ledger.append([event], source="cli")
            timings.append(time.perf_counter() - start)
    finally:
        ledger.close()
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return Latency(backend, samples, cuts[49] * 1000, cuts[98] * 1000)


def sqlite_latency(workdir: Path, samples: int) -> Latency:
    path = workdir / "latency.db"
    try:
        return append_latency("SQLite", str(path), samples)
    finally:
        for file in workdir.glob("latency.db*"):
            file.unlink()


def postgres_latency(server_url: str, samples: int) -> Latency:
    schema = create_schema(server_url, "bench_latency")
    try:
        return append_latency("PostgreSQL", ledger_url(server_url, schema), samples)
    finally:
        drop_schema(server_url, schema)
