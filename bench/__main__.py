"""``python -m bench``: run every benchmark once, print a table, optionally write JSON.

Order matters: the memory benchmark runs first because it reads the peak RSS of all
waited-for children, and pgserver starts subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.events import HOSTS, SERVICES, EventsFile, write_events
from bench.ingest import Throughput, postgres_throughput, sqlite_throughput
from bench.latency import WARM_UP, Latency, postgres_latency, sqlite_latency
from bench.machine import Machine, describe
from bench.memory import Memory, ingest_memory
from bench.postgres import postgres_server, server_settings


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events in the throughput file")
    parser.add_argument(
        "--memory-events", type=int, default=1_000_000, help="events in the memory file"
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory benchmark")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="events per transaction in the ingest"
    )
    parser.add_argument("--latency-samples", type=int, default=2000, help="timed single appends")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fleet(events: EventsFile) -> str:
    return (
        f"{events.events:,} events, {events.size_bytes / 1e6:,.1f} MB "
        f"(demo fleet of {HOSTS} hosts and {SERVICES} services, {events.fleets} seed(s))"
    )


def record(item: Any, **extra: Any) -> dict[str, Any]:
    """A result dataclass as JSON-ready fields (temporary paths left out), plus ``extra``."""
    return {k: v for k, v in asdict(item).items() if k != "path"} | extra


def table(
    machine: Machine,
    events: EventsFile,
    throughput: list[Throughput],
    latency: list[Latency],
    memory: tuple[EventsFile, Memory] | None,
) -> str:
    pg = machine.postgres
    lines = [
        f"CPU         {machine.cpu}, {machine.cores} cores, {machine.ram_gib:.1f} GiB RAM",
        "Load        {:.2f} {:.2f} {:.2f} (1/5/15 min, at start)".format(*machine.load_average),
        f"Python      {machine.python}, eventsourcing {machine.eventsourcing}, "
        f"psycopg {machine.psycopg}",
        f"SQLite      {machine.sqlite}",
        f"PostgreSQL  {pg['server_version']} (fsync={pg['fsync']}, synchronous_commit="
        f"{pg['synchronous_commit']}, shared_buffers={pg['shared_buffers']})",
        "",
        f"Ingest throughput: {fleet(events)}",
        f"  {'backend':<12}{'ledger ingest':>16}{'raw executemany':>18}{'ledger/raw':>12}",
    ]
    for t in throughput:
        lines.append(
            f"  {t.backend:<12}{t.ledger_rate:>12,.0f} ev/s{t.raw_rate:>12,.0f} rows/s"
            f"{t.ratio:>12.3f}"
        )
    samples = latency[0].samples if latency else 0
    lines += [
        "",
        f"Single-event append latency: {samples:,} samples after {WARM_UP} warm-up appends",
        f"  {'backend':<12}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    lines += [f"  {x.backend:<12}{x.p50_ms:>10.2f}{x.p99_ms:>10.2f}" for x in latency]
    if memory is not None:
        file, m = memory
        lines += [
            "",
            f"Peak memory, SQLite ingest in a child process: {fleet(file)}",
            f"  peak RSS {m.peak_mb:,.0f} MB ({m.before_ingest_mb:,.0f} MB before the ingest "
            f"began), {m.rate:,.0f} ev/s",
        ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as folder:
        workdir = Path(folder)
        memory: tuple[EventsFile, Memory] | None = None
        if not args.skip_memory:
            say(f"writing {args.memory_events:,} events for the memory benchmark")
            big = write_events(workdir / "memory.jsonl", args.memory_events)
            say("ingesting them into SQLite in a child process")
            memory = big, ingest_memory(big, workdir)
            big.path.unlink()

        say(f"writing {args.events:,} events for the throughput benchmark")
        events = write_events(workdir / "events.jsonl", args.events)
        say("SQLite: ingest, raw baseline, append latency")
        throughput = [sqlite_throughput(events, workdir, args.batch_size)]
        latency = [sqlite_latency(workdir, args.latency_samples)]
        say("PostgreSQL: starting the server")
        with postgres_server(workdir) as server_url:
            say("PostgreSQL: ingest, raw baseline, append latency")
            throughput.append(postgres_throughput(events, server_url, args.batch_size))
            latency.append(postgres_latency(server_url, args.latency_samples))
            machine = describe(load, server_settings(server_url))

    print(table(machine, events, throughput, latency, memory))
    if args.json is not None:
        results = {
            "machine": record(machine),
            "events_file": record(events),
            "throughput": [
                record(t, ledger_rate=t.ledger_rate, raw_rate=t.raw_rate, ratio=t.ratio)
                for t in throughput
            ],
            "latency": [record(x) for x in latency],
            "memory": None
            if memory is None
            else record(memory[1], rate=memory[1].rate, file=record(memory[0])),
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
