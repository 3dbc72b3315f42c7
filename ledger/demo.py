"""A synthetic but realistic fleet history, for demos, documentation and load tests.

``demo_fleet`` yields the events of two environments ("staging" and "production") over a
few weeks: CI builds with Nix closures, coordinator generations with full manifests,
distribution, drains, activations, health reports, agent host reports, a failed rollout
with its rollback, and the odd failed build or copy. Auditors and operators query this
kind of history ("which hosts ran openssl 1.0.1p, and when?", "what did generation 12
change?"), so the data is shaped like a real Nix/Disnix fleet rather than random noise:

* store paths and hashes of a package version are the same in every closure that holds
  it, as in a real Nix store, and a service's openssl/zlib/glibc versions follow the
  nixpkgs snapshot it is pinned to, which is bumped now and then;
* a new build of a service also rebuilds (and redeploys) everything that depends on it,
  hash-addressed style;
* each environment's stream is consistent: a drain/deactivation always names the build
  that was active, a rollback's manifest is exactly its target's, a host report lists
  what is really active on that host;
* each environment's story ends with every agent reporting its host, and in production
  two hosts report changes someone made by hand, which the ledger never saw: one runs
  an older build of a service, the other stopped one service and started another that
  is not placed there (``ledger drift`` shows them).

Everything is derived from seeded ``random.Random`` instances and a fixed start time, never
from the clock or the process (no ``hash()``), so the same arguments give byte-identical
events, ``event_id`` included. ``recorded_at`` and ``source`` are left for the ledger,
except in ``recorded_demo_fleet`` (what ``ledger demo`` records), which says when each
event reached the ledger, a few of them hours late.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal, TypedDict

from ledger.events import (
    ActivationCompleted,
    ActivationFailed,
    BuildFailed,
    BuildRecorded,
    Component,
    Deactivated,
    DistributionCompleted,
    DistributionFailed,
    DrainCompleted,
    DrainStarted,
    DrainTimedOut,
    Envelope,
    GenerationCompleted,
    GenerationFailed,
    GenerationPlanned,
    HealthReported,
    HostReported,
    ManifestEntry,
)

BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""When the demo history starts (a Monday morning); time only moves on from here."""

NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"
"""The alphabet of Nix store hashes (no e, o, t, u)."""

MAX_HOSTS = 2_000
MAX_SERVICES = 500
"""Upper bounds on the arguments, so a demo never grows past about a million events.

The worst case is many hosts and very few services (every generation then touches most
placements): 2,000 hosts with 3-5 services give about 650,000 events.
"""

MIN_DEPLOYS = 21
"""Deploy generations per environment at least (rollbacks come on top): 20+ generations."""

CI_ACTOR = "ci@buildkite"
DEPLOY_ACTOR = "deploy-bot"
ON_CALL = ("alice@sre", "bikram@sre", "chen@sre", "dana@sre")
"""Rollbacks are decided by people, so they carry a person's name."""

# --- the package universe --------------------------------------------------------------
#
# Versions are listed oldest first. A build pinned to nixpkgs snapshot ``pin`` (0-3) gets
# ``versions[pin * len(versions) // 4]``: pin 0 is a legacy channel (openssl 1.0.1p),
# pin 3 is current (openssl 3.0.13).

PINS = 4

CORE_PACKAGES: dict[str, tuple[str, ...]] = {
    "glibc": ("2.37-8", "2.38-44"),
    "openssl": ("1.0.1p", "1.0.2d", "1.1.1w", "3.0.13"),
    "zlib": ("1.2.13", "1.3.1"),
    "bash": ("5.2-p15", "5.2p26"),
    "coreutils": ("9.1", "9.4"),
    "gcc-lib": ("12.3.0", "13.2.0"),
    "ncurses": ("6.4",),
    "readline": ("8.2p1", "8.2p10"),
    "xz": ("5.4.3", "5.4.6"),
    "bzip2": ("1.0.8",),
    "gmp": ("6.2.1", "6.3.0"),
    "libffi": ("3.4.4", "3.4.6"),
    "pcre": ("8.45",),
    "sqlite": ("3.41.2", "3.45.1"),
    "curl": ("7.88.1", "8.1.1", "8.4.0", "8.6.0"),
    "libxml2": ("2.10.4", "2.11.5", "2.12.5"),
    "cacert": ("3.92", "3.95", "3.98"),
    "tzdata": ("2023c", "2024a"),
    "iana-etc": ("20231227",),
    "libidn2": ("2.3.4",),
    "libunistring": ("1.1",),
    "nghttp2": ("1.51.0", "1.57.0", "1.59.0"),
    "zstd": ("1.5.5",),
    "brotli": ("1.0.9", "1.1.0"),
    "krb5": ("1.20.1", "1.21.2"),
    "keyutils": ("1.6.3",),
    "e2fsprogs": ("1.47.0",),
    "libssh2": ("1.11.0",),
}
"""In every closure: the C runtime and the libraries almost everything links against."""

COMMON_PACKAGES: dict[str, tuple[str, ...]] = {
    "pcre2": ("10.42",),
    "expat": ("2.5.0", "2.6.0"),
    "acl": ("2.3.1",),
    "attr": ("2.5.1",),
    "libcap": ("2.69",),
    "mailcap": ("2.1.53",),
    "gnugrep": ("3.11",),
    "gnused": ("4.9",),
    "gawk": ("5.2.2",),
    "findutils": ("4.9.0",),
    "diffutils": ("3.10",),
    "gzip": ("1.12", "1.13"),
    "util-linux-minimal": ("2.39.2",),
    "systemd-minimal-libs": ("253.6", "254.6", "255.2"),
    "libgcrypt": ("1.10.3",),
    "libgpg-error": ("1.47",),
    "icu": ("72.1", "73.2"),
    "libyaml": ("0.2.5",),
    "libevent": ("2.1.12",),
    "c-ares": ("1.19.1", "1.26.0"),
    "libuv": ("1.46.0", "1.48.0"),
    "postgresql-libs": ("14.11", "15.6", "16.2"),
    "libxslt": ("1.1.38", "1.1.39"),
    "libseccomp": ("2.5.5",),
    "audit": ("3.1.2",),
    "pam": ("1.5.2", "1.5.3"),
    "libxcrypt": ("4.4.36",),
    "libpsl": ("0.21.5",),
    "jq": ("1.6", "1.7.1"),
    "oniguruma": ("6.9.9",),
    "protobuf": ("3.21.12", "24.4"),
    "libjpeg-turbo": ("2.1.5.1", "3.0.2"),
    "libpng": ("1.6.40", "1.6.43"),
    "freetype": ("2.13.2",),
}
"""Often in a closure: each service carries a stable subset."""

