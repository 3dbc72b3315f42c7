"""``python -m bench.exposure``: exposure and vulns on the bench fleet with 20,000 advisories.

Issue 17 asks for ``vulns`` and ``exposure ID`` at fleet scale, next to
``where openssl --summary`` in the same run (targets: exposure within 3x of it, vulns under
a second). The fleet is ``bench.views``' (10,000 hosts, 1,000,000 events; ``--keep DIR``
reuses ``DIR/fleet.db``). Each run works on a copy of it (``exposure.db``), so the kept
fleet never holds advisories and every run records them afresh:

1. the views are brought up to date on the fleet alone (the advisories view reads the
   stream once, finding nothing);
2. ``--advisories`` generated records are imported (``import_advisories``, what
   ``ledger advisories import`` runs): NVD CVE JSON 2.0 records shaped like
   ``tests.unit.test_advisory_files.generated_cve``, most naming products the fleet does
   not run, ``--hitting`` of them naming packages its closures hold (read from the views,
   with bounds that take in some, all or none of their versions), and ``--osv`` OSV
   records for purl ecosystems (the fleet's closures are all Nix, so these touch nothing
   but are looked up like any other);
3. timed: the catch-up that applies them, then a rebuild of the advisories view alone
   (drop, replay the whole stream, indexes);
4. timed, ``--samples`` times after a warm-up: ``where openssl --summary``,
   ``exposure`` of an advisory covering every openssl version the fleet runs, of one
   covering its oldest (1.0.1p) and of one naming openssl versions it does not run,
   ``vulns`` now and ``--at`` moments drawn over the stream's time span. The ratios of
   each exposure to ``where --summary`` (p50), and vulns against its target (p95), end
   the table.

``--postgres`` does the same on PostgreSQL (``bench.postgres``): the fleet's events are
copied into a fresh schema, the views caught up, the same files imported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cmp_to_key
from pathlib import Path
from typing import Any

from bench.postgres import create_schema, ledger_url, postgres_server
from bench.views import Latency, copy_ledger, generate, say, time_span, timed
from ledger.advisories.record import import_advisories
from ledger.application import Ledger
from ledger.store import locate
from projections import queries
from projections.exposure import exposure
from projections.runner import Views
from projections.versions import compare_versions
from projections.vulns import vulns
from tests.unit.test_advisory_files import generated_cve

WARM_UP = 2
HITS_ALL = "CVE-2025-0001"
"""Names openssl from 1.0.1 up to 3.0.14, excluded: every openssl the fleet runs."""
HITS_NONE = "CVE-2025-0002"
"""Names openssl 3.1.0 up to 3.1.5: versions the fleet never ran."""
HITS_ONE = "CVE-2025-0003"
"""Names openssl 1.0.1 up to 1.0.2, excluded: the fleet's oldest openssl, 1.0.1p."""
OSV_ECOSYSTEMS = ("PyPI", "npm", "Go", "crates.io", "Maven", "Debian:12", "RubyGems")


@dataclass(frozen=True)
class Setup:
    backend: str
    advisories: int
    import_seconds: float
    catch_up_seconds: float
    rebuild_seconds: float
    rebuilt_events: int


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.exposure", description=__doc__)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the fleet here")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    parser.add_argument("--advisories", type=int, default=20_000)
    parser.add_argument(
        "--hitting", type=int, default=300, help="NVD records naming fleet packages"
    )
    parser.add_argument("--osv", type=int, default=300, help="OSV records (purl ecosystems)")
    parser.add_argument("--samples", type=int, default=20, help="timed queries of each kind")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--min-events", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


# --- the advisories --------------------------------------------------------------------


def nvd_record(advisory_id: str, matches: list[dict[str, Any]], index: int) -> dict[str, Any]:
    """A CVE shaped like ``generated_cve``'s, with its own id and CPE matches."""
    cve = generated_cve(index)
    cve["id"] = advisory_id
    cve["configurations"] = [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}]
    return cve


def cpe_match(product: str, version: str = "*", **bounds: str) -> dict[str, Any]:
    return {
        "vulnerable": True,
        "criteria": f"cpe:2.3:a:{product}:{product}:{version}:*:*:*:*:*:*:*",
        "matchCriteriaId": "9EE79AC6-5484-4A53-8333-373DAD1B5649",
        **bounds,
    }


