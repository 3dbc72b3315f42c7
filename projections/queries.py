"""What the views answer: topology, manifests, generations, audit, history, failures.

Every function returns plain rows (dicts of JSON-ready values, timestamps as ISO 8601
UTC strings), in a stable order: the CLI prints them as tables or as JSON, and the HTTP
API will serve the same rows.
"""

from __future__ import annotations

import difflib
import gc
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, NamedTuple

import orjson

from ledger.application import batched
from ledger.ecosystems import lookup_name, lookup_names, parse_purl
from ledger.errors import InvalidInput, UnknownName
from projections.generations import manifest_entries
from projections.history import without_repeats
from projections.runner import Views
from projections.store import Tx, from_micros, to_micros
from projections.versions import VersionRange, version_key, version_matches
from projections.view import IN_LIST

Row = dict[str, Any]
_FOREVER = 2**62


def iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return from_micros(micros).isoformat().replace("+00:00", "Z")


def env_clause(env: str | None, column: str = "env") -> tuple[str, list[Any]]:
    """`` AND env = ?`` and its parameter when an env is given; nothing otherwise."""
    return (f" AND {column} = ?", [env]) if env else ("", [])


def known_envs(tx: Tx) -> list[str]:
    """Every environment any fact named: activations, health, builds, generations,
    host reports."""
    return sorted(
        env
        for (env,) in tx.tuples(
            "SELECT env FROM placement_envs UNION SELECT env FROM generations "
            "UNION SELECT env FROM builds UNION SELECT env FROM host_report_times"
        )
    )