RUNTIME_PACKAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "python": {
        "python3": ("3.10.13", "3.11.8", "3.11.8", "3.12.2"),
        "python3-requests": ("2.28.2", "2.31.0"),
        "python3-urllib3": ("1.26.18", "2.0.7"),
        "python3-certifi": ("2023.7.22", "2024.2.2"),
        "python3-idna": ("3.4", "3.6"),
        "python3-charset-normalizer": ("3.3.2",),
        "python3-flask": ("2.2.5", "3.0.2"),
        "python3-werkzeug": ("2.2.3", "3.0.1"),
        "python3-jinja2": ("3.1.3",),
        "python3-markupsafe": ("2.1.5",),
        "python3-itsdangerous": ("2.1.2",),
        "python3-click": ("8.1.7",),
        "python3-gunicorn": ("21.2.0",),
        "python3-sqlalchemy": ("1.4.51", "2.0.27"),
        "python3-psycopg2": ("2.9.9",),
        "python3-pydantic": ("1.10.14", "2.6.1"),
        "python3-typing-extensions": ("4.9.0",),
        "python3-celery": ("5.3.6",),
        "python3-kombu": ("5.3.5",),
        "python3-redis": ("5.0.1",),
        "python3-boto3": ("1.34.34",),
        "python3-botocore": ("1.34.34",),
        "python3-s3transfer": ("0.10.0",),
        "python3-jmespath": ("1.0.1",),
        "python3-dateutil": ("2.8.2",),
        "python3-six": ("1.16.0",),
        "python3-pyyaml": ("5.4.1", "6.0.1"),
        "python3-cryptography": ("39.0.2", "41.0.7", "42.0.2"),
        "python3-cffi": ("1.16.0",),
        "python3-pycparser": ("2.21",),
        "python3-attrs": ("23.2.0",),
        "python3-packaging": ("23.2",),
        "python3-structlog": ("24.1.0",),
        "python3-prometheus-client": ("0.19.0",),
        "python3-sentry-sdk": ("1.40.3",),
        "python3-lxml": ("4.9.4", "5.1.0"),
        "python3-pillow": ("9.5.0", "10.2.0"),
    },
    "node": {
        "nodejs": ("16.20.2", "18.19.1", "20.11.1", "20.11.1"),
        "node-express": ("4.18.2",),
        "node-body-parser": ("1.20.2",),
        "node-cookie-parser": ("1.4.6",),
        "node-cors": ("2.8.5",),
        "node-helmet": ("7.1.0",),
        "node-pino": ("8.18.0",),
        "node-dotenv": ("16.4.1",),
        "node-jsonwebtoken": ("8.5.1", "9.0.2"),
        "node-pg": ("8.11.3",),
        "node-ioredis": ("5.3.2",),
        "node-uuid": ("9.0.1",),
        "node-dayjs": ("1.11.10",),
        "node-zod": ("3.22.4",),
        "node-ws": ("8.16.0",),
        "node-graphql": ("16.8.1",),
        "node-lodash": ("4.17.21",),
        "node-axios": ("0.27.2", "1.6.7"),
        "node-semver": ("7.6.0",),
        "node-debug": ("4.3.4",),
        "node-qs": ("6.11.2",),
        "node-mime-types": ("2.1.35",),
        "node-react": ("18.2.0",),
        "node-react-dom": ("18.2.0",),
        "node-next": ("13.5.6", "14.1.0"),
    },
    "jvm": {
        "openjdk": ("11.0.22+7", "17.0.10+7", "17.0.10+7", "21.0.2+13"),
        "java-log4j-core": ("2.14.1", "2.17.2", "2.21.1", "2.23.0"),
        "java-log4j-api": ("2.14.1", "2.17.2", "2.21.1", "2.23.0"),
        "java-jackson-databind": ("2.13.5", "2.16.1"),
        "java-jackson-core": ("2.13.5", "2.16.1"),
        "java-netty": ("4.1.94", "4.1.106"),
        "java-guava": ("32.1.3",),
        "java-slf4j-api": ("2.0.12",),
        "java-snakeyaml": ("1.33", "2.2"),
        "java-postgresql-jdbc": ("42.7.1",),
    },
    "go": {
        "go-tzdata-embed": ("2024a",),
    },
    "native": {
        "libevent": ("2.1.12",),
        "c-ares": ("1.19.1", "1.26.0"),
        "systemd-minimal-libs": ("253.6", "254.6", "255.2"),
        "pam": ("1.5.2", "1.5.3"),
    },
}
"""What a service's language runtime pulls into its closure."""

Runtime = Literal["python", "node", "jvm", "go", "native"]

_SYLLABLES = (
    "ax", "bel", "cor", "dex", "el", "fin", "gul", "hal", "ix", "jor", "kra", "lum", "mor",
    "nex", "ost", "pex", "quo", "rin", "sol", "tuv", "ul", "vox", "wen", "yra", "zed",
)  # fmt: skip
FILLER_LIBRARIES: tuple[str, ...] = tuple(
    f"lib{a}{b}" for a, b in itertools.product(_SYLLABLES, repeat=2) if a != b
)
"""Generated library names that bring closures up to realistic sizes (hundreds of paths)."""

MIN_CLOSURE = 50
MAX_CLOSURE = 300

# --- the service catalogue ---------------------------------------------------------------