def fleet_packages(views: Views) -> dict[str, list[str]]:
    """Each package name the fleet's closures hold → its versions, oldest first."""
    found: dict[str, list[str]] = {}
    for row in views.query("SELECT DISTINCT match_name, version FROM build_packages"):
        found.setdefault(row["match_name"], []).append(row["version"])
    order = cmp_to_key(compare_versions)
    return {name: sorted(versions, key=order) for name, versions in sorted(found.items())}


def hitting_matches(rng: random.Random, versions: list[str], name: str) -> list[dict[str, Any]]:
    """Bounds over a fleet package: up to one of its versions, exactly one, or none."""
    pick = rng.randrange(len(versions))
    kind = rng.random()
    if kind < 0.5:
        return [cpe_match(name, versionEndIncluding=versions[pick])]
    if kind < 0.8:
        return [cpe_match(name, versions[pick])]
    return [cpe_match(name, versionStartIncluding="999.0", versionEndExcluding="999.9")]


def nvd_feed(packages: dict[str, list[str]], records: int, hitting: int) -> Iterator[Any]:
    rng = random.Random(17)
    names = list(packages)
    yield nvd_record(
        HITS_ALL,
        [cpe_match("openssl", versionStartIncluding="1.0.1", versionEndExcluding="3.0.14")],
        0,
    )
    yield nvd_record(
        HITS_NONE,
        [cpe_match("openssl", versionStartIncluding="3.1.0", versionEndExcluding="3.1.5")],
        1,
    )
    yield nvd_record(
        HITS_ONE,
        [cpe_match("openssl", versionStartIncluding="1.0.1", versionEndExcluding="1.0.2")],
        2,
    )
    hit_every = max(1, (records - 3) // max(1, hitting))
    for index in range(records - 3):
        advisory_id = f"CVE-2024-{index + 10000}"
        if index % hit_every == 0 and index // hit_every < hitting:
            name = rng.choice(names)
            matches = hitting_matches(rng, packages[name], name)
        else:
            matches = [
                cpe_match(f"product{rng.randrange(7919)}", versionEndExcluding=f"2.{index % 50}")
            ]
        yield nvd_record(advisory_id, matches, index)


def osv_records(count: int) -> list[dict[str, Any]]:
    rng = random.Random(18)
    return [
        {
            "id": f"GHSA-bnch-{index:04d}-xxxx",
            "modified": "2024-06-01T12:00:00Z",
            "published": "2024-03-01T12:00:00Z",
            "aliases": [f"CVE-2024-{10000 + rng.randrange(19_000)}"] if index % 3 == 0 else [],
            "summary": f"A flaw in package-{index}",
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}
            ],
            "affected": [
                {
                    "package": {
                        "ecosystem": OSV_ECOSYSTEMS[index % len(OSV_ECOSYSTEMS)],
                        "name": f"package-{index}",
                    },
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": f"1.{index % 20}.3"}],
                        }
                    ],
                }
            ],
        }
        for index in range(count)
    ]


