"""Builds from Nix: ``nix path-info --json``, ``nix-store -qR`` output, profile generations.

Every store path becomes a closure component with the package name, version and
output it is a path of (``ledger.nixnames``): from its deriver where ``nix path-info``
gives one, else from its name. ``nix path-info`` also gives each path's references:
they are kept as the build's dependency graph (the artifact's own path is its root),
what ``ledger why`` follows; ``nix-store -qR`` and a profile without ``--path-info``
give none, and are recorded without a graph. Nothing here runs Nix: the importers read
what Nix printed or left on disk, so they work on a machine without Nix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.errors import InvalidInput
from ledger.events import Component
from ledger.importers.base import (
    ImportedBuild,
    ImportRefused,
    component,
    decode,
    load_json,
    with_graph,
)
from ledger.importers.storepath import (
    HASH_LENGTH,
    STORE_DIR,
    NotAStorePath,
    StorePath,
    parse_store_path,
)
from ledger.nixnames import derivation_name, split_output

NAR_HASH_NAMES = {"hash": "narHash", "store_path": "path"}


@dataclass(frozen=True)
class Package:
    """What a store path is a path of: package name, version and output."""

    name: str
    version: str
    output: str


def package(
    file: str, position: str, store_path: StorePath, deriver_name: str | None = None
) -> Package:
    """The package of a store path, from its deriver's name when known, else its own name.

    A path whose name does not fit its deriver's is refused at ``position.deriver``.
    """
    path_name = store_path.path[len(STORE_DIR) + HASH_LENGTH + 2 :]
    try:
        return Package(*split_output(path_name, deriver_name=deriver_name))
    except InvalidInput as error:
        raise ImportRefused(file, f"{position}.deriver", str(error)) from None


@dataclass(frozen=True)
class PathInfo:
    """One store path of ``nix path-info --json`` output."""

    store_path: StorePath
    nar_hash: str
    references: tuple[str, ...]
    registered_at: datetime | None
    position: str
    """Where it is in the file, as a JSON path: ``[3]`` or ``["/nix/store/…"]``."""
    package: Package
    """From the path's deriver when the file gives it, else from the path's name."""


# --- nix path-info --json ------------------------------------------------------------


def read_path_info(file: str, data: bytes) -> dict[str, PathInfo]:
    """Every store path of the file, by path, in either form Nix prints.

    Nix before 2.19 prints a list of objects with a ``path`` field; Nix 2.19 and later
    an object keyed by store path whose values are those objects without ``path`` (and
    ``null`` for a path that is not valid in the store).
    """
    document = load_json(file, data)
    entries: Iterable[tuple[str, Any, str | None]]
    if isinstance(document, list):
        entries = ((f"[{i}]", entry, None) for i, entry in enumerate(document))
    elif isinstance(document, dict):
        entries = ((f"[{json.dumps(k)}]", entry, k) for k, entry in document.items())
    else:
        raise ImportRefused(
            file,
            "",
            "expected nix path-info --json output: a list of objects (Nix before 2.19) "
            "or an object keyed by store path (Nix 2.19 and later)",
        )
    infos: dict[str, PathInfo] = {}
    for position, entry, key in entries:
        info = _path_info(file, position, entry, key)
        earlier = infos.get(info.store_path.path)
        if earlier is not None:
            raise ImportRefused(
                file,
                position,
                f"{info.store_path.path} is listed twice (also at {earlier.position})",
            )
        infos[info.store_path.path] = info
    if not infos:
        raise ImportRefused(file, "", "it holds no store path")
    return infos


def _path_info(file: str, position: str, entry: Any, key: str | None) -> PathInfo:
    if entry is None and key is not None:
        raise ImportRefused(
            file, position, f"{key} is not valid in the store nix path-info read (null)"
        )
    if not isinstance(entry, dict):
        raise ImportRefused(file, position, "expected an object")
    path = entry.get("path") if key is None else key
    if not isinstance(path, str):
        raise ImportRefused(file, f"{position}.path", "missing, or not a string")
    store_path = _store_path(file, position if key is not None else f"{position}.path", path)
    nar_hash = entry.get("narHash")
    if not isinstance(nar_hash, str):
        raise ImportRefused(file, f"{position}.narHash", "missing, or not a string")
    references = entry.get("references")
    if not isinstance(references, list):
        raise ImportRefused(file, f"{position}.references", "missing, or not a list")
    for index, reference in enumerate(references):
        if not isinstance(reference, str):
            raise ImportRefused(file, f"{position}.references[{index}]", "not a string")
    return PathInfo(
        store_path,
        nar_hash,
        tuple(references),
        _registration_time(file, position, entry.get("registrationTime")),
        position,
        package(file, position, store_path, _deriver_name(file, position, entry.get("deriver"))),
    )


def _deriver_name(file: str, position: str, deriver: Any) -> str | None:
    """The name of the derivation that built the path, if the file says (Nix omits
    ``deriver`` for a path no derivation built, and newer Nix may print ``null``)."""
    if deriver is None:
        return None
    if not isinstance(deriver, str):
        raise ImportRefused(file, f"{position}.deriver", "not a string")
    try:
        return derivation_name(deriver)
    except InvalidInput as error:
        raise ImportRefused(file, f"{position}.deriver", str(error)) from None


def _store_path(file: str, position: str, text: str) -> StorePath:
    try:
        return parse_store_path(text)
    except NotAStorePath as error:
        raise ImportRefused(file, position, str(error)) from None


def _registration_time(file: str, position: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**33:
        raise ImportRefused(
            file, f"{position}.registrationTime", "expected seconds since 1970 (an integer)"
        )
    return datetime.fromtimestamp(value, UTC)


def closure(infos: Mapping[str, PathInfo], root: str) -> list[PathInfo]:
    """``root`` and everything it references, transitively, sorted by store path."""
    seen = {root}
    stack = [root]
    while stack:
        for reference in infos[stack.pop()].references:
            if reference not in seen:
                seen.add(reference)
                stack.append(reference)
    return [infos[path] for path in sorted(seen)]


def check_complete(file: str, infos: Mapping[str, PathInfo]) -> None:
    """Refuse a file whose paths reference paths it does not hold (a cut closure).

    References are checked to be store paths only here: one that is in the file is.
    """
    for info in infos.values():
        for index, reference in enumerate(info.references):
            if reference in infos:
                continue
            _store_path(file, f"{info.position}.references[{index}]", reference)
            raise ImportRefused(
                file,
                info.position,
                f"truncated closure: {info.store_path.path} references {reference}, "
                "which is not in the file (use nix path-info --json --recursive)",
            )


def roots(infos: Mapping[str, PathInfo]) -> list[PathInfo]:
    """The paths no other path of the file references (a self-reference does not count)."""
    referenced = {
        reference
        for path, info in infos.items()
        for reference in info.references
        if reference != path
    }
    return [info for path, info in infos.items() if path not in referenced]


def _components(
    file: str, infos: Sequence[PathInfo], root: str, cache: dict[str, Component]
) -> tuple[tuple[Component, ...], tuple[int, ...]]:
    """The components of ``infos`` (a closure) with each path's references, and the
    root (the path ``root``, which the closure is of), as closure indexes."""
    for info in infos:
        path = info.store_path
        if path.path not in cache:
            cache[path.path] = component(
                file,
                info.position,
                {
                    "name": info.package.name,
                    "version": info.package.version,
                    "output": info.package.output,
                    "store_path": path.path,
                    "hash": info.nar_hash,
                },
                NAR_HASH_NAMES,
            )
    return with_graph(
        [(info.store_path.path, cache[info.store_path.path]) for info in infos],
        {info.store_path.path: info.references for info in infos},
        [root],
    )


def path_info_builds(file: str, data: bytes, *, service: str | None) -> list[ImportedBuild]:
    """One build per root of a ``nix path-info --json --recursive`` file.

    The build is named by the root's store path hash, named and versioned as its
    package (without the output), dated by its registrationTime, and its closure is
    every path the root needs, with narHash.
    """
    infos = read_path_info(file, data)
    check_complete(file, infos)
    found = roots(infos)
    if not found:
        raise ImportRefused(file, "", "no root: every store path is referenced by another")
    cache: dict[str, Component] = {}
    builds = []
    for root in found:
        path = root.store_path.path
        components, root_indexes = _components(file, closure(infos, path), path, cache)
        builds.append(
            ImportedBuild(
                position=root.position,
                build_id=root.store_path.hash,
                service=service or root.package.name,
                version=root.package.version,
                artifact=path,
                closure=components,
                occurred_at=root.registered_at,
                roots=root_indexes,
            )
        )
    return builds


# --- nix-store -qR -------------------------------------------------------------------


def store_path_builds(
    file: str, data: bytes, *, root: str | None, service: str | None
) -> list[ImportedBuild]:
    """One build from ``nix-store -qR PATH`` output: every line is in its closure.

    The root is the last line: nix-store prints a closure dependencies first, so the
    path it was asked about comes last. A ``root`` that is another line is refused: the
    file is then the closure of several roots (``nix-store -qR A B`` prints the union,
    one root last) or of another path, and without references nothing tells which lines
    are the closure of ``root`` alone. The output has no narHash, so a component's hash
    is its store path's hash part (which names its inputs); with no deriver either, a
    path's output is recognised by its name (``ledger.nixnames.split_output``).
    """
    text = decode(file, data)
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        raise ImportRefused(
            file,
            f"line {len(lines)}",
            "the file does not end with a newline, so its last line may be cut short "
            "(nix-store ends every line with one): the file looks truncated",
        )
    paths: dict[str, tuple[int, StorePath]] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        store_path = _store_path(file, f"line {number}", line)
        if line in paths:
            raise ImportRefused(
                file, f"line {number}", f"{line} is listed twice (also on line {paths[line][0]})"
            )
        paths[line] = (number, store_path)
    if not paths:
        raise ImportRefused(file, "", "it holds no store path")
    last = next(reversed(paths))
    if root is None:
        root = last
    elif root not in paths:
        raise ImportRefused(file, "", f"--root {root} is not one of its store paths")
    elif root != last:
        raise ImportRefused(
            file,
            f"line {paths[root][0]}",
            f"--root {root} is not the last line ({last}), where nix-store -qR prints the "
            "path it was asked about: the file looks like the closure of several roots "
            "(nix-store -qR A B prints both closures as one list) or of another path, and "
            f"the closure of {root} alone cannot be cut from a list without references; "
            f"give nix-store -qR {root} alone, or nix path-info --json --recursive {root}",
        )
    packages = {path: package(file, f"line {number}", path) for number, path in paths.values()}
    components = tuple(
        component(
            file,
            f"line {number}",
            {
                "name": packages[path].name,
                "version": packages[path].version,
                "output": packages[path].output,
                "store_path": path.path,
                "hash": path.hash,
            },
        )
        for number, path in sorted(paths.values(), key=lambda item: item[1].path)
    )
    number, root_path = paths[root]
    return [
        ImportedBuild(
            position=f"line {number}",
            build_id=root_path.hash,
            service=service or packages[root_path].name,
            version=packages[root_path].version,
            artifact=root_path.path,
            closure=components,
        )
    ]


# --- profile generations -------------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    number: int
    link: Path
    target: StorePath
    created_at: datetime


def generations(profile: Path) -> list[Generation]:
    """The ``<profile>-<N>-link`` symlinks beside a profile, oldest first.

    A generation's date is its link's own mtime (lstat), as ``nix-env
    --list-generations`` shows it. The links' targets are read, never followed.
    """
    pattern = re.compile(rf"{re.escape(profile.name)}-([0-9]+)-link")
    try:
        names = os.listdir(profile.parent)
    except OSError as error:
        raise ImportRefused(
            str(profile), "", f"cannot read its folder ({error.strerror})"
        ) from None
    found = []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        link = profile.parent / name
        try:
            target = os.readlink(link)
            mtime = link.lstat().st_mtime
        except OSError as error:
            raise ImportRefused(
                str(link), "", f"not a generation link ({error.strerror})"
            ) from None
        try:
            store_path = parse_store_path(target)
        except NotAStorePath as error:
            raise ImportRefused(str(link), "", str(error)) from None
        found.append(
            Generation(int(match.group(1)), link, store_path, datetime.fromtimestamp(mtime, UTC))
        )
    if not found:
        # ~/.nix-profile is a link to the profile that has the generations beside it.
        hint = f" (it links to {os.readlink(profile)}: give that)" if profile.is_symlink() else ""
        raise ImportRefused(
            str(profile),
            "",
            f"no generations: there is no {profile.name}-N-link beside it in "
            f"{profile.parent}{hint}",
        )
    return sorted(found, key=lambda generation: generation.number)


def profile_builds(
    profile: Path, *, service: str | None, path_info: tuple[str, bytes] | None
) -> list[ImportedBuild]:
    """One build per generation of a profile, dated by the generation's link.

    With ``path_info`` (the name and bytes of ``nix path-info --json --recursive`` of
    the generations) each closure is the generation's closure from it; without, the
    closure is the generation's own store path alone, its hash the hash part. A build
    that comes back in a later generation (a rollback) is recorded once, at its first.
    """
    infos: dict[str, PathInfo] | None = None
    info_file = ""
    if path_info is not None:
        info_file, data = path_info
        infos = read_path_info(info_file, data)
        check_complete(info_file, infos)
    cache: dict[str, Component] = {}
    builds: dict[str, ImportedBuild] = {}
    for generation in generations(profile):
        target = generation.target
        if target.hash in builds:
            continue
        position = f"generation {generation.number}"
        if infos is None:
            found = package(str(generation.link), position, target)
            fields = {
                "name": found.name,
                "version": found.version,
                "output": found.output,
                "store_path": target.path,
                "hash": target.hash,
            }
            components: tuple[Component, ...] = (component(str(generation.link), position, fields),)
            root_indexes: tuple[int, ...] = ()
        elif target.path in infos:
            found = infos[target.path].package
            components, root_indexes = _components(
                info_file, closure(infos, target.path), target.path, cache
            )
        else:
            raise ImportRefused(
                info_file,
                "",
                f"{position} ({target.path}) is not in it: give nix path-info --json "
                "--recursive of every generation's store path",
            )
        builds[target.hash] = ImportedBuild(
            position=position,
            build_id=target.hash,
            service=service or profile.name,
            version=found.version,
            artifact=target.path,
            closure=components,
            occurred_at=generation.created_at,
            roots=root_indexes,
        )
    return list(builds.values())