SERVICE_NAMES: tuple[str, ...] = (
    "api", "auth", "billing", "search", "frontend", "worker-email", "users", "sessions",
    "catalog", "orders", "payments", "notifications", "inventory", "cart", "checkout",
    "gateway", "worker-thumbnails", "pgbouncer", "cache-warmer", "reports", "analytics",
    "scheduler", "worker-exports", "recommendations", "pricing", "shipping", "audit-log",
    "admin-ui", "webhooks", "worker-indexer", "media", "feature-flags", "rate-limiter",
    "geo", "mailer", "fraud-check", "support-desk", "worker-billing", "redis-sentinel",
    "db-backup",
)  # fmt: skip
"""Names in creation order; more services than these get ``service-041`` and so on."""

HOST_ROLES: tuple[tuple[str, float], ...] = (
    ("web", 0.25),
    ("app", 0.35),
    ("worker", 0.2),
    ("db", 0.1),
    ("cache", 0.1),
)
"""Production roles and their share of the hosts; staging hosts are all ``stg``."""

_ROLE_OF_SERVICE = {
    "frontend": "web", "gateway": "web", "admin-ui": "web", "media": "web",
    "scheduler": "worker", "mailer": "worker", "reports": "worker", "analytics": "worker",
    "pgbouncer": "db", "db-backup": "db",
    "redis-sentinel": "cache", "cache-warmer": "cache", "rate-limiter": "cache",
    "feature-flags": "cache",
}  # fmt: skip

_RUNTIME_OF_SERVICE: dict[str, Runtime] = {
    "frontend": "node", "admin-ui": "node", "support-desk": "node", "webhooks": "node",
    "gateway": "go", "rate-limiter": "go", "geo": "go",
    "pgbouncer": "native", "redis-sentinel": "native", "db-backup": "native",
    "billing": "jvm", "payments": "jvm", "fraud-check": "jvm",
}  # fmt: skip
_DEFAULT_RUNTIMES: tuple[Runtime, ...] = ("python", "python", "go", "node")


@dataclass(frozen=True)
class ServiceSpec:
    """What stays fixed about a service: where it runs, what it is made of, what it needs."""

    name: str
    role: str
    runtime: Runtime
    depends_on: tuple[str, ...]
    closure_size: int
    packages: tuple[str, ...]
    """Package names in closure order: core, common subset, runtime, fillers."""
    pin: int
    """The nixpkgs snapshot of the first build (0 = legacy … 3 = current)."""
    version: tuple[int, int, int]


class Catalog:
    """The services of the fleet, in creation order (a topological order of the DAG)."""

    def __init__(self, services: Sequence[ServiceSpec]) -> None:
        self.services = tuple(services)
        self._by_name = {s.name: s for s in self.services}
        self._dependents: dict[str, frozenset[str]] = {}
        for spec in reversed(self.services):
            found: set[str] = set()
            for other in self.services:
                if spec.name in other.depends_on:
                    found |= {other.name, *self._dependents[other.name]}
            self._dependents[spec.name] = frozenset(found)

    def spec(self, name: str) -> ServiceSpec:
        return self._by_name[name]

    def dependents(self, name: str) -> frozenset[str]:
        """Every service that depends on ``name``, directly or transitively."""
        return self._dependents[name]


def service_names(count: int) -> list[str]:
    """The first ``count`` service names: realistic ones, then numbered ones."""
    names = list(SERVICE_NAMES[:count])
    names += [f"service-{i:03d}" for i in range(len(SERVICE_NAMES) + 1, count + 1)]
    return names


def build_catalog(services: int, seed: int) -> Catalog:
    """The fleet's services and their dependency DAG (each needs 0-3 older services)."""
    rng = random.Random(f"ledger-demo:{seed}:catalog")
    specs: list[ServiceSpec] = []
    common = sorted(COMMON_PACKAGES)
    for name in service_names(services):
        role = _ROLE_OF_SERVICE.get(name, "worker" if name.startswith("worker-") else "app")
        # Services call backends (app, db, cache), not web front ends or workers.
        providers = [i for i, s in enumerate(specs) if s.role in ("app", "db", "cache")]
        deps_count = rng.choices((0, 1, 2, 3), weights=(25, 35, 25, 15))[0]
        chosen = rng.sample(providers, min(len(providers), deps_count))
        depends_on = tuple(specs[i].name for i in sorted(chosen))
        runtime: Runtime
        if name.startswith("worker-"):
            runtime = "python"
        elif name in _RUNTIME_OF_SERVICE:
            runtime = _RUNTIME_OF_SERVICE[name]
        else:
            runtime = rng.choice(_DEFAULT_RUNTIMES)
        subset = sorted(rng.sample(common, rng.randint(4, len(common))))
        fillers = rng.sample(FILLER_LIBRARIES, MAX_CLOSURE)
        packages = tuple(
            dict.fromkeys([*CORE_PACKAGES, *subset, *RUNTIME_PACKAGES[runtime], *fillers])
        )
        specs.append(
            ServiceSpec(
                name=name,
                role=role,
                runtime=runtime,
                depends_on=depends_on,
                closure_size=rng.randint(60, 290),
                packages=packages,
                pin=rng.choices(range(PINS), weights=(1, 3, 4, 3))[0],
                version=(rng.randint(0, 4), rng.randint(0, 14), rng.randint(0, 9)),
            )
        )
    return Catalog(tuple(specs))


# --- hashes and closures ---------------------------------------------------------------


def nix_hash(data: bytes) -> str:
    """A 32-character Nix-style base32 hash of ``data`` (160 bits of its SHA-256)."""
    number = int.from_bytes(hashlib.sha256(data).digest()[:20], "big")
    return "".join(NIX_BASE32[(number >> (5 * i)) & 31] for i in range(32))


def random_nix_hash(rng: random.Random) -> str:
    return "".join(rng.choices(NIX_BASE32, k=32))


