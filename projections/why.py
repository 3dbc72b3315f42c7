"""``ledger why BUILD PACKAGE``: why a build's closure holds a package, as ``nix
why-depends`` answers it: a shortest chain of references from the build's roots to the
package, one chain per version of it the closure holds.

The graph is the one the build was recorded with (``build_references``, see
``projections.builds``). A breadth-first search from the roots, visiting references in
closure order, makes the answer a function of the stream alone: the same chain every
time, on both backends, before and after a rebuild.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ledger.ecosystems import lookup_name, parse_purl
from ledger.errors import InvalidInput, UnknownName
from projections.builds import ROOT
from projections.queries import Row, nearest
from projections.runner import Views
from projections.store import Tx
from projections.versions import version_key


class NoGraph(InvalidInput):
    """The build was recorded without dependency information: no chain can be shown."""


def resolve_build(tx: Tx, build: str) -> Row:
    """The build named by its id or a unique prefix of it (as printed in tables)."""
    rows = tx.query(
        "SELECT build_id, env, service, version, artifact, components FROM builds "
        "WHERE build_id = ?",
        [build],
    )
    if rows:
        return rows[0]
    if build:
        pattern = build.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = tx.query(
            "SELECT build_id, env, service, version, artifact, components FROM builds "
            "WHERE build_id LIKE ? ESCAPE '\\' ORDER BY build_id LIMIT 6",
            [pattern],
        )
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise UnknownName(
            f"no build {build!r} in the ledger: give a build id, or the start of one, as "
            "`ledger import` and `ledger topology` print them"
        )
    shown = ", ".join(f"{r['build_id']} ({r['service']} {r['version']})" for r in rows[:5])
    more = ", …" if len(rows) > 5 else ""
    raise InvalidInput(f"{build!r} is the start of several builds' ids: {shown}{more}; give more")


def _wanted(package: str) -> tuple[tuple[str, str] | None, str | None]:
    """The (ecosystem, match name) a purl names and its version, or (None, None) for a
    bare name (looked up in every ecosystem by its rules, as ``where`` does)."""
    if not package.startswith("pkg:"):
        return None, None
    ref = parse_purl(package)
    return (ref.ecosystem, ref.match_name), ref.version


def _label(component: Row) -> str:
    """``openssl-3.0.13``, as Nix names it; ``openssl-3.0.13 (dev)`` for an output."""
    name = (
        f"{component['name']}-{component['version']}" if component["version"] else component["name"]
    )
    output = component["output"]
    return name if output in (None, "out") else f"{name} ({output})"


def why(views: Views, build: str, package: str) -> Row:
    """Per version of ``package`` in the build's closure, a shortest chain from a root
    to it (``path`` is None when no root leads to it: the file listed it but did not
    say what needs it). Refuses an unknown build, a package the closure does not hold,
    and a build recorded without a graph (``NoGraph``)."""
    wanted, wanted_version = _wanted(package)
    with views.read() as tx:
        found = resolve_build(tx, build)
        build_id = found["build_id"]
        components = tx.query(
            "SELECT ord, name, version, output, store_path, purl, ecosystem, match_name "
            "FROM build_components WHERE build_id = ? ORDER BY ord",
            [build_id],
        )
        edges = tx.tuples(
            "SELECT ord, reference FROM build_references WHERE build_id = ? "
            "ORDER BY ord, reference",
            [build_id],
        )
    described = f"build {build_id} ({found['service']} {found['version']})".replace(" )", ")")
    targets = [
        c
        for c in components
        if (
            (c["ecosystem"], c["match_name"]) == wanted and wanted_version in (None, c["version"])
            if wanted is not None
            else lookup_name(c["ecosystem"], package) == c["match_name"]
        )
    ]
    if not targets:
        raise UnknownName(
            f"the closure of {described} does not hold {package}"
            f"{nearest(package, {c['name'] for c in components})}"
        )
    graph: dict[int, list[int]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
    if ROOT not in graph:
        versions = ", ".join(sorted({t["version"] for t in targets}, key=version_key))
        raise NoGraph(
            f"{described} was recorded without dependency information (as nix-store -qR "
            "output and SBOMs without dependencies are), so nothing says why its closure "
            f"holds {package} ({versions}); builds imported from nix path-info --json "
            "--recursive, CycloneDX dependencies or SPDX relationships keep their graph"
        )
    parents = _search(graph)
    by_version: dict[str, list[Row]] = {}
    for target in targets:
        by_version.setdefault(target["version"], []).append(target)
    paths = []
    for version in sorted(by_version, key=lambda v: version_key(v, by_version[v][0]["ecosystem"])):
        reached = [t for t in by_version[version] if t["ord"] in parents]
        # The nearest component of this version (its outputs are one version).
        nearest_target = min(
            reached, key=lambda t: (_depth(parents, t["ord"]), t["ord"]), default=None
        )
        chain = None if nearest_target is None else _chain(parents, nearest_target["ord"])
        paths.append(
            {
                "version": version,
                "path": None if chain is None else [_step(components[i]) for i in chain],
            }
        )
    return {
        "build_id": build_id,
        "env": found["env"],
        "service": found["service"],
        "build_version": found["version"],
        "artifact": found["artifact"],
        "package": package,
        "paths": paths,
    }


def _search(graph: dict[int, list[int]]) -> dict[int, int]:
    """Breadth-first from the roots: each reached component's parent on a shortest
    chain (``ROOT`` for a root)."""
    parents: dict[int, int] = {}
    queue: deque[int] = deque()
    for root in graph[ROOT]:
        if root not in parents:
            parents[root] = ROOT
            queue.append(root)
    while queue:
        current = queue.popleft()
        for reference in graph.get(current, ()):
            if reference not in parents:
                parents[reference] = current
                queue.append(reference)
    return parents


def _depth(parents: dict[int, int], ord_: int) -> int:
    depth = 0
    while ord_ != ROOT:
        ord_ = parents[ord_]
        depth += 1
    return depth


def _chain(parents: dict[int, int], ord_: int) -> list[int]:
    chain = []
    while ord_ != ROOT:
        chain.append(ord_)
        ord_ = parents[ord_]
    return chain[::-1]


def _step(component: Row) -> dict[str, Any]:
    return {
        "name": component["name"],
        "version": component["version"],
        "output": component["output"],
        "label": _label(component),
        "store_path": component["store_path"],
        "purl": component["purl"],
    }
