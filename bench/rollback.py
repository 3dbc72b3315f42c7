"""``python -m bench.rollback``: planning a rollback for 10,000 hosts running 50 services.

The fleet: ``--hosts`` hosts in production, each running 3-10 of 50 services (services
depend on lower-numbered ones, three levels deep). Generation 1 placed build v1 of
every service and completed. Generation 2 moved 60 % of the services to v2, dropped a
service on 5 % of the hosts and added one on another 5 %; it reached only 80 % of those
placements and failed. So what is active is neither manifest — the case a rollback is
for — and the plan must be made from the topology.

Measured on SQLite and PostgreSQL, with the views caught up:

* **plan** — ``projections.planning.plan_rollback(views, "production", 1)``, the whole
  of what ``ledger rollback --to 1 --dry-run`` computes: reading the topology, held
  builds and both manifests, and planning. Median and worst of ``--samples`` runs.
* **raw** — the baseline: the same reads as plain SQL (open placements of the env,
  generation 1's manifest decompressed and parsed), no planning.
* **steps** — how many the plan has, next to the fewest possible (only what differs,
  counted independently by ``ledger.planner.minimal_steps``) and to a naive plan that
  redeploys everything (distribute + activate every desired placement, drain +
  deactivate every active one).
* **cli** — one run of ``ledger rollback --to 1 --dry-run --json`` as a separate
  process, printing every step.
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
import zlib
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson

from bench.machine import describe
from bench.postgres import create_schema, ledger_url, postgres_server, server_settings
from ledger.application import Ledger, append_in_batches, numbered_batches
from ledger.events import (
    ActivationCompleted,
    BuildRecorded,
    Component,
    Deactivated,
    DistributionCompleted,
    Envelope,
    GenerationCompleted,
    GenerationFailed,
    GenerationPlanned,
    ManifestEntry,
)
from ledger.store import locate
from projections.planning import plan_rollback
from projections.runner import Views

ENV = "production"
START = datetime(2026, 6, 1, tzinfo=UTC)
SERVICES = [f"svc-{i:02d}" for i in range(50)]
E = TypeVar("E", bound=Envelope)


def depends(service: str) -> tuple[str, ...]:
    index = int(service[4:])
    return (SERVICES[index // 5],) if index >= 5 else ()


def build_id(service: str, version: int) -> str:
    return f"{service}-v{version}".ljust(32, "0")


def artifact(service: str, version: int) -> str:
    return f"/nix/store/{build_id(service, version)}-{service}-{version}.0"


def fleet_events(hosts: int, seed: int = 0) -> Iterator[Envelope]:
    """The story of the module docstring, in ledger order, with deterministic ids."""
    rng = random.Random(seed)
    clock = iter(START + timedelta(seconds=i) for i in range(10**8))
    ids = iter(UUID(int=rng.getrandbits(128), version=4) for _ in range(10**8))

    def event(kind: type[E], **fields: Any) -> E:
        envelope = {"event_id": next(ids), "env": ENV, "occurred_at": next(clock), "actor": "bench"}
        return kind.model_validate({**envelope, **fields})

    for service in SERVICES:
        for version in (1, 2):
            yield event(
                BuildRecorded,
                build_id=build_id(service, version),
                service=service,
                version=f"{version}.0",
                artifact=artifact(service, version),
                closure=(
                    Component(
                        name=service,
                        version=f"{version}.0",
                        store_path=artifact(service, version),
                        hash="sha256:" + build_id(service, version),
                    ),
                ),
            )
    names = [f"h{i:05d}" for i in range(hosts)]
    placed = {h: sorted(rng.sample(SERVICES, rng.randint(3, 10))) for h in names}

    def entry(host: str, service: str, version: int) -> ManifestEntry:
        return ManifestEntry(
            host=host,
            service=service,
            build_id=build_id(service, version),
            artifact=artifact(service, version),
            depends_on=depends(service),
        )

    first = {(h, s): 1 for h in names for s in placed[h]}
    yield event(
        GenerationPlanned, number=1, manifest=tuple(entry(h, s, v) for (h, s), v in first.items())
    )
    for (host, service), version in first.items():
        on = {"host": host, "service": service, "build_id": build_id(service, version)}
        yield event(DistributionCompleted, **on)
        yield event(ActivationCompleted, **on, generation=1)
    yield event(GenerationCompleted, number=1)

    moved = set(rng.sample(SERVICES, 30))
    second = {(h, s): 2 if s in moved else 1 for (h, s) in first}
    for host in rng.sample(names, hosts // 20):
        del second[(host, rng.choice(placed[host]))]
    for host in rng.sample(names, hosts // 20):
        spare = [s for s in SERVICES if (host, s) not in second]
        second[(host, rng.choice(spare))] = 2
    yield event(
        GenerationPlanned,
        number=2,
        parent=1,
        manifest=tuple(entry(h, s, v) for (h, s), v in sorted(second.items())),
    )
    changes = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
    for host, service in rng.sample(changes, len(changes) * 8 // 10):
        if (host, service) in second:
            on = {"host": host, "service": service, "build_id": build_id(service, 2)}
            yield event(DistributionCompleted, **on)
            yield event(ActivationCompleted, **on, generation=2)
        else:
            old = build_id(service, first[(host, service)])
            yield event(Deactivated, host=host, service=service, build_id=old, generation=2)
    yield event(GenerationFailed, number=2, reason="bench: stopped at 80 %")


def load(url: str, hosts: int) -> tuple[Ledger, Views]:
    ledger = Ledger(locate(url), create=True)
    if ledger.count() == 0:
        append_in_batches(ledger, numbered_batches(fleet_events(hosts)), source="demo")
    views = Views(ledger)
    views.catch_up()
    return ledger, views


def raw_read(views: Views) -> int:
    with views.read() as tx:
        active = tx.tuples(
            "SELECT host, service, build_id FROM placements "
            "WHERE end_position IS NULL AND retired_by IS NULL AND env = ?",
            (ENV,),
        )
        blob = tx.tuples(
            "SELECT manifest FROM generation_manifests WHERE env = ? AND number = 1", (ENV,)
        )[0][0]
    return len(active) + len(orjson.loads(zlib.decompress(blob)))


def timed(samples: int, fn: Any) -> tuple[list[float], Any]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(samples):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def measure(url: str, hosts: int, samples: int) -> dict[str, Any]:
    started = time.perf_counter()
    ledger, views = load(url, hosts)
    setup = time.perf_counter() - started
    plan_times, plan = timed(samples, lambda: plan_rollback(views, ENV, 1))
    raw_times, _ = timed(samples, lambda: raw_read(views))
    placements = len(plan.manifest)
    active = views.query(
        "SELECT COUNT(*) AS n FROM placements "
        "WHERE end_position IS NULL AND retired_by IS NULL AND env = ?",
        (ENV,),
    )[0]["n"]
    cli_started = time.perf_counter()
    cli = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
         "rollback", "--env", ENV, "--to", "1", "--dry-run", "--json"],
        capture_output=True, check=True,
    )  # fmt: skip
    cli_seconds = time.perf_counter() - cli_started
    assert len(json.loads(cli.stdout)["steps"]) == len(plan.steps)
    kinds: dict[str, int] = {}
    for step in plan.steps:
        kinds[step.kind] = kinds.get(step.kind, 0) + 1
    events = ledger.count()
    ledger.close()
    return {
        "events": events,
        "setup_seconds": round(setup, 1),
        "placements": placements,
        "active": active,
        "plan_median_s": round(statistics.median(plan_times), 3),
        "plan_max_s": round(max(plan_times), 3),
        "raw_median_s": round(statistics.median(raw_times), 3),
        "ratio_plan_to_raw": round(statistics.median(plan_times) / statistics.median(raw_times), 1),
        "steps": len(plan.steps),
        "minimal_steps": plan.minimal(),
        "naive_steps": 2 * placements + 2 * active,
        "steps_by_kind": kinds,
        "unchanged": plan.unchanged,
        "cli_seconds": round(cli_seconds, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rollback", description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rollback-") as tmp:
        work = Path(tmp)
        results["sqlite"] = measure(str(work / "ledger.db"), args.hosts, args.samples)
        if not args.skip_postgres:
            with postgres_server(work) as server:
                results["postgres_settings"] = server_settings(server)
                schema = create_schema(server, "rollback")
                results["postgres"] = measure(ledger_url(server, schema), args.hosts, args.samples)
    results["machine"] = asdict(describe(os.getloadavg(), results.get("postgres_settings", {})))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    for backend in ("sqlite", "postgres"):
        if backend not in results:
            continue
        r = results[backend]
        print(
            f"{backend}: {args.hosts} hosts, {r['placements']} placements desired, "
            f"{r['active']} active, {r['events']} events (setup {r['setup_seconds']} s)\n"
            f"  plan rollback: median {r['plan_median_s']} s, worst {r['plan_max_s']} s "
            f"(target < 2 s); raw reads {r['raw_median_s']} s; plan/raw {r['ratio_plan_to_raw']}x\n"
            f"  steps: {r['steps']} (fewest possible {r['minimal_steps']}, naive redeploy "
            f"{r['naive_steps']}); by kind {r['steps_by_kind']}; {r['unchanged']} unchanged\n"
            f"  `ledger rollback --dry-run --json` as a process: {r['cli_seconds']} s"
        )


if __name__ == "__main__":
    main()
