"""``ledger import …``: builds from Nix, CycloneDX and SPDX files, one build_recorded per
closure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from cli import output
from cli.params import default_actor, json_option, timestamp
from cli.session import Session, pass_session
from ledger.importers import cyclonedx, nix, spdx
from ledger.importers.base import (
    BuildOptions,
    ImportedBuild,
    ImportReport,
    SbomBuild,
    record,
    sbom_format,
)

F = TypeVar("F", bound=Callable[..., Any])

COLUMNS = [
    ("service", "service"),
    ("version", "version"),
    ("build", "build id"),
    ("paths", "paths"),
    ("status", "status"),
]
"""``build``, not ``build_id``: other tables cut a ``build_id`` to 12 characters
(``output.cell``), but an import is where an operator learns a build's id (for an SBOM
named by its content, ``sbom:`` and 64 hex digits), so its table shows all of it."""


def import_options(command: F) -> F:
    """The options every import shares: where the builds go and who records them."""
    for option in reversed(
        [
            click.option("--env", required=True, help="Environment the builds are for."),
            click.option(
                "--service",
                help="Service the builds are of (default: the name in the file).",
            ),
            click.option(
                "--actor",
                default=default_actor,
                show_default="user@host",
                help="Who records them.",
            ),
            json_option,
        ]
    ):
        command = option(command)
    return command


at_option = click.option(
    "--at",
    metavar="TIME",
    help="When the builds happened, for a file that does not say (default: now).",
)


def _record(
    session: Session,
    name: str,
    builds: Sequence[ImportedBuild],
    *,
    env: str,
    actor: str,
    at: datetime | None = None,
    skipped: Sequence[str] = (),
    as_json: bool,
) -> None:
    report = record(
        session.open(), name, builds, env=env, actor=actor, at=at, skipped_components=skipped
    )
    _print(report, as_json=as_json)


def _print(report: ImportReport, *, as_json: bool) -> None:
    if as_json:
        output.print_json(
            {
                "recorded": report.recorded,
                "already_recorded": report.already_recorded,
                "builds": [
                    {
                        "service": b.service,
                        "version": b.version,
                        "build_id": b.build_id,
                        "artifact": b.artifact,
                        "paths": b.paths,
                        "event_id": str(b.event_id),
                        "position": b.position,
                        "new": b.new,
                    }
                    for b in report.builds
                ],
                "skipped_components": report.skipped_components,
            }
        )
        return
    rows = [
        {
            "service": b.service,
            "version": b.version,
            "build": b.build_id,
            "paths": b.paths,
            "status": f"recorded at position {b.position}"
            if b.new
            else f"already recorded (position {b.position})",
        }
        for b in report.builds
    ]
    output.rows_table(rows, COLUMNS, empty="no builds")
    console = output.console()
    console.print(
        f"{_builds(report.recorded)} recorded, {report.already_recorded} already recorded.",
        markup=False,
    )
    if report.skipped_components:
        console.print(
            f"Skipped {len(report.skipped_components)} components without a purl: "
            + ", ".join(report.skipped_components),
            markup=False,
        )


def _name(file: IO[bytes]) -> str:
    """The file's name for messages; standard input's is <stdin>."""
    return str(getattr(file, "name", "<stdin>"))


def _builds(count: int) -> str:
    return f"{count} build" if count == 1 else f"{count} builds"


@click.group(name="import")
def import_group() -> None:
    """Record builds from what Nix and SBOM tools print: one build per closure.

    Each root store path (or SBOM) becomes a build_recorded event whose closure lists
    every store path (or component) it needs, with the dependency graph when the file
    has one (nix path-info references, CycloneDX dependencies, SPDX relationships),
    which `ledger why` follows. A bad or truncated file is refused with its position
    and nothing from it is recorded. Importing a file again records nothing new: its
    builds are reported as already recorded.

    \b
    Example:
      nix path-info --json --recursive ./result > closure.json
      ledger import nix-path-info closure.json --env production
      ledger import sbom image.spdx.json --env staging
    """


@import_group.command("nix-path-info")
@click.argument("file", type=click.File("rb"))
@import_options
@at_option
@pass_session
def nix_path_info(
    session: Session,
    file: IO[bytes],
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
    at: str | None,
) -> None:
    """Record one build per root of `nix path-info --json --recursive` output.

    Both forms Nix prints are read: a list (Nix before 2.19) and an object keyed by
    store path (2.19 and later). A root is a path no other path in the file refers to;
    its build id is its store path's hash, its version and service (unless --service)
    come from its name, its date from its registrationTime, and each component's hash
    is its narHash. FILE may be - for standard input.

    \b
    Example:
      nix path-info --json --recursive /run/current-system \\
        | ledger import nix-path-info - --env production --service web
    """
    when = timestamp(at, "--at")
    builds = nix.path_info_builds(_name(file), file.read(), service=service)
    _record(session, _name(file), builds, env=env, actor=actor, at=when, as_json=as_json)


@import_group.command("nix-store")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--root",
    metavar="PATH",
    help="The store path the closure is of: checked to be the last line, where nix-store "
    "prints the root (another line means the file holds several roots' closures, which "
    "cannot be told apart, so it is refused).",
)
@import_options
@at_option
@pass_session
def nix_store(
    session: Session,
    file: IO[bytes],
    root: str | None,
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
    at: str | None,
) -> None:
    """Record one build from `nix-store -qR PATH` output (one store path per line).

    Every line is in the closure, whose root is the last line. The output has no
    references and no content hashes: the output of `nix-store -qR A B` (two roots)
    cannot be cut into closures, and each component's hash is its store path's hash
    part; prefer nix-path-info when you can. FILE may be - for standard input.

    \b
    Example:
      nix-store -qR "$(readlink -f result)" > closure.txt
      ledger import nix-store closure.txt --env staging --at 2026-03-11T14:10:00Z
    """
    when = timestamp(at, "--at")
    builds = nix.store_path_builds(_name(file), file.read(), root=root, service=service)
    _record(session, _name(file), builds, env=env, actor=actor, at=when, as_json=as_json)


@import_group.command("nix-profile")
@click.argument("profile", type=click.Path(path_type=Path))
@click.option(
    "--path-info",
    type=click.File("rb"),
    help="`nix path-info --json --recursive` of the generations' store paths: their "
    "closures (default: each closure is the generation's store path alone).",
)
@import_options
@pass_session
def nix_profile(
    session: Session,
    profile: Path,
    path_info: IO[bytes] | None,
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Record one build per generation of a Nix profile (its PROFILE-N-link symlinks).

    A generation's build is the store path its link points to, dated by the link's
    own modification time (as nix-env --list-generations shows it); the service is
    the profile's name unless --service. Nix is not run and the links are not
    followed, so a copy of them works as well (tar keeps links and their dates).

    \b
    Example:
      nix path-info --json --recursive /nix/var/nix/profiles/api-*-link > gens.json
      ledger import nix-profile /nix/var/nix/profiles/api --path-info gens.json \\
        --env production
    """
    source = None if path_info is None else (_name(path_info), path_info.read())
    builds = nix.profile_builds(profile, service=service, path_info=source)
    _record(session, str(profile), builds, env=env, actor=actor, as_json=as_json)