def nearest(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x' or 'y'?"`` when some of ``known`` look like ``name``."""
    names = {n.lower(): n for n in known}
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
    if not close and len(name) >= 3:  # a prefix is close too: prod → production
        close = sorted(n for n in names if n.startswith(name.lower()))[:3]
    return f"; did you mean {' or '.join(repr(names[c]) for c in close)}?" if close else ""


def require_env(tx: Tx, env: str | None) -> None:
    """Refuse an environment the ledger has never seen: an empty answer must mean
    "nothing there", never "no such environment"."""
    if env is None:
        return
    envs = known_envs(tx)
    if env not in envs:
        raise UnknownName(
            f"environment {env!r} is not in the ledger{nearest(env, envs)} "
            f"(known: {', '.join(envs) or 'none yet'})"
        )


def require_env_of(views: Views, env: str | None, rows: Sequence[Any]) -> None:
    """``require_env`` when an answer for ``env`` came out empty (it costs a query)."""
    if env is not None and not rows:
        with views.read() as tx:
            require_env(tx, env)


def pick_env(views: Views, env: str | None) -> str:
    """The env a generation number refers to: the one given, or the only one there is."""
    envs = [r["env"] for r in views.query("SELECT DISTINCT env FROM generations ORDER BY env")]
    return choose_env(envs, env)


def choose_env(envs: Sequence[str], env: str | None) -> str:
    """``pick_env`` among ``envs``, the environments that have generations."""
    if env:
        if env not in envs:
            known = ", ".join(envs) or "none yet"
            raise InvalidInput(f"environment {env!r} has no generations (known: {known})")
        return env
    if not envs:
        raise InvalidInput("the ledger holds no generations yet")
    if len(envs) > 1:
        raise InvalidInput(f"several environments ({', '.join(envs)}): pick one with --env")
    return str(envs[0])


def require_generation(views: Views, number: int, env: str | None = None) -> str:
    """The env of generation ``number`` (see ``pick_env``); refuses an unknown one."""
    env = pick_env(views, env)
    if not views.query(
        "SELECT 1 AS found FROM generations WHERE env = ? AND number = ?", (env, number)
    ):
        raise InvalidInput(f"{env} has no generation {number}")
    return env


# --- topology and manifests ----------------------------------------------------------

_CURRENT = """
SELECT p.env, p.host, p.service, p.build_id, b.version, b.artifact, p.valid_from,
       p.generation, hs.state AS service_state, hs.occurred_at AS service_at,
       hs.ttl_s AS service_ttl, hh.state AS host_state, hh.occurred_at AS host_at,
       hh.ttl_s AS host_ttl
FROM placements p
LEFT JOIN builds b ON b.build_id = p.build_id
LEFT JOIN health hs ON hs.env = p.env AND hs.host = p.host AND hs.service = p.service
LEFT JOIN health hh ON hh.env = p.env AND hh.host = p.host AND hh.service = ''
WHERE p.end_position IS NULL AND p.retired_by IS NULL"""


def _health(state: str | None, at: int | None, ttl: float | None, now: float) -> str | None:
    if state is None or at is None:
        return None
    if ttl is not None and at / 1e6 + ttl < now:
        return f"{state} (stale)"
    return state


def _placement(row: Row, now: float) -> Row:
    service = _health(row["service_state"], row["service_at"], row["service_ttl"], now)
    host = _health(row["host_state"], row["host_at"], row["host_ttl"], now)
    return {
        "env": row["env"],
        "host": row["host"],
        "service": row["service"],
        "build_id": row["build_id"],
        "version": row["version"],
        "artifact": row["artifact"],
        "since": iso(row["valid_from"]),
        "generation": row["generation"],
        "health": service or host,
    }


def _seconds(now: datetime | None) -> float:
    return time.time() if now is None else now.timestamp()


def topology(views: Views, env: str | None = None, *, now: datetime | None = None) -> list[Row]:
    """Every active placement: env, host, service, build, since when, generation, health
    (stale or not as of ``now``, by default the clock's)."""
    clause, params = env_clause(env, "p.env")
    rows = views.query(f"{_CURRENT}{clause} ORDER BY p.env, p.host, p.service", params)
    require_env_of(views, env, rows)
    seconds = _seconds(now)
    return [_placement(row, seconds) for row in rows]


def manifest(
    views: Views, host: str, env: str | None = None, *, now: datetime | None = None
) -> list[Row]:
    """What a host runs, Disnix-profile style: builds, closures and dependencies (health
    as of ``now``, as in ``topology``)."""
    clause, params = env_clause(env, "p.env")
    with views.read() as tx:
        rows = tx.query(
            f"{_CURRENT} AND p.host = ?{clause} ORDER BY p.env, p.service", [host, *params]
        )
        seconds = _seconds(now)
        services = []
        manifests: dict[tuple[str, int], dict[str, Row]] = {}
        for row in rows:
            placement = _placement(row, seconds)
            key = (row["env"], row["generation"])
            if key not in manifests:
                manifests[key] = {e["service"]: e for e in manifest_entries(tx, *key, host) or []}
            entry = manifests[key].get(row["service"])
            closure = tx.query(
                "SELECT name, version, store_path, purl, hash FROM build_components "
                "WHERE build_id = ? ORDER BY ord",
                (row["build_id"],),
            )
            if entry:
                placement["artifact"] = placement["artifact"] or entry["artifact"]
            placement["depends_on"] = entry["depends_on"] if entry else []
            placement["closure"] = closure
            services.append(placement)
        if not services:
            require_env(tx, env)
    return services


# --- generations ---------------------------------------------------------------------


def _generation(row: Row, tags: list[str]) -> Row:
    status = "rolled back" if row["rolled_back_by"] is not None else row["status"]
    return {
        "env": row["env"],
        "number": row["number"],
        "parent": row["parent"],
        "reason": row["reason"],
        "target": row["target"],
        "status": status,
        "bad": status in ("failed", "rolled back"),
        "rolled_back_by": row["rolled_back_by"],
        "actor": row["actor"],
        "source_revision": row["source_revision"],
        "tags": tags,
        "planned_at": iso(row["planned_at"]),
        "finished_at": iso(row["finished_at"]),
        "failure": row["failure"],
        "placements": row["placements"],
    }


def generations(views: Views, env: str | None = None) -> list[Row]:
    """Every generation, oldest first, with its parent: a tree per environment."""
    clause, params = env_clause(env)
    with views.read() as tx:
        rows = tx.query(
            f"SELECT * FROM generations WHERE 1 = 1{clause} ORDER BY env, number", params
        )
        tags: dict[tuple[str, int], list[str]] = {}
        for tag in tx.query(
            f"SELECT env, number, tag FROM generation_tags WHERE 1 = 1{clause} "
            "ORDER BY env, number, position, tag",
            params,
        ):
            tags.setdefault((tag["env"], tag["number"]), []).append(tag["tag"])
        if not rows:
            require_env(tx, env)
    return [_generation(row, tags.get((row["env"], row["number"]), [])) for row in rows]


def generation(views: Views, number: int, env: str | None = None) -> Row:
    """One generation with its desired manifest."""
    env = pick_env(views, env)
    with views.read() as tx:
        rows = tx.query("SELECT * FROM generations WHERE env = ? AND number = ?", (env, number))
        if not rows:
            raise InvalidInput(f"{env} has no generation {number}")
        tags = tx.query(
            "SELECT tag FROM generation_tags WHERE env = ? AND number = ? ORDER BY position, tag",
            (env, number),
        )
        entries = manifest_entries(tx, env, number) or []
    result = _generation(rows[0], [t["tag"] for t in tags])
    result["manifest"] = entries
    return result


# --- audit: where is a package -------------------------------------------------------


class Found(NamedTuple):
    """One answer of ``where``: a placement whose closure holds a version of the package
    (with the outputs of it the closure holds: ``out,bin,dev``).

    Answers can be tens of thousands of rows, so they are plain tuples; ``row()`` is
    the JSON form (``since`` as an ISO 8601 time, ``outputs`` as a list).
    """

    env: str
    host: str
    service: str
    build_id: str
    build_version: str | None
    name: str
    version: str
    outputs: str
    store_path: str | None
    since: int | None  # microseconds; None for a generation's manifest
    generation: int
    ecosystem: str

    def row(self) -> Row:
        return {
            **self._asdict(),
            "outputs": self.outputs.split(",") if self.outputs else [],
            "since": iso(self.since),
        }


_FOUND = (
    "p.env, p.host, p.service, p.build_id, b.version, k.name, k.version, k.outputs, "
    "k.store_path, p.valid_from, p.generation, k.ecosystem"
)
_PLACED = "FROM build_packages k JOIN placements p ON p.build_id = k.build_id"
_MATCHING = f"{_PLACED} LEFT JOIN builds b ON b.build_id = k.build_id"
_ORDER = "ORDER BY p.env, p.host, p.service, k.ecosystem, k.version, p.build_id, p.valid_from"


class Package(NamedTuple):
    """A package a question names, in one ecosystem, with the versions of it asked for."""

    ecosystem: str
    match_name: str
    versions: tuple[str, ...]


def where(
    views: Views,
    name: str,
    *,
    version: str | None = None,
    version_range: VersionRange | None = None,
    at: datetime | None = None,
    known_at: datetime | None = None,
    generation_number: int | None = None,
    env: str | None = None,
) -> list[Found]:
    """Every placement whose build's closure holds package ``name`` (a name, or a purl
    such as ``pkg:pypi/pygments``), one row per placement and version of it.

    Now by default. ``at``: what was active at that moment (valid time), as the ledger
    knows it now or, with ``known_at``, as it knew it then (transaction time: facts and
    builds recorded later are left out). ``generation_number``: that generation's
    manifest. A name no closure ever held, or an env never seen, is UnknownName.
    """
    with views.read() as tx:
        manifest = (
            None
            if generation_number is None
            else _manifest_placements(tx, pick_env(views, env), generation_number)
        )
        packages = asked_packages(tx, name, version, version_range)
        if not packages:
            require_env(tx, env)
            return []
        if manifest is not None:
            return _in_manifest(tx, manifest, packages)
        # The package's few builds first, then their placements (``_placed``).
        held = _held(tx, packages, known_at)
        condition, params = placement_condition(at, known_at, env)
        found: list[Found] = []
        with collector_paused():
            for build, versions in held.items():
                found += _placed(tx, build, versions, condition, params)
            _sort_answers(found)
        if not found:
            require_env(tx, env)
    return found


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while an answer of tens of thousands of
    rows is made. CPython untracks only exact tuples, so every ``Found`` (a NamedTuple)
    stays tracked: making 30,000 of them set off full collections that scan the whole
    heap, again and again (``bench.views``, SQLite: p95 64.0 ms running, 36.8 ms paused;
    docs/benchmarks.md). The code paused makes no reference cycles. Threads:
    the collector is turned back on only by whoever found it on."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def _held(
    tx: Tx, packages: Sequence[Package], known_at: datetime | None
) -> dict[str, list[tuple[Any, ...]]]:
    """build id → (build version, name, version, outputs, store path, ecosystem) of each
    asked package version its closure holds, in (ecosystem, version) order; as known at
    ``known_at``: builds recorded later are left out."""
    chosen, params = _package_clause(packages)
    recorded, when = _recorded(known_at)
    held: dict[str, list[tuple[Any, ...]]] = {}
    for build, *package in tx.tuples(
        "SELECT k.build_id, b.version, k.name, k.version, k.outputs, k.store_path, k.ecosystem "
        "FROM build_packages k LEFT JOIN builds b ON b.build_id = k.build_id "
        f"WHERE {chosen}{recorded} ORDER BY k.ecosystem, k.version",
        [*params, *when],
    ):
        held.setdefault(build, []).append(tuple(package))
    return held