def package_versions(name: str) -> tuple[str, ...]:
    """The known versions of a package, oldest first (fillers get two, from their name)."""
    for table in (CORE_PACKAGES, COMMON_PACKAGES, *RUNTIME_PACKAGES.values()):
        if name in table:
            return table[name]
    digest = hashlib.sha256(name.encode()).digest()
    major, minor, patch = digest[0] % 4, digest[1] % 20, digest[2] % 10
    return (f"{major}.{minor}.{patch}", f"{major}.{minor + 1}.0")


@cache
def version_for_pin(name: str, pin: int) -> str:
    versions = package_versions(name)
    return versions[pin * len(versions) // PINS]


@cache
def component(name: str, version: str) -> Component:
    """The store path of ``name-version``: the same object in every closure holding it."""
    ident = f"{name}-{version}"
    return Component(
        name=name,
        version=version,
        store_path=f"/nix/store/{nix_hash(ident.encode())}-{ident}",
        hash="sha256:" + hashlib.sha256(f"nar:{ident}".encode()).hexdigest(),
    )


def closure(spec: ServiceSpec, pin: int, size: int) -> tuple[Component, ...]:
    """The runtime closure of a build of ``spec`` against nixpkgs snapshot ``pin``."""
    size = max(MIN_CLOSURE, min(MAX_CLOSURE, size))
    return tuple(component(name, version_for_pin(name, pin)) for name in spec.packages[:size])


# --- hosts and placement -----------------------------------------------------------------


def production_hosts(count: int) -> list[tuple[str, str]]:
    """(host, role) pairs: ``count`` hosts split over the roles by largest remainder."""
    quotas = [count * share for _, share in HOST_ROLES]
    sizes = [int(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (sizes[i] - quotas[i], i))
    for i in by_remainder[: count - sum(sizes)]:
        sizes[i] += 1
    return [
        (f"{role}-{n:03d}", role)
        for (role, _), size in zip(HOST_ROLES, sizes, strict=True)
        for n in range(1, size + 1)
    ]


def staging_hosts(production: int) -> list[tuple[str, str]]:
    """A tenth of production (at least two hosts), all of role ``stg``."""
    return [(f"stg-{n:03d}", "stg") for n in range(1, max(2, round(production / 10)) + 1)]


def place(
    hosts: Sequence[tuple[str, str]],
    catalog: Catalog,
    rng: random.Random,
    per_host: tuple[int, int] = (3, 6),
) -> dict[str, tuple[str, ...]]:
    """Which services each host runs: ``per_host`` (between low and high) each, mostly of
    the host's role; every service on at least one host."""
    names = [s.name for s in catalog.services]
    placed: dict[str, list[str]] = {}
    for host, role in hosts:
        weights = [6 if catalog.spec(n).role == role else 1 for n in names]
        chosen: set[str] = set()
        for _ in range(min(len(names), rng.randint(*per_host))):
            pick = rng.choices(names, weights=weights)[0]
            chosen.add(pick)
            weights[names.index(pick)] = 0
        placed[host] = [n for n in names if n in chosen]
    covered = {n for services in placed.values() for n in services}
    order = {n: i for i, n in enumerate(names)}
    for name in names:
        if name in covered:
            continue
        role = catalog.spec(name).role
        candidates = [h for h, r in hosts if r == role] or [h for h, _ in hosts]
        host = min(candidates, key=lambda h: len(placed[h]))
        placed[host] = sorted([*placed[host], name], key=order.__getitem__)
    return {host: tuple(services) for host, services in placed.items()}


# --- one environment's history -----------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """A successful CI build of one service."""

    service: str
    version: str
    build_id: str
    artifact: str
    source_revision: str
    size_bytes: int


class _Common(TypedDict):
    event_id: uuid.UUID
    env: str
    occurred_at: datetime
    actor: str


_ACTIVATION_FAILURES: tuple[tuple[str, int, str], ...] = (
    (
        "health check did not pass within 30s",
        1,
        "{service}[{pid}]: starting {service} {version}\n"
        "{service}[{pid}]: connecting to {dep} at {dep}.internal:8443\n"
        "{service}[{pid}]: error: connection refused ({dep}.internal:8443)\n"
        "systemd[1]: {service}.service: Main process exited, code=exited, status=1/FAILURE",
    ),
    (
        "address already in use",
        98,
        "{service}[{pid}]: binding 0.0.0.0:8080\n"
        "{service}[{pid}]: fatal: listen tcp 0.0.0.0:8080: bind: address already in use\n"
        "systemd[1]: {service}.service: Failed with result 'exit-code'.",
    ),
    (
        "database migration failed",
        2,
        "{service}[{pid}]: running migrations (0042_add_ledger_index)\n"
        '{service}[{pid}]: ERROR: relation "ledger_entries" already exists\n'
        "{service}[{pid}]: migration 0042 failed, refusing to start\n"
        "systemd[1]: {service}.service: Main process exited, code=exited, status=2/INVALIDARGUMENT",
    ),
)
"""(reason, exit code, log template) of activations that go wrong."""

_BUILD_FAILURES = (
    "test suite failed: 3 of 412 tests failed",
    "builder for '/nix/store/{hash}-{service}-{version}.drv' failed with exit code 2",
    "hash mismatch in fixed-output derivation: vendored dependencies changed",
    "timed out after 3600 seconds of silence",
)

_DISTRIBUTION_FAILURES = (
    "connection reset by peer while copying the closure",
    "No space left on device (/nix/store)",
    "ssh: connect to host {host} port 22: Connection timed out",
)


class EnvHistory:
    """The event stream of one environment, generated lazily and in time order.

    It keeps what a coordinator would know (the desired builds of every generation) and
    what the agents would see (the build active per host and service), so that every
    event it yields is consistent with the ones before it.
    """

    def __init__(
        self,
        env: str,
        hosts: Sequence[tuple[str, str]],
        catalog: Catalog,
        seed: int,
        start: timedelta,
        *,
        services_per_host: tuple[int, int] = (3, 6),
        namespace: str = "ledger-demo",
        drifting: int = 0,
    ) -> None:
        """``namespace`` seeds the random streams: another one gives other event ids.
        ``drifting``: how many hosts report hand-made changes at the end of the story."""
        self.env = env
        self.catalog = catalog
        self.rng = random.Random(f"{namespace}:{seed}:{env}:story")
        self.ids = random.Random(f"{namespace}:{seed}:{env}:ids")
        self.hosts = [h for h, _ in hosts]
        self.host_services = place(hosts, catalog, self.rng, services_per_host)
        self.service_hosts: dict[str, tuple[str, ...]] = {
            s.name: tuple(h for h in self.hosts if s.name in self.host_services[h])
            for s in catalog.services
        }
        self.clock_ms = int(start.total_seconds() * 1000)
        self.pins = {s.name: s.pin for s in catalog.services}
        self.versions = {s.name: s.version for s in catalog.services}
        self.active: dict[tuple[str, str], Build] = {}
        self.entries: dict[tuple[str, str, str], ManifestEntry] = {}
        # Where the story stands between rollouts: the coordinator's view.
        self.desired: dict[str, Build] = {}
        self.good: dict[int, dict[str, Build]] = {}
        """The desired builds of each generation that completed (rollback targets)."""
        self.revisions: dict[int, str] = {}
        self.number = 0
        self.last_good = 0
        self.carry: tuple[str, ...] = ()
        """The changes of a rolled-back generation, to be redeployed with a fix."""
        self.fix: str | None = None
        self.tagged = 0
        self.drifting = drifting

    # --- helpers ----------------------------------------------------------------------

    def tick(self, low_s: float, high_s: float) -> None:
        """Let between ``low_s`` and ``high_s`` seconds pass (millisecond resolution)."""
        self.clock_ms += self.rng.randint(int(low_s * 1000), int(high_s * 1000))

    def common(self, actor: str) -> _Common:
        return {
            "event_id": uuid.UUID(int=self.ids.getrandbits(128), version=4),
            "env": self.env,
            "occurred_at": BASE_TIME + timedelta(milliseconds=self.clock_ms),
            "actor": actor,
        }

    def now(self) -> datetime:
        return BASE_TIME + timedelta(milliseconds=self.clock_ms)

    def revision(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def entry(self, host: str, build: Build) -> ManifestEntry:
        key = (host, build.service, build.build_id)
        found = self.entries.get(key)
        if found is None:
            found = ManifestEntry(
                host=host,
                service=build.service,
                build_id=build.build_id,
                artifact=build.artifact,
                depends_on=self.catalog.spec(build.service).depends_on,
            )
            self.entries[key] = found
        return found

    def manifest(self, builds: dict[str, Build]) -> tuple[ManifestEntry, ...]:
        return tuple(
            self.entry(host, builds[service])
            for host in self.hosts
            for service in self.host_services[host]
        )

    def seconds(self, low: float, high: float) -> float:
        return round(self.rng.uniform(low, high), 3)

    # --- the story ----------------------------------------------------------------------

    def events(self) -> Iterator[Envelope]:
        """The demo's story: 21-25 rollouts, one or two of them failing and rolled back."""
        rng = self.rng
        deploys = rng.randint(MIN_DEPLOYS, MIN_DEPLOYS + 4)
        failing = {rng.randint(3, deploys - 3)}
        if deploys >= MIN_DEPLOYS + 2:
            failing.add(rng.randint(3, deploys - 3))
        build_failures = set(rng.sample(range(1, deploys), 3))
        distribution_failures = set(rng.sample(range(0, deploys), 2))
        for deploy in range(deploys):
            yield from self.rollout(
                deploy,
                fail=deploy in failing,
                build_failure=deploy in build_failures,
                copy_failure=deploy in distribution_failures,
            )
            yield from self.quiet_period()
        yield from self.inventory()

    def rollout(
        self, deploy: int, *, fail: bool, build_failure: bool, copy_failure: bool
    ) -> Iterator[Envelope]:
        """Deploy number ``deploy`` (0 = everything, first time) from build to completion;
        if ``fail``, an activation fails, the generation fails and is rolled back.

        ``build_failure`` makes one build fail first (and a fix commit follow),
        ``copy_failure`` makes one copy fail first (and the coordinator retry it).
        """
        rng = self.rng
        names = [s.name for s in self.catalog.services]
        if deploy == 0:
            changed = tuple(names)
        elif self.carry:
            changed = self.carry
        else:
            changed = self.pick_changes(names)
        rebuilt = [n for n in names if n in changed or self.depends_on_any(n, changed)]

        # CI builds the changed services and everything that depends on them.
        revision = self.revision()
        new_builds: dict[str, Build] = {}
        for name in rebuilt:
            if name in changed and deploy > 0 and (self.carry == () or name == self.fix):
                self.versions[name] = self.bump(self.versions[name])
                if rng.random() < 0.2:
                    self.pins[name] = min(PINS - 1, self.pins[name] + 1)
            version = ".".join(map(str, self.versions[name]))
            if build_failure and name == rebuilt[0]:
                self.tick(120, 900)
                reason = rng.choice(_BUILD_FAILURES).format(
                    hash=random_nix_hash(rng), service=name, version=version
                )
                yield BuildFailed(
                    **self.common(CI_ACTOR),
                    service=name,
                    version=version,
                    source_revision=revision,
                    reason=reason,
                )
                revision = self.revision()  # the fix commit
            self.tick(60, 600)
            build, event = self.build(name, version, revision)
            new_builds[name] = build
            yield event
        desired = {**self.desired, **new_builds}
        self.desired = desired

        # The coordinator plans the generation.
        self.tick(60, 300)
        self.number += 1
        number = self.number
        tags: tuple[str, ...] = ()
        if self.carry:
            tags = ("hotfix",)
        elif deploy > 0 and rng.random() < 0.2:
            self.tagged += 1
            tags = (f"release-{self.now():%Y.%m}.{self.tagged}",)
        yield GenerationPlanned(
            **self.common(DEPLOY_ACTOR),
            number=number,
            parent=number - 1 if number > 1 else None,
            reason="deploy",
            source_revision=revision,
            tags=tags,
            manifest=self.manifest(desired),
        )

        # Copy the new closures to the hosts that will run them.
        rebuilt_set = set(rebuilt)
        copies = [(h, s) for h in self.hosts for s in self.host_services[h] if s in rebuilt_set]
        broken_copy = rng.randrange(len(copies)) if copy_failure else -1
        for index, (host, service) in enumerate(copies):
            yield from self.distribute(host, desired[service], index == broken_copy, deploy)

        # Switch over, dependencies first; a failing generation stops at its victim.
        victim = rng.choice(changed) if fail else None
        switched, failed = yield from self.switch(number, desired, rebuilt, victim)
        if not failed:
            self.tick(5, 60)
            yield GenerationCompleted(**self.common(DEPLOY_ACTOR), number=number)
            self.good[number] = desired
            self.revisions[number] = revision
            self.last_good = number
            self.carry, self.fix = (), None
            yield from self.after_generation(desired, switched)
        else:
            self.tick(5, 60)
            victim_name = failed[0][1]
            yield GenerationFailed(
                **self.common(DEPLOY_ACTOR),
                number=number,
                reason=(
                    f"activation of {victim_name} failed on {len(failed)} of "
                    f"{len(self.service_hosts[victim_name])} hosts; rollout stopped"
                ),
            )
            self.tick(1, 30)
            yield self.host_report(failed[0][0])
            last_good = self.last_good
            self.desired = self.good[last_good]
            self.number += 1
            yield from self.rollback(
                self.number, last_good, self.revisions[last_good], self.desired, switched, failed
            )
            self.good[self.number] = self.desired
            self.revisions[self.number] = self.revisions[last_good]
            self.last_good = self.number
            self.carry, self.fix = changed, victim_name

    def pick_changes(self, names: list[str]) -> tuple[str, ...]:
        """1-3 services to change, leaves more often than foundations (as in real life)."""
        weights = [1.0 / (1 + len(self.catalog.dependents(n))) ** 0.75 for n in names]
        chosen: list[str] = []
        for _ in range(min(len(names), self.rng.choices((1, 2, 3), weights=(5, 3, 2))[0])):
            pick = self.rng.choices(names, weights=weights)[0]
            chosen.append(pick)
            weights[names.index(pick)] = 0.0
        return tuple(n for n in names if n in chosen)

    def depends_on_any(self, name: str, changed: Iterable[str]) -> bool:
        return any(name in self.catalog.dependents(c) for c in changed)

    def bump(self, version: tuple[int, int, int]) -> tuple[int, int, int]:
        major, minor, patch = version
        roll = self.rng.random()
        if roll < 0.03:
            return (major + 1, 0, 0)
        if roll < 0.2:
            return (major, minor + 1, 0)
        return (major, minor, patch + 1)

    def build(self, name: str, version: str, revision: str) -> tuple[Build, BuildRecorded]:
        build_id = random_nix_hash(self.rng)
        artifact = f"/nix/store/{build_id}-{name}-{version}"
        components = self.closure(name)
        build = Build(
            service=name,
            version=version,
            build_id=build_id,
            artifact=artifact,
            source_revision=revision,
            size_bytes=self.rng.randint(4, 90) * 1_048_576 + self.rng.randint(0, 1_048_575),
        )
        event = BuildRecorded(
            **self.common(CI_ACTOR),
            build_id=build_id,
            service=name,
            version=version,
            artifact=artifact,
            source_revision=revision,
            closure=components,
        )
        return build, event

    def closure(self, name: str) -> tuple[Component, ...]:
        """The closure of a new build of ``name`` (its size varies a little per build)."""
        spec = self.catalog.spec(name)
        return closure(spec, self.pins[name], spec.closure_size + self.rng.randint(-8, 8))

    def distribute(self, host: str, build: Build, broken: bool, deploy: int) -> Iterator[Envelope]:
        rng = self.rng
        size = build.size_bytes
        if deploy == 0:  # a fresh host needs (nearly) the whole closure
            size += len(self.catalog.spec(build.service).packages) * rng.randint(200_000, 900_000)
        if broken:
            self.tick(5, 60)
            yield DistributionFailed(
                **self.common(DEPLOY_ACTOR),
                host=host,
                service=build.service,
                build_id=build.build_id,
                reason=rng.choice(_DISTRIBUTION_FAILURES).format(host=host),
            )
            self.tick(30, 180)  # the coordinator retries
        self.tick(0.1, 2.5)
        yield DistributionCompleted(
            **self.common(DEPLOY_ACTOR),
            host=host,
            service=build.service,
            build_id=build.build_id,
            bytes=size,
            duration_s=round(size / rng.uniform(40e6, 200e6) + rng.uniform(0.2, 2.0), 3),
        )

    def switch(
        self,
        number: int,
        desired: dict[str, Build],
        rebuilt: list[str],
        victim: str | None,
    ) -> Generator[Envelope, None, tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
        """Drain, deactivate and replace each affected placement.

        Returns (via ``yield from``) the placements switched to the new build and those
        whose activation failed (then the rollout stopped).
        """
        rng = self.rng
        switched: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        failure = rng.choice(_ACTIVATION_FAILURES)
        failures_left = 0
        if victim is not None:
            failures_left = min(len(self.service_hosts[victim]), rng.randint(1, 3))
        for service in rebuilt:
            new = desired[service]
            for host in self.service_hosts[service]:
                old = self.active.get((host, service))
                if old is not None:
                    yield from self.retire(host, old, number)
                self.tick(0.3, 8)
                if service == victim:
                    reason, code, template = failure
                    deps = self.catalog.spec(service).depends_on
                    yield ActivationFailed(
                        **self.common(DEPLOY_ACTOR),
                        host=host,
                        service=service,
                        build_id=new.build_id,
                        generation=number,
                        reason=reason,
                        exit_code=code,
                        log_excerpt=template.format(
                            service=service,
                            version=new.version,
                            pid=rng.randint(1000, 60000),
                            dep=deps[0] if deps else "postgres",
                        ),
                    )
                    self.active.pop((host, service), None)
                    failed.append((host, service))
                    self.tick(1, 20)
                    yield HealthReported(
                        **self.common(f"agent@{host}"),
                        host=host,
                        service=service,
                        state="critical",
                        description=f"{service}.service is not running ({reason})",
                        ttl_s=60.0,
                    )
                    failures_left -= 1
                    if failures_left == 0:
                        return switched, failed
                    continue
                yield ActivationCompleted(
                    **self.common(DEPLOY_ACTOR),
                    host=host,
                    service=service,
                    build_id=new.build_id,
                    generation=number,
                    duration_s=self.seconds(0.4, 12.0),
                )
                self.active[(host, service)] = new
                switched.append((host, service))
        return switched, failed

    def retire(self, host: str, old: Build, number: int) -> Iterator[Envelope]:
        """Drain the old build's traffic and stop it (the drain gives up now and then)."""
        rng = self.rng
        self.tick(0.2, 3)
        in_flight = rng.randint(0, 250)
        yield DrainStarted(
            **self.common(DEPLOY_ACTOR),
            host=host,
            service=old.service,
            build_id=old.build_id,
            in_flight=in_flight,
        )
        if in_flight > 20 and rng.random() < 0.012:
            timeout = rng.choice((30.0, 60.0))
            self.tick(timeout, timeout + 0.5)
            yield DrainTimedOut(
                **self.common(DEPLOY_ACTOR),
                host=host,
                service=old.service,
                build_id=old.build_id,
                in_flight=rng.randint(1, max(1, in_flight // 4)),
                timeout_s=timeout,
            )
        else:
            duration = self.seconds(0.2, 15.0)
            self.tick(duration, duration)
            yield DrainCompleted(
                **self.common(DEPLOY_ACTOR),
                host=host,
                service=old.service,
                build_id=old.build_id,
                duration_s=duration,
            )
        self.tick(0.1, 1.5)
        yield Deactivated(
            **self.common(DEPLOY_ACTOR),
            host=host,
            service=old.service,
            build_id=old.build_id,
            generation=number,
        )
        self.active.pop((host, old.service), None)

    def rollback(
        self,
        number: int,
        target: int,
        revision: str,
        builds: dict[str, Build],
        switched: list[tuple[str, str]],
        failed: list[tuple[str, str]],
    ) -> Iterator[Envelope]:
        """An on-call engineer rolls back to the last good generation: the placements
        already switched go back, the failed ones get their old build again."""
        self.tick(180, 1500)
        yield GenerationPlanned(
            **self.common(self.rng.choice(ON_CALL)),
            number=number,
            parent=number - 1,
            reason="rollback",
            target=target,
            source_revision=revision,
            manifest=self.manifest(builds),
        )
        for host, service in [*switched, *failed]:
            current = self.active.get((host, service))
            if current is not None:
                yield from self.retire(host, current, number)
            self.tick(0.3, 6)
            yield ActivationCompleted(
                **self.common(DEPLOY_ACTOR),
                host=host,
                service=service,
                build_id=builds[service].build_id,
                generation=number,
                duration_s=self.seconds(0.4, 10.0),
            )
            self.active[(host, service)] = builds[service]
        self.tick(5, 60)
        yield GenerationCompleted(**self.common(DEPLOY_ACTOR), number=number)
        self.tick(30, 300)
        yield self.host_report(failed[0][0])
        for host, service in failed:
            self.tick(5, 60)
            yield self.service_health(host, service, force_ok=True)

    def host_report(self, host: str) -> HostReported:
        """What the agent on ``host`` finds active, read from the agent's own view."""
        entries = tuple(
            self.entry(host, self.active[(host, s)])
            for s in self.host_services[host]
            if (host, s) in self.active
        )
        return HostReported(**self.common(f"agent@{host}"), host=host, manifest=entries)

    def inventory(self) -> Iterator[HostReported]:
        """Every agent reports its host; ``self.drifting`` of the hosts were changed by
        hand, the first by putting a service back to an older build, the next by
        swapping services (and so on, in turn)."""
        drifted = sorted(self.rng.sample(self.hosts, min(self.drifting, len(self.hosts))))
        changes = dict(zip(drifted, itertools.cycle((self.put_back, self.swapped))))
        for host in self.hosts:
            self.tick(0.5, 4)
            report = self.host_report(host)
            if host in changes:
                running = {entry.service: entry for entry in report.manifest}
                changes[host](host, running)
                report = report.model_copy(update={"manifest": tuple(running.values())})
            yield report

    def put_back(self, host: str, running: dict[str, ManifestEntry]) -> None:
        """Someone ran ``nix-env --rollback`` on one service: its previous good build runs."""
        for service, entry in running.items():
            for _, builds in sorted(self.good.items(), reverse=True):
                if builds[service].build_id != entry.build_id:
                    running[service] = self.entry(host, builds[service])
                    return
        self.swapped(host, running)  # nothing ever changed: swap services instead

    def swapped(self, host: str, running: dict[str, ManifestEntry]) -> None:
        """Someone stopped a service and started one that is not placed on the host."""
        stopped = sorted(running)[-1]
        del running[stopped]
        for spec in self.catalog.services:
            if spec.name != stopped and spec.name not in running:
                running[spec.name] = self.entry(host, self.desired[spec.name])
                return

    def service_health(self, host: str, service: str, *, force_ok: bool = False) -> HealthReported:
        rng = self.rng
        roll = 0.0 if force_ok else rng.random()
        if roll < 0.9:
            latency = round(rng.uniform(8, 240), 1)
            return HealthReported(
                **self.common(f"agent@{host}"),
                host=host,
                service=service,
                state="ok",
                metric=latency,
                description=f"p99 latency {latency} ms",
                ttl_s=60.0,
            )
        if roll < 0.98:
            latency = round(rng.uniform(250, 900), 1)
            return HealthReported(
                **self.common(f"agent@{host}"),
                host=host,
                service=service,
                state="warning",
                metric=latency,
                description=f"p99 latency {latency} ms is above the 250 ms objective",
                ttl_s=60.0,
            )
        rate = round(rng.uniform(5, 40), 1)
        return HealthReported(
            **self.common(f"agent@{host}"),
            host=host,
            service=service,
            state="critical",
            metric=rate,
            description=f"{rate}% of requests failed with 5xx in the last minute",
            ttl_s=60.0,
        )

    def host_health(self, host: str) -> HealthReported:
        usage = round(min(99.0, self.rng.betavariate(6, 3) * 100), 1)
        state: Literal["ok", "warning", "critical"] = (
            "ok" if usage < 85 else "warning" if usage < 95 else "critical"
        )
        return HealthReported(
            **self.common(f"agent@{host}"),
            host=host,
            state=state,
            metric=usage,
            description=f"/nix/store is {usage}% full",
            ttl_s=300.0,
        )

    def after_generation(
        self, desired: dict[str, Build], switched: list[tuple[str, str]]
    ) -> Iterator[Envelope]:
        """Agents report on the services just switched, and one or two on their whole host."""
        rng = self.rng
        picked = rng.sample(range(len(switched)), min(len(switched), max(2, len(switched) // 6)))
        for host, service in (switched[i] for i in sorted(picked)):
            self.tick(1, 30)
            yield self.service_health(host, service)
        for host in sorted(rng.sample(self.hosts, min(len(self.hosts), rng.randint(1, 2)))):
            self.tick(10, 120)
            yield self.host_report(host)

    def quiet_period(self) -> Iterator[Envelope]:
        """Hours between deploys: periodic host health and the odd agent report."""
        rng = self.rng
        gap_s = rng.uniform(3 * 3600, 26 * 3600)
        reports = max(1, len(self.hosts) // 6)
        step = gap_s / (reports + 1)
        for _ in range(reports):
            self.tick(step * 0.5, step * 1.5)
            host = rng.choice(self.hosts)
            yield self.host_health(host)
            if rng.random() < 0.05:
                self.tick(1, 60)
                yield self.host_report(host)
        self.tick(step * 0.5, step * 1.5)


def demo_fleet(hosts: int = 300, services: int = 30, seed: int = 0) -> Iterator[Envelope]:
    """The events of a realistic two-environment fleet, in the order they happened.

    Deterministic: the same ``(hosts, services, seed)`` gives byte-identical events
    (``model_dump_json``), ``event_id`` and ``occurred_at`` included; another seed gives
    another history. Staging (a tenth of the hosts, at least two) starts at
    :data:`BASE_TIME`, production a few hours later; each has 20+ generations, one or two
    of them failing and rolled back. Events are produced lazily; at the defaults there are
    about 20,000 of them (18,000-29,000 depending on the seed).
    """
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
    if not 1 <= services <= MAX_SERVICES:
        raise ValueError(f"services must be between 1 and {MAX_SERVICES}, not {services}")
    catalog = build_catalog(services, seed)
    staging = EnvHistory("staging", staging_hosts(hosts), catalog, seed, timedelta(0))
    production = EnvHistory(
        "production", production_hosts(hosts), catalog, seed, timedelta(hours=3), drifting=2
    )
    yield from heapq.merge(
        staging.events(), production.events(), key=lambda event: event.occurred_at
    )


OFFLINE_AFTER = timedelta(days=4)
OFFLINE_FOR = timedelta(hours=5)
OFFLINE_HOSTS = 3


def recorded_demo_fleet(hosts: int = 300, services: int = 30, seed: int = 0) -> Iterator[Envelope]:
    """``demo_fleet`` as the ledger receives it: in the order it is recorded, each event
    with its ``recorded_at``.

    Most events are recorded 0.05-1.5 s after they happen, each source's (a host's, or
    an environment's coordinator's) in the order they happened. The agents of three
    production hosts behind one switch lose their connection for :data:`OFFLINE_FOR`:
    the hosts activated first in the first production generation planned
    :data:`OFFLINE_AFTER` into the story. Everything they report while offline is
    spooled and recorded when the window ends, after facts that happened later — so
    ``--known-at``, ``replay --until`` and the views' handling of late facts have
    something to show on the demo itself. Deterministic.
    """
    rng = random.Random(f"ledger-demo:{seed}:recorded")
    start: datetime | None = None
    offline: list[str] = []
    spooled = 0
    sent: dict[tuple[str, str | None], datetime] = {}
    pending: list[tuple[datetime, int, Envelope]] = []
    for number, event in enumerate(demo_fleet(hosts=hosts, services=services, seed=seed)):
        when = event.occurred_at
        production = event.env == "production"
        if (
            start is None
            and production
            and isinstance(event, GenerationPlanned)
            and when >= BASE_TIME + OFFLINE_AFTER
        ):
            start = when
        in_window = start is not None and start <= when < start + OFFLINE_FOR
        if (
            in_window
            and production
            and len(offline) < OFFLINE_HOSTS
            and isinstance(event, ActivationCompleted)
            and event.host not in offline
        ):
            offline.append(event.host)
        if in_window and production and getattr(event, "host", None) in offline:
            assert start is not None
            spooled += 1  # sent when the agent is back, in the order it happened
            recorded = start + OFFLINE_FOR + timedelta(microseconds=spooled)
        else:
            recorded = when + timedelta(milliseconds=rng.randint(50, 1_500))
            # One source sends its facts in order: never before its previous one.
            source = (event.env, getattr(event, "host", None))
            recorded = max(recorded, sent.get(source, recorded) + timedelta(microseconds=1))
            sent[source] = recorded
        heapq.heappush(
            pending, (recorded, number, event.model_copy(update={"recorded_at": recorded}))
        )
        # Every later event happens (so is recorded) after ``when``: what was recorded
        # by then can go.
        while pending and pending[0][0] <= when:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def kind_counts(events: Iterable[Envelope]) -> dict[str, int]:
    """How many events of each kind (``{"build_recorded": 212, …}``), sorted by kind."""
    counts = Counter(str(getattr(event, "kind", type(event).__name__)) for event in events)
    return dict(sorted(counts.items()))