def write_feeds(
    folder: Path, packages: dict[str, list[str]], args: argparse.Namespace
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    nvd = folder / "nvdcve-2.0-bench.json"
    records = args.advisories - args.osv
    with nvd.open("w") as out:
        out.write(f'{{"resultsPerPage": {records}, "startIndex": 0, "totalResults": {records}, ')
        out.write('"format": "NVD_CVE", "version": "2.0", "timestamp": "2026-01-01T00:00:00.000",')
        out.write(' "vulnerabilities": [')
        for index, cve in enumerate(nvd_feed(packages, records, args.hitting)):
            out.write(("," if index else "") + json.dumps({"cve": cve}))
        out.write("]}")
    osv = folder / "osv-bench.json"
    osv.write_text(json.dumps(osv_records(args.osv)))
    return [nvd, osv]


# --- the measurements ------------------------------------------------------------------


def record_advisories(backend: str, url: str, feeds: list[Path]) -> Setup:
    ledger = Ledger(locate(url))
    views = Views(ledger)
    say(f"{backend}: views up to date on the fleet alone")
    views.catch_up()  # on SQLite, done already while reading the fleet's packages
    say(f"{backend}: importing {', '.join(f.name for f in feeds)}")
    start = time.perf_counter()
    report = import_advisories(ledger, feeds, actor="bench")
    imported = time.perf_counter() - start
    say(f"  {report.stored:,} stored in {imported:.1f} s; catching up")
    start = time.perf_counter()
    views.catch_up()
    caught_up = time.perf_counter() - start
    say(f"  {caught_up:.1f} s; rebuilding the advisories view")
    start = time.perf_counter()
    replayed = views.rebuild(["advisories"])
    rebuilt = time.perf_counter() - start
    ledger.close()
    return Setup(backend, report.stored, imported, caught_up, rebuilt, replayed)


def latency(backend: str, url: str, samples: int) -> list[Latency]:
    views = Views(Ledger(locate(url)))
    first, last = time_span(views)
    rng = random.Random(7)
    moments = [first + (last - first) * rng.random() for _ in range(WARM_UP + samples)]
    cases: list[tuple[str, Callable[[int], int]]] = [
        ("where openssl --summary", lambda i: len(queries.where_counts(views, "openssl"))),
        (f"exposure {HITS_ALL}", lambda i: len(exposure(views, HITS_ALL).affected)),
        (f"exposure {HITS_ONE}", lambda i: len(exposure(views, HITS_ONE).affected)),
        (f"exposure {HITS_NONE}", lambda i: len(exposure(views, HITS_NONE).affected)),
        ("vulns", lambda i: len(vulns(views))),
        ("vulns --at T", lambda i: len(vulns(views, at=moments[i]))),
    ]
    results = timed(
        backend, cases, samples, WARM_UP, on_case=lambda label: say(f"{backend}: {label}")
    )
    views.ledger.close()
    return results


def table(load: tuple[float, ...], setups: list[Setup], latencies: list[Latency]) -> str:
    lines = ["Load {:.2f} {:.2f} {:.2f} (1/5/15 min, at start)".format(*load), ""]
    lines.append(
        f"  {'backend':<10}{'advisories':>11}{'import s':>10}{'catch-up s':>12}"
        f"{'rebuild s (events)':>24}"
    )
    lines += [
        f"  {s.backend:<10}{s.advisories:>11,}{s.import_seconds:>10.1f}{s.catch_up_seconds:>12.1f}"
        f"{s.rebuild_seconds:>12.1f} ({s.rebuilt_events:,})"
        for s in setups
    ]
    lines += ["", f"  {'backend':<10}{'query':<30}{'rows':>8}{'p50 ms':>10}{'p95 ms':>10}"]
    lines += [
        f"  {x.backend:<10}{x.query:<30}{x.rows:>8,.0f}{x.p50_ms:>10.1f}{x.p95_ms:>10.1f}"
        for x in latencies
    ]
    lines.append("")
    for backend in dict.fromkeys(x.backend for x in latencies):
        mine = {x.query: x for x in latencies if x.backend == backend}
        base = mine["where openssl --summary"]
        for label in (f"exposure {HITS_ALL}", f"exposure {HITS_ONE}", f"exposure {HITS_NONE}"):
            ratio = mine[label].p50_ms / base.p50_ms
            lines.append(f"  {backend}: {label} / where --summary, p50: {ratio:.2f} (target 3)")
        for label in ("vulns", "vulns --at T"):
            x = mine[label]
            verdict = "met" if x.p95_ms < 1000 else "NOT met"
            lines.append(
                f"  {backend}: {label} p95 {x.p95_ms:,.0f} ms (target 1,000 ms: {verdict})"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-exposure-") as folder:
        workdir = args.keep or Path(folder)
        workdir.mkdir(parents=True, exist_ok=True)
        fleet = workdir / "fleet.db"
        generate(fleet, args.hosts, args.min_events)
        copy = Path(folder) / "exposure.db"
        say(f"copying {fleet} to {copy}")
        shutil.copyfile(fleet, copy)
        views = Views(Ledger(locate(str(copy))))
        say("sqlite: views up to date on the fleet alone")
        views.catch_up()
        packages = fleet_packages(views)
        views.ledger.close()
        feeds = write_feeds(Path(folder) / "advisories", packages, args)
        setups = [record_advisories("sqlite", str(copy), feeds)]
        latencies = latency("sqlite", str(copy), args.samples)
        if args.postgres:
            with postgres_server(Path(folder)) as server_url:
                url = ledger_url(server_url, create_schema(server_url, "exposure"))
                copy_ledger(str(fleet), url)
                setups.append(record_advisories("postgres", url, feeds))
                latencies += latency("postgres", url, args.samples)
    print(table(load, setups, latencies))
    if args.json:
        results = {
            "load_at_start": load,
            "load_at_end": os.getloadavg(),
            "setup": [asdict(s) for s in setups],
            "latency": [asdict(x) for x in latencies],
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