def held_builds(tx: Tx, packages: Sequence[Package]) -> dict[str, list[tuple[str, str]]]:
    """build id → (ecosystem, version) of each of ``packages``' versions its closure holds."""
    return {
        build: [(ecosystem, version) for _, _, version, _, _, ecosystem in versions]
        for build, versions in _held(tx, packages, None).items()
    }


def _placed(
    tx: Tx, build: str, versions: list[tuple[Any, ...]], condition: str, params: list[Any]
) -> list[Found]:
    """The answers of one build: its placements meeting ``condition``, one answer per
    placement and asked version its closure holds. One indexed range per build, with
    no build id to decode per row (``bench.views``, SQLite: p50 40.0 ms, against 65.3
    ms for one IN list of every build)."""
    rows = tx.tuples(
        "SELECT p.env, p.host, p.service, p.valid_from, p.generation FROM placements p "
        f"WHERE p.build_id = ? AND {condition}",
        [build, *params],
    )
    return [
        _new_tuple(Found, (env, host, service, build, build_version, name, version, outputs,
                           path, since, number, ecosystem))
        for build_version, name, version, outputs, path, ecosystem in versions
        for env, host, service, since, number in rows
    ]  # fmt: skip


def _sort_answers(found: list[Found]) -> None:
    """Put ``found`` in ``_ORDER``. Answers run to tens of thousands of rows, so they are
    made with ``tuple.__new__`` and sorted as tuples (C comparisons, no key function):
    the same order whenever each (env, host, service) has one answer, the rule (one
    placement each, holding one version of the package); else by the full key."""
    found.sort()
    if any(a[:3] == b[:3] for a, b in pairwise(found)):
        found.sort(key=lambda f: (f.env, f.host, f.service, f.ecosystem, f.version,
                                  f.build_id, f.since))  # fmt: skip


