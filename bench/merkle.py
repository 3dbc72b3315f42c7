"""``python -m bench.merkle``: what keeping the Merkle tree costs, and what it buys.

Append rate: the same prepared small events (``bench.events.small_events``) appended
with ``Ledger.append`` in batches of 1, 100 and 1000 events, each batch one transaction,
to a fresh ledger per measurement, by three variants in the same run: without the tree
(``keeps_merkle_tree = False``), and with the tree stored from level 4 (what the ledger
does: lower nodes are hashed from the chain hashes under them when a proof needs them),
from level 1 and from level 0 (every leaf hash stored too). The variants take turns,
round after round, and each figure is the median of the rounds, so that the machine's
load drifts over all of them alike. Both the wall-clock rate and the process CPU time
are recorded: on a loaded shared machine the CPU ratio is the steadier one on SQLite
(where all the work is in process); on PostgreSQL the server's work is not in it.

Large ledger: a SQLite (and PostgreSQL) ledger of ``--events`` small events, built with
``Ledger.append`` in batches of 10,000 (so the tree is the one appends maintain), then
timed: a tree head of the whole ledger and of random sizes, inclusion proofs of random
positions and consistency proofs between random sizes (each call includes reading the
head), and a checkpoint: a tree head plus an Ed25519 signature (``cryptography``) of its
C2SP checkpoint text. Every proof is verified once outside the timing.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.events import small_events
from bench.postgres import create_schema, drop_schema, ledger_url, postgres_server
from ledger.application import Ledger, PreparedEvent, prepare
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.store import locate

VARIANTS = {
    "without tree": None,
    "tree from level 4": 4,
    "tree from level 1": 1,
    "tree from level 0": 0,
}
BASE = "without tree"
BATCH_EVENTS = {1: 1_000, 100: 20_000, 1000: 40_000}
"""Events per measurement: each takes about half a second or more on SQLite, so that a
burst of load on the shared machine moves the median of the rounds less."""
BUILD_BATCH = 10_000


@dataclass(frozen=True)
class AppendRate:
    backend: str
    batch: int
    events: int
    rates: dict[str, float]  # events/s (wall clock), median over rounds
    cpu: dict[str, float]  # process CPU seconds per 1000 events, median over rounds

    def ratio(self, variant: str) -> float:
        return self.rates[variant] / self.rates[BASE]

    def cpu_ratio(self, variant: str) -> float:
        """The rate the CPU time alone allows, over the one without the tree."""
        return self.cpu[BASE] / self.cpu[variant]


@dataclass(frozen=True)
class Timing:
    what: str
    samples: int
    p50_ms: float
    max_ms: float


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_variant(url: str, variant: str) -> Ledger:
    level = VARIANTS[variant]
    ledger = Ledger(locate(url), create=True)
    ledger.keeps_merkle_tree = level is not None
    ledger.lowest_stored_level = level or 0
    return ledger


def timed_appends(
    url: str, variant: str, events: Sequence[PreparedEvent], batch: int
) -> tuple[float, float]:
    """Events per second (wall clock), and CPU seconds per 1000 events."""
    ledger = open_variant(url, variant)
    try:
        ledger.append(list(events[:batch]))  # warm-up: connections, statements
        rest = events[batch:]
        start, cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(rest), batch):
            ledger.append(list(rest[first : first + batch]))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return len(rest) / wall, cpu / len(rest) * 1000
    finally:
        ledger.close()


def append_rates(
    backend: str, fresh_url: Callable[[], tuple[str, Callable[[], None]]], rounds: int
) -> list[AppendRate]:
    results = []
    for batch, count in BATCH_EVENTS.items():
        events = [prepare(e) for e in small_events(count + batch)]
        samples: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        for round_ in range(rounds):
            order = list(VARIANTS) if round_ % 2 == 0 else list(VARIANTS)[::-1]
            for variant in order:
                url, cleanup = fresh_url()
                try:
                    samples[variant].append(timed_appends(url, variant, events, batch))
                finally:
                    cleanup()
        rates = {v: statistics.median(r for r, _ in s) for v, s in samples.items()}
        cpu = {v: statistics.median(c for _, c in s) for v, s in samples.items()}
        result = AppendRate(backend, batch, count, rates, cpu)
        say(
            f"{backend} batch {batch}: "
            + ", ".join(
                f"{v} {r:,.0f}/s ({result.ratio(v):.1%}, cpu {result.cpu_ratio(v):.1%})"
                for v, r in rates.items()
            )
        )
        results.append(result)
    return results


def build(ledger: Ledger, count: int) -> float:
    start = time.perf_counter()
    done = ledger.count()
    while done < count:
        size = min(BUILD_BATCH, count - done)
        ledger.append([prepare(e) for e in small_events(size)])
        done += size
        if done % 100_000 == 0:
            say(f"  built {done:,} events ({time.perf_counter() - start:.0f} s)")
    return time.perf_counter() - start


def timed(what: str, samples: int, call: Callable[[int], object]) -> Timing:
    seconds = []
    for i in range(samples):
        start = time.perf_counter()
        call(i)
        seconds.append(time.perf_counter() - start)
    return Timing(what, samples, statistics.median(seconds) * 1000, max(seconds) * 1000)


def large_ledger(ledger: Ledger, samples: int) -> list[Timing]:
    size = ledger.count()
    rng = random.Random(19)
    positions = [rng.randint(1, size) for _ in range(samples)]
    olds = [rng.randint(1, size) for _ in range(samples)]
    for position, old in zip(positions[:20], olds[:20], strict=True):
        proof = ledger.inclusion_proof(position)
        verify_inclusion(position - 1, size, leaf_hash(proof.chain_hash), proof.hashes, proof.root)
        consistency = ledger.consistency_proof(old)
        verify_consistency(
            old, size, consistency.old_root, consistency.new_root, consistency.hashes
        )
    key = Ed25519PrivateKey.generate()

    def checkpoint(_: int) -> bytes:
        head = ledger.tree_head()
        body = f"bench.example/ledger\n{head.size}\n{base64.b64encode(head.root).decode()}\n"
        return key.sign(body.encode())

    return [
        timed("tree head (whole ledger)", samples, lambda _: ledger.tree_head()),
        timed("tree head (random size)", samples, lambda i: ledger.tree_head(olds[i])),
        timed("inclusion proof", samples, lambda i: ledger.inclusion_proof(positions[i])),
        timed(
            "inclusion proof (random size)",
            samples,
            lambda i: ledger.inclusion_proof(
                min(positions[i], olds[i]), max(positions[i], olds[i])
            ),
        ),
        timed("consistency proof", samples, lambda i: ledger.consistency_proof(olds[i])),
        timed("checkpoint (head + Ed25519)", samples, checkpoint),
        timed("Ed25519 signature alone", samples, lambda _: key.sign(b"x" * 120)),
    ]


def markdown(
    load: tuple[float, float, float],
    rates: list[AppendRate],
    large: dict[str, tuple[int, float, list[Timing]]],
    command: str,
) -> str:
    lines = [
        "## Merkle tree: append cost, tree heads, proofs, checkpoints",
        "",
        f"`{command}`; load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        f"(2 cores, shared machine; compare ratios only within this run).",
        "",
        "Append rate with the tree maintained vs without (same run, same prepared small "
        "events, fresh ledger per measurement, median of the rounds). Rate = wall-clock "
        "events/s and its ratio to the rate without the tree; CPU = the same ratio from "
        "the process's CPU time alone (steadier under load; on PostgreSQL it leaves out "
        "the server's work):",
        "",
        "| backend | batch | events | "
        + " | ".join(f"{v}: rate, ratio, CPU ratio" for v in VARIANTS)
        + " |",
        "| --- | ---: | ---: |" + " ---: |" * len(VARIANTS),
    ]
    for r in rates:
        cells = [f"{r.rates[v]:,.0f}/s, {r.ratio(v):.1%}, {r.cpu_ratio(v):.1%}" for v in VARIANTS]
        lines.append(f"| {r.backend} | {r.batch:,} | {r.events:,} | " + " | ".join(cells) + " |")
    for backend, (events, build_seconds, timings) in large.items():
        lines += [
            "",
            f"{backend}, a ledger of {events:,} small events (built with `Ledger.append` in "
            f"batches of {BUILD_BATCH:,}, {build_seconds:.0f} s), each call timed alone "
            f"(it reads the head too):",
            "",
            "| operation | samples | median | max |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {t.what} | {t.samples} | {t.p50_ms:.2f} ms | {t.max_ms:.2f} ms |" for t in timings
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.merkle", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the large ledger")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the append comparison")
    parser.add_argument("--samples", type=int, default=200, help="timed calls per operation")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument("--skip-large", action="store_true", help="only the append rates")
    parser.add_argument("--markdown", type=Path, help="write the Markdown section here")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    backends = args.backends.split(",")
    load = os.getloadavg()
    say(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    rates: list[AppendRate] = []
    large: dict[str, tuple[int, float, list[Timing]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-merkle-") as work:
        workdir = Path(work)
        counter = iter(range(1_000_000))

        def fresh_sqlite() -> tuple[str, Callable[[], None]]:
            path = workdir / f"append-{next(counter)}.db"

            def cleanup() -> None:
                for file in workdir.glob(f"{path.name}*"):
                    file.unlink()

            return str(path), cleanup

        if "sqlite" in backends:
            rates += append_rates("SQLite", fresh_sqlite, args.rounds)
        with postgres_server(workdir) if "postgres" in backends else _no_server() as server:

            def fresh_postgres() -> tuple[str, Callable[[], None]]:
                schema = create_schema(server, "bench_merkle")
                return ledger_url(server, schema), lambda: drop_schema(server, schema)

            if server:
                rates += append_rates("PostgreSQL", fresh_postgres, args.rounds)
            if not args.skip_large:
                for backend in backends:
                    url, cleanup = fresh_sqlite() if backend == "sqlite" else fresh_postgres()
                    name = "SQLite" if backend == "sqlite" else "PostgreSQL"
                    try:
                        ledger = Ledger(locate(url), create=True)
                        say(f"building a {args.events:,}-event {name} ledger")
                        seconds = build(ledger, args.events)
                        timings = large_ledger(ledger, args.samples)
                        for t in timings:
                            say(f"{name} {t.what}: median {t.p50_ms:.2f} ms, max {t.max_ms:.2f}")
                        large[name] = (args.events, seconds, timings)
                        ledger.close()
                    finally:
                        cleanup()
    command = "python -m bench.merkle " + " ".join(argv)
    text = markdown(load, rates, large, command.strip())
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


class _no_server:
    """A stand-in for ``postgres_server`` when PostgreSQL is not benchmarked."""

    def __enter__(self) -> str:
        return ""

    def __exit__(self, *_: object) -> None:
        return None


if __name__ == "__main__":
    main(sys.argv[1:])