def sbom_options(command: F) -> F:
    """What the command line may say about an SBOM's build, over what the SBOM says."""
    for option in reversed(
        [
            click.option(
                "--artifact",
                help="What was built: an image reference, a tarball URL (default: the "
                "SBOM's root component's purl, else name@version).",
            ),
            click.option(
                "--build-id",
                help="The build's content hash, e.g. an image digest sha256:… (default: "
                "the root component's SHA-256, or a sha256 digest in its purl or version, "
                "else sbom:… derived from the SBOM's components and dependencies, the same "
                "on every import of the same content).",
            ),
        ]
    ):
        command = option(command)
    return command


def _record_sbom(
    session: Session,
    file: IO[bytes],
    read: Callable[[str, bytes, BuildOptions], SbomBuild],
    *,
    artifact: str | None,
    build_id: str | None,
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
    at: str | None,
) -> None:
    when = timestamp(at, "--at")
    options = BuildOptions(service=service, artifact=artifact, build_id=build_id)
    sbom = read(_name(file), file.read(), options)
    _record(
        session,
        _name(file),
        [sbom.build],
        env=env,
        actor=actor,
        at=when,
        skipped=sbom.skipped,
        as_json=as_json,
    )


def _any_sbom(file: str, data: bytes, options: BuildOptions) -> SbomBuild:
    """The build of an SBOM in whichever format its content shows."""
    if sbom_format(file, data).startswith("spdx"):
        return spdx.sbom_build(file, data, options)
    return cyclonedx.sbom_build(file, data, options)


