"""The builds view: every recorded build and its full closure, one row per component.

Builds are content-addressed, so a build id names the same artifact in every
environment: the first ``build_recorded`` of an id is kept, later ones are repeats. Its
``recorded_at`` says since when the ledger knows the closure (``where --known-at``).

Each component gets its **package identity** (``package_identity``): an ecosystem (``nix``
for a store path, else its purl's type), the name it is looked up by in that ecosystem
(PyPI's ``Pygments`` is ``pygments``), a version and, for Nix, an output. Besides the
closure table (``manifest`` and ``diff`` read it), ``build_packages`` holds one row per
package version a build's closure holds, its outputs together (``openssl-3.0.13``,
``-bin``, ``-dev`` and ``-man`` are openssl 3.0.13 with outputs out, bin, dev, man):
what ``ledger where`` searches.

``build_references`` keeps the dependency graph the build was recorded with: one row
per reference of a component (``ord`` refers to ``reference``, both closure indexes)
and one per root, with ``ord`` ``ROOT`` (-1), the build itself. A build recorded
without a graph (``nix-store -qR``, an SBOM without dependencies) has no rows there;
``ledger why`` says so rather than answer nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ledger.application import batched
from ledger.ecosystems import NIX, ecosystem_of, match_name, parse_purl
from ledger.errors import InvalidInput
from ledger.importers.storepath import NotAStorePath, parse_store_path
from ledger.nixnames import split_output
from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import IN_LIST, Fact, View

COMPONENT_COLUMNS = (
    "build_id",
    "ord",
    "name",
    "version",
    "output",
    "hash",
    "store_path",
    "purl",
    "ecosystem",
    "match_name",
)
PACKAGE_COLUMNS = (
    "build_id",
    "ecosystem",
    "match_name",
    "version",
    "name",
    "outputs",
    "store_path",
)
REFERENCE_COLUMNS = ("build_id", "ord", "reference")
ROOT = -1
"""The ``ord`` of the build itself in ``build_references``: its rows are the roots."""
BUILD_COLUMNS = (
    "build_id",
    "env",
    "service",
    "version",
    "artifact",
    "source_revision",
    "built_at",
    "recorded_at",
    "position",
    "components",
)


class Identity(NamedTuple):
    """Who a component is: ecosystem, the name it is looked up by, name, version, output."""

    ecosystem: str
    match_name: str
    name: str
    version: str
    output: str | None


def package_identity(component: dict[str, Any]) -> Identity:
    """The identity of a component as stored in a ``build_recorded`` event.

    A Nix component recorded before components had an output (its version then ends
    in the output: ``3.0.13-dev``) gets it from its store path's name, when that name is
    exactly the component's name and version; a Nix component with neither is ``out``.
    """
    name, version = component["name"], component["version"]
    output = component.get("output")
    store_path, purl = component.get("store_path"), component.get("purl")
    ecosystem = ecosystem_of(store_path, purl)
    namespace = None
    if ecosystem == NIX:
        if output is None and store_path:
            version, output = _output_from_path(store_path, name, version)
        output = output or "out"
    elif purl:
        try:
            namespace = parse_purl(purl).namespace
        except InvalidInput:
            namespace = None
    return Identity(ecosystem, match_name(ecosystem, namespace, name), name, version, output)


def _output_from_path(store_path: str, name: str, version: str) -> tuple[str, str | None]:
    try:
        path = parse_store_path(store_path)
    except NotAStorePath:
        return version, None
    path_name = store_path.rsplit("/", 1)[1][len(path.hash) + 1 :]
    package, package_version, output = split_output(path_name, deriver_name=None)
    written = package_version if output == "out" else f"{package_version}-{output}"
    if package == name and written == version:
        return package_version, output
    return version, None


def outputs_text(outputs: set[str | None]) -> str:
    """Outputs as stored (``out,bin,dev``): ``out`` first, the others sorted."""
    named = {o for o in outputs if o}
    return ",".join(sorted(named, key=lambda o: (o != "out", o)))


class BuildsView(View):
    name = "builds"
    description = "builds, their closures and package versions (where, manifest, diff)"
    schema_version = 3  # 2: package identity, build_packages; 3: build_references
    kinds = frozenset({"build_recorded"})
    tables = ("builds", "build_components", "build_packages", "build_references")
    ddl = (
        "CREATE TABLE IF NOT EXISTS builds ("
        "build_id TEXT PRIMARY KEY, env TEXT NOT NULL, service TEXT NOT NULL, "
        "version TEXT NOT NULL, artifact TEXT NOT NULL, source_revision TEXT NOT NULL, "
        "built_at BIGINT NOT NULL, recorded_at BIGINT NOT NULL, position BIGINT NOT NULL, "
        "components BIGINT NOT NULL)" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS build_components ("
        "build_id TEXT NOT NULL, ord BIGINT NOT NULL, name TEXT NOT NULL, "
        "version TEXT NOT NULL, output TEXT, hash TEXT, store_path TEXT, purl TEXT, "
        "ecosystem TEXT NOT NULL, match_name TEXT NOT NULL, "
        "PRIMARY KEY (build_id, ord))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS build_packages ("
        "build_id TEXT NOT NULL, ecosystem TEXT NOT NULL, match_name TEXT NOT NULL, "
        "version TEXT NOT NULL, name TEXT NOT NULL, outputs TEXT NOT NULL, store_path TEXT, "
        "PRIMARY KEY (build_id, ecosystem, match_name, version))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS build_references ("
        "build_id TEXT NOT NULL, ord BIGINT NOT NULL, reference BIGINT NOT NULL, "
        "PRIMARY KEY (build_id, ord, reference))" + WITHOUT_ROWID,
    )
    read_ddl = (
        "CREATE INDEX IF NOT EXISTS build_packages_name ON build_packages "
        "(match_name, ecosystem, version, build_id)",
        # NVD advisories name products, matched case-insensitively (ASCII) in any ecosystem.
        "CREATE INDEX IF NOT EXISTS build_packages_lower_name ON build_packages "
        "(lower(name), ecosystem, match_name, version)",
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        ids = {fact.event["build_id"] for fact in facts}
        known = set()
        for batch in batched(ids, IN_LIST):
            rows = tx.query(
                f"SELECT build_id FROM builds WHERE build_id IN ({', '.join('?' * len(batch))})",
                batch,
            )
            known |= {row["build_id"] for row in rows}
        builds: list[tuple[Any, ...]] = []
        components: list[tuple[Any, ...]] = []
        packages: list[tuple[Any, ...]] = []
        references: list[tuple[Any, ...]] = []
        for fact in facts:
            event = fact.event
            if event["build_id"] in known:
                continue
            known.add(event["build_id"])
            closure = event["closure"]
            builds.append(
                (
                    event["build_id"],
                    event["env"],
                    event["service"],
                    event["version"],
                    event["artifact"],
                    event["source_revision"],
                    to_micros(event["occurred_at"]),
                    to_micros(event["recorded_at"]),
                    fact.position,
                    len(closure),
                )
            )
            # Duplicates are dropped: the model does not refuse them, the key would.
            references += [
                (event["build_id"], ROOT, root) for root in sorted(set(event.get("roots", ())))
            ]
            found: dict[tuple[str, str, str], tuple[str, set[str | None], list[str]]] = {}
            for ord_, c in enumerate(closure):
                references += [
                    (event["build_id"], ord_, reference)
                    for reference in sorted(set(c.get("references", ())))
                ]
                who = package_identity(c)
                components.append(
                    (
                        event["build_id"],
                        ord_,
                        c["name"],
                        who.version,
                        who.output,
                        c.get("hash"),
                        c.get("store_path"),
                        c.get("purl"),
                        who.ecosystem,
                        who.match_name,
                    )
                )
                _, outputs, paths = found.setdefault(
                    (who.ecosystem, who.match_name, who.version), (c["name"], set(), [])
                )
                outputs.add(who.output)
                location = c.get("store_path") or c.get("purl")
                if location and (who.output in (None, "out") or not paths):
                    paths.insert(0, location)  # the out path stands for the package
            packages += [
                (event["build_id"], *key, name, outputs_text(outputs), paths[0] if paths else None)
                for key, (name, outputs, paths) in found.items()
            ]
        tx.insert("builds", BUILD_COLUMNS, builds)
        tx.insert("build_components", COMPONENT_COLUMNS, components)
        tx.insert("build_packages", PACKAGE_COLUMNS, packages)
        tx.insert("build_references", REFERENCE_COLUMNS, references)
