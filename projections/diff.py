"""``ledger diff A B``: what changed between two generations of an environment.

Placements are compared per (host, service): added, removed, or changed to another
build. For every changed placement the two builds' closures are compared by package
(name in its ecosystem, as ``where`` finds it) and version, outputs shown where they are
more than ``out``, the way ``nix store diff-closures`` does for one machine, and the
changes are summed up over the fleet: "openssl 1.0.1p → 1.0.2d in 4 services on 37
hosts", "openssl 3.0.13 → 3.0.13 [out, dev]" when a closure starts holding an output.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ledger.application import batched
from ledger.errors import InvalidInput
from projections.generations import manifest_entries
from projections.queries import Row, pick_env
from projections.runner import Views
from projections.versions import version_key
from projections.view import IN_LIST


def _entries(views: Views, env: str, number: int) -> dict[tuple[str, str], str]:
    with views.read() as tx:
        entries = manifest_entries(tx, env, number)
    if entries is None:
        raise InvalidInput(f"{env} has no generation {number}")
    return {(e["host"], e["service"]): e["build_id"] for e in entries}


Closure = dict[tuple[str, str], dict[str, str]]
"""A build's packages: (ecosystem, match name) → {version: outputs}."""


def _closures(
    views: Views, build_ids: set[str]
) -> tuple[dict[str, Closure], dict[tuple[str, str], str]]:
    """Per build: each package, the versions of it in the closure and their outputs;
    and each package's name as written."""
    closures: dict[str, Closure] = {b: defaultdict(dict) for b in build_ids}
    names: dict[tuple[str, str], str] = {}
    for batch in batched(sorted(build_ids), IN_LIST):
        for row in views.query(
            "SELECT build_id, ecosystem, match_name, name, version, outputs FROM build_packages "
            f"WHERE build_id IN ({', '.join('?' * len(batch))})",
            batch,
        ):
            package = (row["ecosystem"], row["match_name"])
            closures[row["build_id"]][package][row["version"]] = row["outputs"]
            names[package] = min(names.get(package, row["name"]), row["name"])
    return closures, names


EMPTY = "∅"


def _versions(ecosystem: str, versions: dict[str, str]) -> str:
    """``1.0.2d``, or ``3.0.13 [out, bin, dev]`` when a closure holds more than ``out``."""
    return (
        ", ".join(
            version if outputs in ("", "out") else f"{version} [{outputs.replace(',', ', ')}]"
            for version, outputs in sorted(
                versions.items(), key=lambda item: version_key(item[0], ecosystem)
            )
        )
        or EMPTY
    )


def diff(views: Views, a: int, b: int, env: str | None = None) -> Row:
    env = pick_env(views, env)
    old, new = _entries(views, env, a), _entries(views, env, b)
    services: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    changed_pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for key in sorted(old.keys() | new.keys()):
        host, service = key
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        services[(service, change, before or "", after or "")].add(host)
        if before is not None and after is not None:
            changed_pairs[(before, after)].append((host, service))

    closures, names = _closures(views, {build for pair in changed_pairs for build in pair})
    packages: dict[tuple[str, str, str], tuple[set[str], set[str]]] = {}
    for (before, after), placements in changed_pairs.items():
        was, now = closures[before], closures[after]
        for package in was.keys() | now.keys():
            if was.get(package, {}) == now.get(package, {}):
                continue
            ecosystem = package[0]
            moved = (
                names[package],
                _versions(ecosystem, was.get(package, {})),
                _versions(ecosystem, now.get(package, {})),
            )
            hosts, touched = packages.setdefault(moved, (set(), set()))
            hosts.update(host for host, _ in placements)
            touched.update(service for _, service in placements)

    return {
        "env": env,
        "from": a,
        "to": b,
        "services": [
            {
                "service": service,
                "change": change,
                "from_build": before or None,
                "to_build": after or None,
                "hosts": len(hosts),
            }
            for (service, change, before, after), hosts in sorted(services.items())
        ],
        "closure_changes": [
            {
                "name": name,
                "from": before,
                "to": after,
                "services": sorted(touched),
                "hosts": len(hosts),
            }
            for (name, before, after), (hosts, touched) in sorted(packages.items(), key=_importance)
        ],
    }


def _importance(item: tuple[tuple[str, str, str], tuple[set[str], set[str]]]) -> tuple[Any, ...]:
    """Version changes before additions and removals, the widest spread first."""
    (name, before, after), (hosts, _) = item
    return (EMPTY in (before, after), -len(hosts), name)


def describe_change(change: dict[str, Any]) -> str:
    """ "openssl 1.0.1p → 1.0.2d in 4 services on 37 hosts"."""
    services, hosts = len(change["services"]), change["hosts"]
    return (
        f"{change['name']} {change['from']} → {change['to']} in "
        f"{services} service{'s' * (services != 1)} on {hosts} host{'s' * (hosts != 1)}"
    )