@import_group.command("cyclonedx")
@click.argument("file", type=click.File("rb"))
@sbom_options
@import_options
@at_option
@pass_session
def cyclonedx_sbom(
    session: Session,
    file: IO[bytes],
    artifact: str | None,
    build_id: str | None,
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
    at: str | None,
) -> None:
    """Record the build a CycloneDX SBOM (JSON or XML, 1.4-1.6) describes.

    The service and version come from metadata.component (unless --service), the
    date from metadata.timestamp (else --at, else now). Every component, nested ones
    too, is recorded with name, version, purl and its SHA-256 when the SBOM has one;
    components without a purl are skipped and listed. The dependencies section is
    kept as the build's graph (`ledger why`). Without a SHA-256 or digest on
    metadata.component (cyclonedx-py writes none) the build id is derived from the
    components and dependencies (sbom:…), so the same environment imports as the same
    build. FILE may be - for stdin.

    \b
    Example:
      cyclonedx-py environment --pyproject pyproject.toml --of XML -o sbom.xml .venv
      ledger import cyclonedx sbom.xml --env production
    """
    _record_sbom(
        session, file, cyclonedx.sbom_build, artifact=artifact, build_id=build_id, env=env,
        service=service, actor=actor, as_json=as_json, at=at,
    )  # fmt: skip


@import_group.command("spdx")
@click.argument("file", type=click.File("rb"))
@sbom_options
@import_options
@at_option
@pass_session
def spdx_sbom(
    session: Session,
    file: IO[bytes],
    artifact: str | None,
    build_id: str | None,
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
    at: str | None,
) -> None:
    """Record the build an SPDX 2.3 document (JSON or tag-value) describes.

    The build is the package the document DESCRIBES: its name is the service (unless
    --service), its versionInfo the version, its purl the artifact, its SHA256
    checksum (or an image digest as its version, else sbom:… derived from the
    packages and relationships) the build id; creationInfo.created dates it. Every
    package with a purl is recorded with name, version, purl and SHA256 checksum;
    packages without one are skipped and listed. DEPENDS_ON, DEPENDENCY_OF, CONTAINS
    (and the links) are kept as the graph (`ledger why`). FILE may be - for stdin.

    \b
    Example:
      syft registry.internal/api:2.4.1 -o spdx-json=api.spdx.json
      ledger import spdx api.spdx.json --env production
    """
    _record_sbom(
        session, file, spdx.sbom_build, artifact=artifact, build_id=build_id, env=env,
        service=service, actor=actor, as_json=as_json, at=at,
    )  # fmt: skip


@import_group.command("sbom")
@click.argument("file", type=click.File("rb"))
@sbom_options
@import_options
@at_option
@pass_session
def any_sbom(
    session: Session,
    file: IO[bytes],
    artifact: str | None,
    build_id: str | None,
    env: str,
    service: str | None,
    actor: str,
    as_json: bool,
    at: str | None,
) -> None:
    """Record the build an SBOM describes, its format told by its content.

    CycloneDX JSON or XML (as `ledger import cyclonedx`) and SPDX 2.3 JSON or
    tag-value (as `ledger import spdx`) are read; a file in none of them is refused,
    naming the formats tried. FILE may be - for stdin.

    \b
    Example:
      syft registry.internal/api:2.4.1 -o cyclonedx-xml | ledger import sbom - --env staging
      ledger import sbom api.spdx --env production --at 2026-03-11T14:10:00Z
    """
    _record_sbom(
        session, file, _any_sbom, artifact=artifact, build_id=build_id, env=env,
        service=service, actor=actor, as_json=as_json, at=at,
    )  # fmt: skip