_new_tuple = tuple.__new__


def where_page(
    views: Views,
    name: str,
    *,
    version: str | None = None,
    version_range: VersionRange | None = None,
    at: datetime | None = None,
    known_at: datetime | None = None,
    env: str | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Found], int]:
    """``where`` (not for a generation's manifest), ``limit`` answers from ``offset`` on
    in the same order, and how many there are in all: counted and cut in the database,
    so that a page of a large answer costs a page (the HTTP API's pages)."""
    with views.read() as tx:
        packages = asked_packages(tx, name, version, version_range)
        if not packages:
            require_env(tx, env)
            return [], 0
        chosen, chosen_params = _package_clause(packages)
        condition, params = placement_condition(at, known_at, env)
        recorded, when = _recorded(known_at)
        matching = f"{_MATCHING} WHERE {chosen} AND {condition}{recorded}"
        arguments = [*chosen_params, *params, *when]
        [(total,)] = tx.tuples(f"SELECT COUNT(*) {matching}", arguments)
        rows = tx.tuples(
            f"SELECT {_FOUND} {matching} {_ORDER} LIMIT ? OFFSET ?",
            [*arguments, limit, offset],
        )
        if not total:
            require_env(tx, env)
    return list(map(Found._make, rows)), int(total)


Placement = tuple[str, str, str, str, int | None, int]


