"""``python -m bench.imports``: importing a 5,000-path Nix closure, next to a raw baseline.

The closure is synthetic, in exactly the shape of the real ``nix path-info --json
--recursive`` output in tests/fixtures/nix/path-info.json (Nix 2.8: a list of objects
with path, narHash, narSize, references, deriver, registrationTime, ultimate): N store
paths with nixpkgs-like names, each referencing itself and up to eight earlier paths,
and one root that references every path nothing else references.

Ledger side, timed end to end, each run into a fresh, empty ledger: parse the file,
find the root and its closure, build and validate the components and the
build_recorded event, look up its id, and append it (``nix.path_info_builds`` then
``base.record``, what ``ledger import nix-path-info`` runs). Then the same file again
into the same ledger: everything is already recorded. Raw side: ``json.loads`` of the
same bytes and splitting every store path's name into name and version, nothing else.
Each figure is the best of ``--repeat`` runs; opening the ledger is not timed.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.machine import describe
from bench.postgres import (
    create_schema,
    drop_schema,
    ledger_url,
    postgres_server,
    server_settings,
)
from ledger.application import Ledger
from ledger.importers import nix
from ledger.importers.base import record
from ledger.importers.storepath import split_name
from ledger.store import locate

NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"
NAMES = [
    "glibc", "zlib", "openssl", "curl", "libxml2", "ncurses", "readline", "bash", "perl",
    "python3", "gcc-wrapper", "libffi", "sqlite", "xz", "bzip2", "pcre2", "icu4c",
    "python3.11-cryptography", "util-linux-minimal", "systemd", "nghttp2", "libidn2",
]  # fmt: skip
SUFFIXES = ["", "", "", "-lib", "-dev", "-bin", "-man"]
REGISTERED = 1795573133
"""registrationTime of the real fixture's paths; the synthetic ones count up from it."""


def store_hash(rng: random.Random) -> str:
    return "".join(rng.choice(NIX_BASE32) for _ in range(32))


