"""Every command is documented: help with an example, and a mention in README or docs/."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from cli.main import root

ROOT = Path(__file__).parents[2]
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in root.commands.items():
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
    return found


@pytest.mark.parametrize(("name", "command"), commands(), ids=[n for n, _ in commands()])
def test_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    assert command.help, f"ledger {name} has no help"
    assert "Example:" in command.help, f"ledger {name} --help shows no example"


@pytest.mark.parametrize("name", sorted(root.commands))
def test_command_is_in_the_readme_or_docs(name: str) -> None:
    assert f"ledger {name}" in DOCS, f"`ledger {name}` is not mentioned in README.md or docs/"