def asked_packages(
    tx: Tx, name: str, version: str | None, version_range: VersionRange | None
) -> list[Package]:
    """The packages ``name`` stands for, each with the versions of it in any closure that
    ``version`` (exact, as written) and ``version_range`` (in the package's ecosystem's
    order) let through; packages none of whose versions pass are left out.

    ``name`` is a purl (``pkg:pypi/pygments``, ``pkg:nix/openssl@3.0.13``: that ecosystem
    only, its version as ``version``) or a bare name, which finds the package in every
    ecosystem by that ecosystem's rules (``pygments`` finds PyPI's ``Pygments``). A
    package that no closure ever held is refused (UnknownName, with the names that look
    like it), and so is an exact version of it that no closure held: "nowhere" must not
    stand for "misspelt".
    """
    wanted: tuple[str, str] | None = None
    if name.startswith("pkg:"):
        ref = parse_purl(name)
        wanted = (ref.ecosystem, ref.match_name)
        if ref.version is not None:
            if version is not None and version != ref.version:
                raise InvalidInput(
                    f"{name!r} names version {ref.version}: give --version {version} or "
                    "a purl with a version, not both"
                )
            version = ref.version
        candidates = {ref.match_name}
    else:
        candidates = lookup_names(name)
    marks = ", ".join("?" * len(candidates))
    found: dict[tuple[str, str], list[str]] = {}
    for ecosystem, match, found_version in tx.tuples(
        "SELECT DISTINCT ecosystem, match_name, version FROM build_packages "
        f"WHERE match_name IN ({marks})",
        sorted(candidates),
    ):
        ours = (
            (ecosystem, match) == wanted
            if wanted is not None
            else lookup_name(ecosystem, name) == match
        )
        if ours:
            found.setdefault((ecosystem, match), []).append(found_version)
    if not found:
        names = [n for (n,) in tx.tuples("SELECT DISTINCT name FROM build_packages")]
        raise UnknownName(
            f"no closure in the ledger has ever held a package called {name!r}"
            f"{nearest(name, names)}"
        )
    held = {v for versions in found.values() for v in versions}
    if version is not None and version not in held:
        shown = sorted(held, key=version_key)
        raise UnknownName(
            f"no closure in the ledger has ever held {name} {version} (versions held: "
            f"{', '.join(shown[:20])}{', …' if len(shown) > 20 else ''})"
        )
    packages = [
        Package(
            ecosystem,
            match,
            tuple(
                sorted(
                    v
                    for v in versions
                    if version_matches(v, exact=version, range_=version_range, ecosystem=ecosystem)
                )
            ),
        )
        for (ecosystem, match), versions in sorted(found.items())
    ]
    return [package for package in packages if package.versions]


def _package_clause(packages: Sequence[Package]) -> tuple[str, list[Any]]:
    """SQL choosing the ``build_packages`` rows (``k``) of these packages and versions."""
    clauses, params = [], []
    for package in packages:
        marks = ", ".join("?" * len(package.versions))
        clauses.append(f"(k.match_name = ? AND k.ecosystem = ? AND k.version IN ({marks}))")
        params += [package.match_name, package.ecosystem, *package.versions]
    return f"({' OR '.join(clauses)})", params


