"""``python -m bench.cli``: how long people wait for ``ledger``, next to its baselines.

It records the demo fleet (``ledger demo``: 300 hosts, 30 services, about 19,800
events) into a temporary SQLite ledger once, then times, in rounds so that every
figure sees the same machine load:

* ``python -c "import click"`` — the floor of any click program (the baseline);
* ``ledger --version`` — target: at most 2x the baseline;
* ``ledger where openssl --summary`` on the demo — target: at most 3x ``--version``;
* ``ledger log --limit 0`` into a pipe that this process reads — target: at least
  20,000 rows/s, counted over the whole command (start-up included).

Every figure is the median of ``--repeat`` runs of a fresh process, wall time; the
median CPU time (user + system) of the same runs is printed beside it, as it moves less
on a busy machine. ``ledger`` is the virtualenv's entry point (``[project.scripts]``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION_TARGET = 2.0
QUERY_TARGET = 3.0
ROWS_TARGET = 20_000


@dataclass
class Timing:
    """The runs of one command: wall and CPU seconds, and rows written when counted."""

    command: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rows: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def ledger_command() -> list[str]:
    """The ``ledger`` entry point next to this interpreter, as people run it."""
    script = Path(sys.executable).with_name("ledger")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


def timed(argv: Sequence[str], timing: Timing, *, count_rows: bool = False) -> None:
    """Run ``argv`` once with standard output into a pipe read here."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()}")
    timing.wall.append(wall)
    timing.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if count_rows:
        timing.rows = done.stdout.count(b"\n") - 1  # the header line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__)
    parser.add_argument("--repeat", type=int, default=9, help="runs of each command")
    parser.add_argument("--hosts", type=int, default=300, help="ledger demo --hosts")
    parser.add_argument("--services", type=int, default=30, help="ledger demo --services")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    ledger = [*ledger_command(), "--ledger", str(folder / "demo.db")]
    subprocess.run(
        [*ledger, "demo", "--hosts", str(args.hosts), "--services", str(args.services)],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    click = Timing('python -c "import click"')
    version = Timing("ledger --version")
    query = Timing("ledger where openssl --summary")
    log = Timing("ledger log --limit 0 | (pipe)")
    runs: list[Callable[[], None]] = [
        lambda: timed([sys.executable, "-c", "import click"], click),
        lambda: timed([*ledger, "--version"], version),
        lambda: timed([*ledger, "where", "openssl", "--summary"], query),
        lambda: timed([*ledger, "log", "--limit", "0"], log, count_rows=True),
    ]
    for run in runs:  # a warm-up of each: the file cache, the bytecode
        run()
    for timing in (click, version, query, log):
        timing.wall.clear()
        timing.cpu.clear()
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        for run in runs:
            run()
    load_after = os.getloadavg()
    rows_per_s = log.rows / log.median
    return {
        "load_average_before": load_before,
        "load_average_after": load_after,
        "repeat": args.repeat,
        "timings": [
            asdict(t) | {"median": t.median, "median_cpu": t.median_cpu}
            for t in (click, version, query, log)
        ],
        "version_over_click": version.median / click.median,
        "query_over_version": query.median / version.median,
        "log_rows": log.rows,
        "log_rows_per_s": rows_per_s,
        "targets": {
            "version_over_click": VERSION_TARGET,
            "query_over_version": QUERY_TARGET,
            "log_rows_per_s": ROWS_TARGET,
        },
        "met": {
            "version_over_click": version.median / click.median <= VERSION_TARGET,
            "query_over_version": query.median / version.median <= QUERY_TARGET,
            "log_rows_per_s": rows_per_s >= ROWS_TARGET,
        },
    }


def report(result: dict[str, Any]) -> None:
    def load(values: Sequence[float]) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    print(
        f"load average (1/5/15 min): {load(result['load_average_before'])} before, "
        f"{load(result['load_average_after'])} after; median of {result['repeat']} runs"
    )
    for t in result["timings"]:
        print(
            f"  {t['command']:<34} {t['median'] * 1000:7.0f} ms wall "
            f"{t['median_cpu'] * 1000:7.0f} ms CPU"
        )
    met = result["met"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(
        f"ledger --version / import click:  {result['version_over_click']:.2f}x "
        f"(target <= {VERSION_TARGET:g}x: {verdict(met['version_over_click'])})"
    )
    print(
        f"where --summary / --version:      {result['query_over_version']:.2f}x "
        f"(target <= {QUERY_TARGET:g}x: {verdict(met['query_over_version'])})"
    )
    print(
        f"log --limit 0 into a pipe:        {result['log_rows_per_s']:,.0f} rows/s over "
        f"{result['log_rows']:,} rows (target >= {ROWS_TARGET:,}: "
        f"{verdict(met['log_rows_per_s'])})"
    )


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        result = measure(args, Path(folder))
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
