"""A large fleet history for benchmarking projections and audit queries.

``benchmark_fleet`` tells the same story as :func:`ledger.demo.demo_fleet` (it reuses its
catalogue, store paths and :class:`~ledger.demo.EnvHistory`), at benchmark scale:

* ``hosts`` hosts in all: staging gets a tenth of production (``stg-001`` …), production
  the rest, split over the web/app/worker/db/cache roles (``app-3182`` …); each host runs
  3-10 of the ``services`` services, mostly ones of its role;
* every build's closure holds exactly ``closure_size`` store paths. A package version has
  one store path and hash in every closure, as in a real Nix store, and the closures of
  one service at one nixpkgs snapshot are the same tuple of components;
* only the services that speak TLS (front ends, auth, payments, anything calling out to
  third parties: 40-50% of them) carry ``openssl`` and what links against it (curl,
  krb5, libssh2, python3-cryptography). Its version follows the service's nixpkgs
  snapshot (1.0.1p, 1.0.2d, 1.1.1w, 3.0.13), which moves on now and then, and every
  :data:`ADVISORY_EVERY` rollouts an openssl advisory moves the TLS services still on the
  oldest snapshot to the next one;
* rollouts follow one another in each environment as in the demo: builds, a generation
  with the full desired manifest, copies, drain + deactivation of the old build and
  activation of the new one per placement, completion, health and host reports, quiet
  hours of host health. The third rollout of each environment fails on activation and is
  rolled back; later ones fail now and then, as do builds and copies. A rollout goes
  placement by placement, so one of production takes days of event time: staging, ten
  times smaller, fits in about three times as many generations.

Rollouts continue until ``min_events`` events have been yielded, then each environment
finishes the rollout it is in (so the stream stays consistent and the ledger accepts it).
Events are produced lazily: memory holds the fleet's state (the active build of every
placement, the manifest entries of the current builds), never the history. The same
arguments give the same events, ``event_id`` included; the ids differ from the demo's.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta

from ledger.demo import (
    FILLER_LIBRARIES,
    MAX_SERVICES,
    MIN_CLOSURE,
    PINS,
    SERVICE_NAMES,
    Build,
    Catalog,
    EnvHistory,
    build_catalog,
    component,
    production_hosts,
    staging_hosts,
    version_for_pin,
)
from ledger.events import Component, Envelope, ManifestEntry

NAMESPACE = "ledger-bench"
"""Seeds the random streams, so that event ids never collide with the demo's."""

SERVICES_PER_HOST = (3, 10)
MAX_CLOSURE_SIZE = 600
"""The package universe (core, common and runtime packages, fillers) holds a bit more."""

MIN_ROLLOUTS = 3
"""Rollouts per environment at least, whatever ``min_events``: the third one fails."""

ADVISORY_EVERY = 7

TLS_SERVICES = frozenset({
    "api", "auth", "billing", "frontend", "worker-email", "sessions", "payments",
    "checkout", "gateway", "pgbouncer", "shipping", "admin-ui", "webhooks", "media",
    "mailer", "fraud-check", "support-desk",
})  # fmt: skip
"""The named services that terminate or open TLS connections."""

TLS_SHARE = 0.4
"""The share of the numbered services (``service-041`` …) that speak TLS."""

TLS_PACKAGES = frozenset({"openssl", "curl", "krb5", "libssh2", "python3-cryptography"})
"""openssl and the packages that link against it: only in the closures of TLS services."""


def benchmark_catalog(services: int, closure_size: int, seed: int) -> Catalog:
    """The demo's catalogue, with openssl in TLS services only and closures of exactly
    ``closure_size`` packages (``ServiceSpec.packages`` is the closure, in order)."""
    rng = random.Random(f"{NAMESPACE}:{seed}:catalog")
    specs = []
    for spec in build_catalog(services, seed).services:
        tls = spec.name in TLS_SERVICES or (
            spec.name not in SERVICE_NAMES and rng.random() < TLS_SHARE
        )
        packages = [p for p in spec.packages if tls or p not in TLS_PACKAGES]
        taken = set(packages)
        unused = [f for f in FILLER_LIBRARIES if f not in taken]
        packages += rng.sample(unused, len(unused))
        specs.append(
            replace(spec, closure_size=closure_size, packages=tuple(packages[:closure_size]))
        )
    return Catalog(specs)