def synthetic_closure(paths: int, seed: int = 4) -> bytes:
    """``nix path-info --json --recursive`` of a made-up closure of ``paths`` store paths."""
    rng = random.Random(seed)
    names = []
    for index in range(paths - 1):
        name = rng.choice(NAMES)
        version = f"{rng.randint(0, 40)}.{rng.randint(0, 20)}.{index}"
        names.append(f"/nix/store/{store_hash(rng)}-{name}-{version}{rng.choice(SUFFIXES)}")
    references = [
        sorted({names[i], *(names[j] for j in rng.sample(range(i), min(i, rng.randint(0, 8))))})
        for i in range(len(names))
    ]
    referenced = {ref for i, refs in enumerate(references) for ref in refs if ref != names[i]}
    root = f"/nix/store/{store_hash(rng)}-api-2.4.1"
    names.append(root)
    references.append(sorted({root, *(n for n in names[:-1] if n not in referenced)}))
    entries = [
        {
            "path": path,
            "narHash": "sha256-" + base64.b64encode(rng.randbytes(32)).decode(),
            "narSize": rng.randint(128, 50_000_000),
            "references": refs,
            "deriver": f"/nix/store/{store_hash(rng)}-{path[44:]}.drv",
            "registrationTime": REGISTERED + index,
            "ultimate": True,
        }
        for index, (path, refs) in enumerate(zip(names, references, strict=True))
    ]
    entries.sort(key=lambda entry: str(entry["path"]))  # Nix prints them sorted by path
    return json.dumps(entries, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ImportTiming:
    backend: str
    paths: int
    import_seconds: float
    again_seconds: float
    raw_seconds: float

    @property
    def import_rate(self) -> float:
        return self.paths / self.import_seconds

    @property
    def again_rate(self) -> float:
        return self.paths / self.again_seconds

    @property
    def raw_rate(self) -> float:
        return self.paths / self.raw_seconds


def timed(action: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def import_file(ledger: Ledger, data: bytes, paths: int) -> None:
    builds = nix.path_info_builds("closure.json", data, service=None)
    report = record(ledger, "closure.json", builds, env="bench", actor="bench")
    if [b.paths for b in report.builds] != [paths]:
        raise RuntimeError(f"expected one build of {paths} paths, got {report.builds}")


def raw_baseline(data: bytes) -> None:
    for entry in json.loads(data):
        split_name(entry["path"][44:])


def measure(
    backend: str, urls: Iterator[str], data: bytes, paths: int, repeat: int
) -> ImportTiming:
    first: list[float] = []
    again: list[float] = []
    for _ in range(repeat):
        ledger = Ledger(locate(next(urls)), create=True)
        try:
            first.append(timed(import_file, ledger, data, paths))
            again.append(timed(import_file, ledger, data, paths))
        finally:
            ledger.close()
    raw = min(timed(raw_baseline, data) for _ in range(repeat))
    return ImportTiming(backend, paths, min(first), min(again), raw)


def sqlite_urls(workdir: Path) -> Iterator[str]:
    for run in itertools.count():
        yield str(workdir / f"imports-{run}.db")


@contextmanager
def postgres_urls(server_url: str) -> Iterator[Iterator[str]]:
    schemas: list[str] = []

    def urls() -> Iterator[str]:
        while True:
            schemas.append(create_schema(server_url, "bench_imports"))
            yield ledger_url(server_url, schemas[-1])

    try:
        yield urls()
    finally:
        for schema in schemas:
            drop_schema(server_url, schema)


def report(results: list[ImportTiming], machine_lines: list[str], size: int) -> str:
    paths = results[0].paths
    lines = [
        *machine_lines,
        "",
        f"Importing a {paths:,}-path Nix closure (synthetic, {size / 1e6:.1f} MB of "
        "nix path-info --json)",
        f"  {'backend':<12}{'import':>14}{'again':>14}{'raw baseline':>18}{'import/raw':>12}",
    ]
    for r in results:
        lines.append(
            f"  {r.backend:<12}{r.import_rate:>8,.0f} pth/s{r.again_rate:>8,.0f} pth/s"
            f"{r.raw_rate:>12,.0f} pth/s{r.import_rate / r.raw_rate:>12.3f}"
        )
    lines.append(
        "  (import: parse, closure, validate, event, append into an empty ledger; again: the "
        "same file once more, all already recorded; raw: json.loads and name splitting)"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--paths", type=int, default=5000, help="store paths in the closure")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    data = synthetic_closure(args.paths)
    with tempfile.TemporaryDirectory(prefix="ledger-bench-imports-") as folder:
        workdir = Path(folder)
        print("SQLite: importing", file=sys.stderr, flush=True)
        results = [measure("SQLite", sqlite_urls(workdir), data, args.paths, args.repeat)]
        settings: dict[str, str] = {}
        if not args.skip_postgres:
            print("PostgreSQL: starting the server, importing", file=sys.stderr, flush=True)
            with postgres_server(workdir) as server_url, postgres_urls(server_url) as urls:
                settings = server_settings(server_url)
                results.append(measure("PostgreSQL", urls, data, args.paths, args.repeat))
    machine = describe(load, settings)
    machine_lines = [
        f"CPU         {machine.cpu}, {machine.cores} cores, {machine.ram_gib:.1f} GiB RAM",
        "Load        {:.2f} {:.2f} {:.2f} (1/5/15 min, at start)".format(*machine.load_average),
        f"Python      {machine.python}, eventsourcing {machine.eventsourcing}, "
        f"psycopg {machine.psycopg}",
        f"SQLite      {machine.sqlite}",
    ]
    if settings:
        machine_lines.append(
            f"PostgreSQL  {settings['server_version']} (fsync={settings['fsync']}, "
            f"synchronous_commit={settings['synchronous_commit']})"
        )
    print(report(results, machine_lines, len(data)))


if __name__ == "__main__":
    main(sys.argv[1:])