def placement_condition(
    at: datetime | None, known_at: datetime | None, env: str | None
) -> tuple[str, list[Any]]:
    """Which placements count (``p``): the open ones, or those holding ``at`` — as known
    now, or as known at ``known_at`` (rows recorded by then; see
    projections/placements.py; builds recorded later are left out by ``_recorded``).
    Written with the columns of the ``placements_build`` index only (``retired_at``,
    ``valid_to``: set exactly when ``retired_by``, ``end_position`` are), so that no
    table row is read."""
    params: list[Any] = []
    if at is None and known_at is None:
        condition = "p.end_position IS NULL AND p.retired_by IS NULL"
    elif known_at is None:
        condition = (
            "p.retired_at IS NULL AND p.valid_from <= ? AND (p.valid_to IS NULL OR p.valid_to > ?)"
        )
        moment = to_micros(at or datetime.now(UTC))
        params = [moment, moment]
    else:
        moment = to_micros(at or datetime.now(UTC))
        known = to_micros(known_at)
        condition = (
            "p.recorded_from <= ? AND (p.retired_at IS NULL OR p.retired_at > ?) "
            "AND p.valid_from <= ? AND NOT ("
            "p.valid_to IS NOT NULL AND p.valid_to <= ? AND p.recorded_to <= ?)"
        )
        params = [known, known, moment, moment, known]
    if env:
        condition += " AND p.env = ?"
        params.append(env)
    return condition, params


def _recorded(known_at: datetime | None) -> tuple[str, list[Any]]:
    """The condition on the joined build ``b``: recorded by ``known_at``, if given."""
    if known_at is None:
        return "", []
    return " AND b.recorded_at <= ?", [to_micros(known_at)]


def _in_manifest(tx: Tx, manifest: list[Placement], packages: Sequence[Package]) -> list[Found]:
    chosen, params = _package_clause(packages)
    held: dict[str, list[tuple[Any, ...]]] = {}
    for row in tx.tuples(
        "SELECT k.build_id, k.name, k.version, k.outputs, k.store_path, k.ecosystem "
        f"FROM build_packages k WHERE {chosen} ORDER BY k.ecosystem, k.version",
        params,
    ):
        held.setdefault(row[0], []).append(row[1:])
    build_versions = _build_versions(tx, held)
    return sorted(
        Found(env, host, service, build, build_versions.get(build), name, found, outputs, path,
              since, number, ecosystem)
        for env, host, service, build, since, number in manifest
        if build in held
        for name, found, outputs, path, ecosystem in held[build]
    )  # fmt: skip


def _manifest_placements(tx: Tx, env: str, number: int) -> list[Placement]:
    entries = manifest_entries(tx, env, number)
    if entries is None:
        raise InvalidInput(f"{env} has no generation {number}")
    return [(env, e["host"], e["service"], e["build_id"], None, number) for e in entries]


