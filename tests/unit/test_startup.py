"""`ledger` starts fast: importing the CLI, `--help`, `--version` and a mistyped command
import none of the heavy libraries, and `--help` still lists every command (issue 16).

The heavy imports are checked in a fresh interpreter: this test process has imported
everything long before."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import main
from cli.main import COMMANDS, root
from ledger.application import Ledger
from ledger.store import locate
from tests.story import Story, openssl

HEAVY = (
    "kafka",
    "psycopg",
    "psycopg_pool",
    "riemann_client",
    "slack_sdk",
    "fastapi",
    "uvicorn",
    "starlette",
    "pydantic",
    "eventsourcing",
    "univers",
    "rich",
    "sqlite3",
    "collectors",
    "api",
    "ledger",
    "projections",
)
"""What `ledger` must not import before a command needs it: the services' clients, the
web stack, the event models, the store, and every package of the project but ``cli``."""

COMMANDS_TODAY = {
    "init", "record", "ingest", "log", "verify", "doctor", "schema", "demo", "project",
    "projections", "topology", "manifest", "generations", "generation", "tag", "diff",
    "where", "history", "failures", "metrics", "deploy", "rollback", "report-host",
    "drift", "reconstruct", "replay", "import", "collect", "publish", "restore", "agent",
    "serve", "token", "alerts", "silence", "advisories", "exposure", "vulns",
    "why", "keys", "checkpoint", "prove", "verify-proof", "witness",
}  # fmt: skip


def imported_by(code: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter holds after running ``code``, and what it printed
    before them."""
    script = f"import sys\n{code}\nprint('\\0'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    printed, _, modules = done.stdout.rstrip("\n").rpartition("\n")
    return set(modules.split("\0")), printed


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def run_root(*args: str) -> str:
    """Code that runs ``ledger ARGS`` in-process, as the entry point would, and goes on."""
    return (
        "from cli.main import root\n"
        "try:\n"
        f"    root({list(args)!r}, prog_name='ledger')\n"
        "except SystemExit:\n"
        "    pass"
    )


def test_importing_the_cli_imports_nothing_heavy() -> None:
    modules, _ = imported_by("import cli.main")
    assert "cli.main" in modules, "the check must see the import"
    assert heavy(modules) == []


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    modules, printed = imported_by(run_root(*args))
    assert printed, "the command printed its answer"
    assert heavy(modules) == []


def test_a_query_imports_no_service_client_and_no_web_stack() -> None:
    """`ledger where` imports the ledger and the views it reads, nothing more."""
    modules, printed = imported_by(run_root("where", "--help"))
    assert "--version-range" in printed
    assert "cli.audit" in modules
    services = {"kafka", "riemann_client", "slack_sdk", "fastapi", "uvicorn", "starlette"}
    assert sorted(m for m in modules if m.split(".")[0] in services) == []
    assert sorted(m for m in modules if m.startswith(("collectors", "api", "cli.agent"))) == []


def test_help_in_a_fresh_interpreter_lists_every_command() -> None:
    _, printed = imported_by(run_root("--help"))
    assert listed(printed) == COMMANDS_TODAY


def test_a_mistyped_command_is_named_without_importing_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "wher"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "No such command 'wher'" in done.stderr
    assert "Did you mean 'where'?" in done.stderr
    modules, _ = imported_by(run_root("wher"))
    assert heavy(modules) == []


def listed(help_text: str) -> set[str]:
    """The command names under ``Commands:`` in ``--help``."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  (\S+)", section, re.MULTILINE)}


def test_help_lists_every_command_declared_and_every_command_there_is() -> None:
    result = CliRunner().invoke(root, ["--help"])
    assert result.exit_code == 0, result.output
    assert listed(result.output) == set(COMMANDS) == COMMANDS_TODAY


def test_help_shows_what_click_would_show_with_every_command_imported() -> None:
    """The one-line helps stored in COMMANDS are the commands' own."""
    with click.Context(root, info_name="ledger") as ctx:
        lazy = click.HelpFormatter(width=100)
        root.format_commands(ctx, lazy)
        imported = click.HelpFormatter(width=100)
        click.Group.format_commands(root, ctx, imported)
    assert lazy.getvalue() == imported.getvalue()
    for name, entry in COMMANDS.items():
        assert entry.short_help == main.load(name).get_short_help_str(limit=1_000), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_loads_the_command_of_its_name(name: str) -> None:
    command = main.load(name)
    assert command.name == name
    with click.Context(root, info_name="ledger") as ctx:
        assert root.get_command(ctx, name) is command


def test_commands_holds_every_command_for_code_that_walks_them() -> None:
    assert set(root.commands) == COMMANDS_TODAY
    assert all(isinstance(c, click.Command) for c in root.commands.values())


def test_the_ledger_url_option_names_the_stores_variable() -> None:
    from ledger import store

    assert (main.URL_VARIABLE, main.DEFAULT_URL) == (store.URL_VARIABLE, store.DEFAULT_URL)


def test_log_takes_exactly_the_kinds_the_event_models_define() -> None:
    """`ledger log --kind` lists the kinds from the ledger's topics, so that reading
    imports no event models: the two lists must be the same."""
    from cli.events import log
    from ledger.events import KINDS

    [kind] = [p for p in log.params if p.name == "kinds"]
    assert isinstance(kind.type, click.Choice)
    assert sorted(kind.type.choices) == sorted(KINDS)


QUERY_NEEDS_NOT = ("kafka", "psycopg", "psycopg_pool", "riemann_client", "slack_sdk",
                   "fastapi", "uvicorn", "starlette", "pydantic", "univers")  # fmt: skip
"""What a query on a SQLite ledger must not load: the other backend's driver, the
services' clients, the web stack, the event models (reading needs none) and univers
(Nix versions need none of it)."""


def test_a_query_on_sqlite_loads_no_driver_client_or_model(tmp_path: Path) -> None:
    """`ledger where` on a SQLite ledger holding a Nix closure: the answer needs the store
    and the views, nothing of PostgreSQL, Kafka, the web stack or pydantic."""
    url = str(tmp_path / "ledger.db")
    story = Story()
    build = story.build("api", "1.0", openssl("3.0.13"))
    story.activate("h1", "api", build, 1)
    ledger = Ledger(locate(url), create=True)
    story.record(ledger)
    ledger.close()
    modules, printed = imported_by(run_root("--ledger", url, "where", "openssl", "--summary"))
    assert "3.0.13" in printed, printed
    assert "projections.queries" in modules, "the check must see the query run"
    assert sorted(m for m in modules if m.split(".")[0] in QUERY_NEEDS_NOT) == []