class BenchmarkHistory(EnvHistory):
    """An environment's history that goes on with rollouts until ``stop()`` says so."""

    def __init__(
        self,
        env: str,
        hosts: Sequence[tuple[str, str]],
        catalog: Catalog,
        seed: int,
        start: timedelta,
        stop: Callable[[], bool],
    ) -> None:
        super().__init__(
            env,
            hosts,
            catalog,
            seed,
            start,
            services_per_host=SERVICES_PER_HOST,
            namespace=NAMESPACE,
        )
        self.stop = stop
        self.tls = tuple(s.name for s in catalog.services if "openssl" in s.packages)
        self.advisory: tuple[str, ...] = ()
        self.closures: dict[tuple[str, int], tuple[Component, ...]] = {}

    def events(self) -> Iterator[Envelope]:
        rng = self.rng
        deploy = 0
        while True:
            if deploy > 0 and deploy % ADVISORY_EVERY == 0:
                self.advise()
            yield from self.rollout(
                deploy,
                fail=deploy == MIN_ROLLOUTS - 1 or (deploy > MIN_ROLLOUTS and rng.random() < 0.06),
                build_failure=deploy == 1 or rng.random() < 0.1,
                copy_failure=deploy == 1 or rng.random() < 0.1,
            )
            deploy += 1
            if deploy >= MIN_ROLLOUTS and self.stop():
                return
            yield from self.quiet_period()

    def advise(self) -> None:
        """An openssl advisory: the TLS services on the oldest snapshot move to the next."""
        oldest = min((self.pins[name] for name in self.tls), default=PINS - 1)
        if oldest < PINS - 1:
            self.advisory = tuple(name for name in self.tls if self.pins[name] == oldest)
            for name in self.advisory:
                self.pins[name] += 1

    def pick_changes(self, names: list[str]) -> tuple[str, ...]:
        if self.advisory:
            changes, self.advisory = self.advisory, ()
            return changes
        return super().pick_changes(names)

    def closure(self, name: str) -> tuple[Component, ...]:
        """Exactly the spec's packages, one shared tuple per service and snapshot."""
        key = (name, self.pins[name])
        found = self.closures.get(key)
        if found is None:
            pin = key[1]
            packages = self.catalog.spec(name).packages
            found = tuple(component(p, version_for_pin(p, pin)) for p in packages)
            self.closures[key] = found
        return found

    def manifest(self, builds: dict[str, Build]) -> tuple[ManifestEntry, ...]:
        # Forget the entries of replaced builds, so the cache stays about one manifest.
        live = {build.build_id for build in builds.values()}
        self.entries = {key: e for key, e in self.entries.items() if key[2] in live}
        return super().manifest(builds)


def benchmark_fleet(
    hosts: int = 10_000,
    services: int = 50,
    closure_size: int = 300,
    min_events: int = 1_000_000,
    seed: int = 0,
) -> Iterator[Envelope]:
    """At least ``min_events`` events of a staging + production fleet of ``hosts`` hosts,
    lazily and in ledger order (``occurred_at`` never goes back). See the module docstring.
    """
    if hosts < 3:
        raise ValueError(f"hosts must be at least 3 (two in staging), not {hosts}")
    if not 1 <= services <= MAX_SERVICES:
        raise ValueError(f"services must be between 1 and {MAX_SERVICES}, not {services}")
    if not MIN_CLOSURE <= closure_size <= MAX_CLOSURE_SIZE:
        limits = f"between {MIN_CLOSURE} and {MAX_CLOSURE_SIZE}"
        raise ValueError(f"closure_size must be {limits}, not {closure_size}")
    catalog = benchmark_catalog(services, closure_size, seed)
    staging = staging_hosts(hosts * 10 // 11)
    production = production_hosts(hosts - len(staging))
    emitted = 0

    def enough() -> bool:
        return emitted >= min_events

    histories = (
        BenchmarkHistory("staging", staging, catalog, seed, timedelta(0), enough),
        BenchmarkHistory("production", production, catalog, seed, timedelta(hours=3), enough),
    )
    for event in heapq.merge(*(h.events() for h in histories), key=lambda e: e.occurred_at):
        emitted += 1
        yield event
