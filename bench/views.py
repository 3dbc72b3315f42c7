"""``python -m bench.views``: the views at fleet scale, on SQLite and PostgreSQL.

The fleet is ``bench.fleet``'s: 10,000 hosts running 50 services (3-10 each), builds
with 300-component closures, at least 1,000,000 events. It is generated into a SQLite
ledger, then copied into a PostgreSQL ledger. For each backend:

* **rebuild** — in a child process (so its peak RSS is its own): first the raw
  baseline, reading and decoding every event (``Ledger.facts()``) without projecting
  it; then a full rebuild of every view. Both rates are printed with their ratio.
* **where openssl** — timed ``--samples`` times after a warm-up, now and at
  ``--at`` moments drawn evenly over the stream's time span: ``queries.where`` (every
  placement, as rows) and ``queries.where_counts`` (``--summary``: versions, host
  counts and services, counted in the database).

``--keep DIR`` keeps the generated SQLite ledger there and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.fleet import benchmark_fleet
from bench.machine import describe
from bench.memory import ROOT
from bench.postgres import create_schema, ledger_url, postgres_server, server_settings
from ledger.application import Ledger, append_in_batches, numbered_batches
from ledger.events import parse_event
from ledger.store import locate
from projections import queries
from projections.runner import Views
from projections.store import from_micros

WARM_UP = 5


@dataclass(frozen=True)
class Rebuild:
    backend: str
    events: int
    raw_seconds: float
    rebuild_seconds: float
    read_peak_mb: float  # peak RSS after the raw read, before the rebuild
    peak_mb: float
    breakdown: dict[str, float]  # seconds of the rebuild, by where they went

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def rebuild_rate(self) -> float:
        return self.events / self.rebuild_seconds

    @property
    def ratio(self) -> float:
        return self.rebuild_rate / self.raw_rate


@dataclass(frozen=True)
class Latency:
    backend: str
    query: str
    samples: int
    rows: float  # mean rows per answer (placements, or summary lines)
    p50_ms: float
    p95_ms: float


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.views", description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--min-events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100, help="timed queries of each kind")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the SQLite ledger here")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def generate(path: Path, hosts: int, min_events: int) -> None:
    if path.exists():
        say(f"reusing {path}")
        return
    say(f"generating and recording the fleet into {path}")
    ledger = Ledger(locate(str(path)), create=True)
    start = time.perf_counter()
    totals = append_in_batches(
        ledger,
        numbered_batches(benchmark_fleet(hosts=hosts, min_events=min_events)),
        source="demo",
        unit="events",
    )
    say(f"  {totals.stored:,} events in {time.perf_counter() - start:,.0f} s")
    ledger.close()


def copy_ledger(source: str, target: str) -> None:
    """Copy every fact, ``recorded_at`` included, so the bitemporal answers agree."""
    say("copying the ledger into PostgreSQL")
    from_ledger, to_ledger = Ledger(locate(source)), Ledger(locate(target), create=True)
    start = time.perf_counter()
    events = (parse_event(orjson.dumps(fact.event)) for fact in from_ledger.facts())
    totals = append_in_batches(to_ledger, numbered_batches(events), source="import", unit="events")
    say(f"  {totals.stored:,} events in {time.perf_counter() - start:,.0f} s")
    from_ledger.close()
    to_ledger.close()


def rebuild(backend: str, url: str) -> Rebuild:
    say(f"{backend}: raw read, then full rebuild, in a child process")
    done = subprocess.run(
        [sys.executable, "-m", "bench.views_child", url],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = json.loads(done.stdout)
    if child["read"] != child["rebuilt"]:
        raise RuntimeError(f"read {child['read']} events but rebuilt {child['rebuilt']}")
    return Rebuild(
        backend, child["read"], child["raw_seconds"], child["rebuild_seconds"],
        child["after_read_kib"] / 1024, child["peak_kib"] / 1024, child["breakdown"],
    )  # fmt: skip


def time_span(views: Views) -> tuple[datetime, datetime]:
    row = views.query("SELECT MIN(valid_from) AS first, MAX(valid_from) AS last FROM placements")[0]
    return from_micros(row["first"]), from_micros(row["last"])


def latency(backend: str, url: str, samples: int) -> list[Latency]:
    say(f"{backend}: where openssl, now and --at")
    views = Views(Ledger(locate(url)))
    first, last = time_span(views)
    rng = random.Random(7)
    moments = [first + (last - first) * rng.random() for _ in range(WARM_UP + samples)]
    cases: list[tuple[str, Callable[[int], int]]] = [
        ("where openssl", lambda i: len(queries.where(views, "openssl"))),
        ("where openssl --at T", lambda i: len(queries.where(views, "openssl", at=moments[i]))),
        ("  --summary", lambda i: len(queries.where_counts(views, "openssl"))),
        ("  --summary --at T",
         lambda i: len(queries.where_counts(views, "openssl", at=moments[i]))),
    ]  # fmt: skip
    results = timed(backend, cases, samples)
    views.ledger.close()
    return results


def timed(
    backend: str,
    cases: list[tuple[str, Callable[[int], int]]],
    samples: int,
    warm_up: int = WARM_UP,
    on_case: Callable[[str], None] = lambda label: None,
) -> list[Latency]:
    """p50 and p95 of each case (a label and a query of the sample's index returning its
    row count) over ``samples`` calls after ``warm_up`` unmeasured ones."""
    results = []
    for label, query in cases:
        on_case(label)
        timings, rows = [], []
        for i in range(warm_up + samples):
            start = time.perf_counter()
            answered = query(i)
            elapsed = time.perf_counter() - start
            if i >= warm_up:
                timings.append(elapsed)
                rows.append(answered)
        cuts = statistics.quantiles(timings, n=100, method="inclusive")
        results.append(
            Latency(backend, label, samples, statistics.mean(rows), cuts[49] * 1e3, cuts[94] * 1e3)
        )
    return results


def table(rebuilds: list[Rebuild], latencies: list[Latency], machine: Any) -> str:
    lines = [
        f"CPU         {machine.cpu}, {machine.cores} cores, {machine.ram_gib:.1f} GiB RAM",
        "Load        {:.2f} {:.2f} {:.2f} (1/5/15 min, at start)".format(*machine.load_average),
        "",
        f"Full rebuild of every view ({rebuilds[0].events:,} events)",
        f"  {'backend':<10}{'raw read':>14}{'rebuild':>14}{'rebuild/raw':>13}"
        f"{'peak RSS (read / rebuild)':>28}",
    ]
    lines += [
        f"  {r.backend:<10}{r.raw_rate:>9,.0f} ev/s{r.rebuild_rate:>9,.0f} ev/s"
        f"{r.ratio:>13.2f}{r.read_peak_mb:>17,.0f} / {r.peak_mb:,.0f} MB"
        for r in rebuilds
    ]
    for r in rebuilds:
        parts = sorted(r.breakdown.items(), key=lambda item: -item[1])
        lines.append(
            f"  {r.backend} rebuild, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in parts)
        )
    lines += ["", f"  {'backend':<10}{'query':<24}{'rows':>8}{'p50 ms':>9}{'p95 ms':>9}"]
    lines += [
        f"  {x.backend:<10}{x.query:<24}{x.rows:>8,.0f}{x.p50_ms:>9.1f}{x.p95_ms:>9.1f}"
        for x in latencies
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-views-") as folder:
        workdir = args.keep or Path(folder)
        workdir.mkdir(parents=True, exist_ok=True)
        sqlite_path = workdir / "fleet.db"
        generate(sqlite_path, args.hosts, args.min_events)
        rebuilds = [rebuild("sqlite", str(sqlite_path))]
        latencies = latency("sqlite", str(sqlite_path), args.samples)
        settings: dict[str, str] = {}
        if not args.skip_postgres:
            with postgres_server(Path(folder)) as server_url:
                url = ledger_url(server_url, create_schema(server_url, "views"))
                copy_ledger(str(sqlite_path), url)
                rebuilds.append(rebuild("postgres", url))
                latencies += latency("postgres", url, args.samples)
                settings = server_settings(server_url)
        machine = describe(load, settings)
    print(table(rebuilds, latencies, machine))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": asdict(machine),
                    "rebuild": [
                        asdict(r)
                        | {"raw_rate": r.raw_rate, "rebuild_rate": r.rebuild_rate, "ratio": r.ratio}
                        for r in rebuilds
                    ],
                    "latency": [asdict(x) for x in latencies],
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