def _build_versions(tx: Tx, builds: Iterable[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for batch in batched(sorted(builds), IN_LIST):
        marks = ", ".join("?" * len(batch))
        versions.update(
            tx.tuples(f"SELECT build_id, version FROM builds WHERE build_id IN ({marks})", batch)
        )
    return versions


SummaryKey = tuple[str, str, str, str]
"""(env, ecosystem, name, version)"""


def where_summary(found: Sequence[Found]) -> list[Row]:
    """The answer in one line per env and package version: how many hosts and services,
    and which outputs of it the closures hold."""
    groups: dict[tuple[str, str, str], tuple[set[str], set[str], set[str], set[str]]] = {}
    for f in found:
        names, hosts, services, outputs = groups.setdefault(
            (f.env, f.ecosystem, f.version), (set(), set(), set(), set())
        )
        names.add(f.name)
        hosts.add(f.host)
        services.add(f.service)
        outputs.update(o for o in f.outputs.split(",") if o)
    return _summary_rows(
        ((env, ecosystem, min(names), version), len(hosts), services, outputs)
        for (env, ecosystem, version), (names, hosts, services, outputs) in groups.items()
    )


def where_counts(
    views: Views,
    name: str,
    *,
    version: str | None = None,
    version_range: VersionRange | None = None,
    at: datetime | None = None,
    known_at: datetime | None = None,
    env: str | None = None,
) -> list[Row]:
    """``where_summary`` of ``where``, counted in the database: the auditor's first
    question ("which versions, on how many hosts") without fetching every placement."""
    with views.read() as tx:
        packages = asked_packages(tx, name, version, version_range)
        if not packages:
            require_env(tx, env)
            return []
        chosen, chosen_params = _package_clause(packages)
        condition, params = placement_condition(at, known_at, env)
        # Service names may hold any printable character: collect them as JSON.
        services, outputs = (
            ("json_agg(DISTINCT p.service)", "string_agg(DISTINCT k.outputs, ',')")
            if tx.postgres
            else ("json_group_array(DISTINCT p.service)", "group_concat(DISTINCT k.outputs)")
        )
        # The builds only matter as known at a moment (b.recorded_at).
        joined = _MATCHING if known_at is not None else _PLACED
        recorded, when = _recorded(known_at)
        rows = tx.tuples(
            f"SELECT p.env, k.ecosystem, MIN(k.name), k.version, COUNT(DISTINCT p.host), "
            f"{services}, {outputs} {joined} WHERE {chosen} AND {condition}{recorded} "
            "GROUP BY p.env, k.ecosystem, k.match_name, k.version",
            [*chosen_params, *params, *when],
        )
        if not rows:
            require_env(tx, env)
    return _summary_rows(
        (
            (env_name, ecosystem, package, found),
            hosts,
            set(names if isinstance(names, list) else orjson.loads(names)),
            {o for o in (outputs or "").split(",") if o},
        )
        for env_name, ecosystem, package, found, hosts, names, outputs in rows
    )


def _summary_rows(groups: Iterable[tuple[SummaryKey, int, set[str], set[str]]]) -> list[Row]:
    return [
        {"env": env, "ecosystem": ecosystem, "name": name, "version": version,
         "outputs": sorted(outputs, key=lambda o: (o != "out", o)), "hosts": hosts,
         "services": sorted(services)}
        for (env, ecosystem, name, version), hosts, services, outputs in sorted(
            groups, key=lambda group: (*group[0][:3], version_key(group[0][3], group[0][1]))
        )
    ]  # fmt: skip


# --- history and failures ------------------------------------------------------------


def history(
    views: Views, host: str, service: str | None = None, env: str | None = None
) -> list[Row]:
    """Everything that happened on a host (optionally to one service), in time order
    (``occurred_at``, ties by position), health reports only where the state changed."""
    clause, params = env_clause(env)
    if service:
        clause += " AND service = ?"
        params.append(service)
    rows = views.query(
        f"SELECT * FROM host_history WHERE host = ?{clause} ORDER BY occurred_at, position",
        [host, *params],
    )
    require_env_of(views, env, rows)
    return [
        {
            **{column: value for column, value in row.items() if column != "state"},
            "service": row["service"] or None,
            "occurred_at": iso(row["occurred_at"]),
        }
        for row in without_repeats(rows)
    ]


def failures(views: Views, env: str | None = None) -> list[Row]:
    """Failed builds, distributions, activations and generations, timed-out drains, and
    facts that contradict the stream, in ledger order."""
    clause, params = env_clause(env)
    rows = views.query(f"SELECT * FROM failures WHERE 1 = 1{clause} ORDER BY position", params)
    require_env_of(views, env, rows)
    return [{**row, "occurred_at": iso(row["occurred_at"])} for row in rows]
