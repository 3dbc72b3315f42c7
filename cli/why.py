"""``ledger why BUILD PACKAGE``: the chain of dependencies that brings a package into a
build's closure (like ``nix why-depends``)."""

from __future__ import annotations

from typing import Any

import click

from cli import output
from cli.params import json_option
from cli.session import Session, pass_session
from projections import why as why_query


@click.command()
@click.argument("build")
@click.argument("package")
@json_option
@pass_session
def why(session: Session, build: str, package: str, as_json: bool) -> None:
    """Show why BUILD's closure holds PACKAGE: a shortest chain of dependencies to it.

    BUILD is a build id or the start of one (as `ledger topology`, `ledger where` and
    `ledger import` print them). PACKAGE is a name, found by its ecosystem's rules as
    `ledger where` finds it, or a purl (pkg:apk/alpine/libssl3). For each version of
    the package the closure holds, the chain runs from what the build refers to
    directly down to the package, one component a line, as nix why-depends shows it.
    The graph is the one recorded with the build: nix path-info references, CycloneDX
    dependencies, SPDX relationships. An unknown build, a package its closure does not
    hold, or a build recorded without dependency information (nix-store -qR output, an
    SBOM without dependencies) is an error (exit 2). --json gives each chain as a list.

    \b
    Example:
      ledger why 9l96c3rl openssl
      ledger why sha256:b2af04b4 pkg:apk/alpine/libssl3 --json
    """
    answer = why_query.why(session.views(), build, package)
    if as_json:
        output.print_json(answer)
        return
    _print_chains(answer)


def _print_chains(answer: dict[str, Any]) -> None:
    """What the answer is about on the first line, then one tree per version, whose
    single branch is the chain (nix why-depends draws it so)."""
    console = output.console()
    head = f"{answer['service']} {answer['build_version']}".rstrip()
    versions = " and ".join(found["version"] or "(no version)" for found in answer["paths"])
    console.print(
        f"{head} (build {answer['build_id']}, {answer['env']}) holds {answer['package']} "
        f"{versions}:",
        markup=False,
    )
    for found in answer["paths"]:
        console.print()
        if found["path"] is None:
            console.print(
                f"{answer['package']} {found['version']}: in the closure, but nothing "
                "recorded with the build leads to it from its roots",
                markup=False,
            )
            continue
        for depth, step in enumerate(found["path"]):
            indent = "    " * (depth - 1) + "└───" if depth else ""
            console.print(f"{indent}{step['label']}", markup=False)
