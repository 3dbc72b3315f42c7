"""The ``ledger`` command: the root group, shared options and the one place errors end.

Every command lives in its own module and is imported only when it runs (``COMMANDS``):
``ledger --version``, ``ledger --help`` and a query never pay for Kafka, psycopg,
riemann-client, FastAPI or the agent unless they use them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import click

from cli.session import Session

# The same names as ledger.store's (tests/unit/test_startup.py keeps them so): importing
# ledger.store here would import psycopg on every start.
URL_VARIABLE = "LEDGER_URL"
DEFAULT_URL = "./ledger.db"
VIEWS_VARIABLE = "LEDGER_VIEWS_URL"


class LazyCommand(NamedTuple):
    """Where a command is defined (``module:attribute``) and its one-line help, which
    ``ledger --help`` shows without importing the module (a test keeps it in sync)."""

    target: str
    short_help: str


COMMANDS: Mapping[str, LazyCommand] = {
    "init": LazyCommand(
        "cli.store:init", "Create the ledger's tables (safe to run again: it changes nothing then)."
    ),
    "record": LazyCommand(
        "cli.record:record", "Record one event; prints the position it was stored at."
    ),
    "ingest": LazyCommand(
        "cli.ingest:ingest", "Append events from a JSON Lines FILE, or from Kafka with --kafka."
    ),
    "log": LazyCommand("cli.events:log", "Show recorded events in ledger order, filtered."),
    "verify": LazyCommand(
        "cli.store:verify",
        "Re-check the whole hash chain; exit 3 at the first row changed, deleted or inserted.",
    ),
    "keys": LazyCommand(
        "cli.keys:keys",
        "Make the Ed25519 key pair that signs checkpoints (the private key stays in a file).",
    ),
    "checkpoint": LazyCommand(
        "cli.proofs:checkpoint",
        "Sign the Merkle tree head of the ledger as a checkpoint, keep it and print it.",
    ),
    "prove": LazyCommand(
        "cli.proofs:prove",
        "Print an inclusion or consistency proof (RFC 9162) as JSON, with its checkpoint.",
    ),
    "verify-proof": LazyCommand(
        "cli.verify_proof:verify_proof",
        "Check a proof against signed checkpoints and a public key alone (no ledger opened).",
    ),
    "witness": LazyCommand(
        "cli.witness:witness",
        "Follow published checkpoints; alert when one is not consistent with the last seen.",
    ),
    "doctor": LazyCommand(
        "cli.doctor:doctor",
        "Check the store, views, Kafka, Riemann, Slack and API tokens; say what is wrong.",
    ),
    "schema": LazyCommand(
        "cli.events:schema",
        "Print the JSON Schema of the event form (generated from the models).",
    ),
    "demo": LazyCommand(
        "cli.demo:demo",
        "Create the ledger if needed, record a demo fleet in it, and summarise it.",
    ),
    "project": LazyCommand(
        "cli.projections:project",
        "Bring every view up to date with the ledger (and keep it so with --follow).",
    ),
    "projections": LazyCommand(
        "cli.projections:projections",
        "Inspect and rebuild the views (projections) derived from the ledger.",
    ),
    "topology": LazyCommand(
        "cli.fleet:topology",
        "Show what is active now: every env, host and service with its build.",
    ),
    "manifest": LazyCommand(
        "cli.fleet:manifest",
        "Show a host's manifest: its services, their builds, closures and dependencies.",
    ),
    "generations": LazyCommand(
        "cli.fleet:generations", "Show the generations of each environment, as a tree."
    ),
    "generation": LazyCommand(
        "cli.fleet:generation",
        "Show one generation: who planned it, why, its status and its desired manifest.",
    ),
    "tag": LazyCommand(
        "cli.fleet:tag", "Put labels on a generation (recorded as a generation_tagged event)."
    ),
    "diff": LazyCommand(
        "cli.fleet:diff",
        "Show what changed from generation A to generation B, down to the closures.",
    ),
    "where": LazyCommand(
        "cli.audit:where",
        "Show every host and service whose active closure holds package NAME.",
    ),
    "advisories": LazyCommand(
        "cli.advisories:advisories",
        "Import vulnerability advisories and look at what the ledger holds.",
    ),
    "exposure": LazyCommand(
        "cli.advisories:exposure",
        "Show which hosts advisory ID exposed, and from when to when.",
    ),
    "vulns": LazyCommand(
        "cli.advisories:vulns",
        "List every advisory affecting what runs, most severe first.",
    ),
    "why": LazyCommand(
        "cli.why:why",
        "Show why BUILD's closure holds PACKAGE: a shortest chain of dependencies to it.",
    ),
    "history": LazyCommand(
        "cli.audit:history",
        "Show everything that happened on a host, in time order, with who reported it.",
    ),
    "failures": LazyCommand("cli.audit:failures", "Show failures and anomalies, in ledger order."),
    "metrics": LazyCommand(
        "cli.fleet:metrics", "Show the four DORA delivery metrics per environment and service."
    ),
    "deploy": LazyCommand(
        "cli.deploy:deploy",
        "Plan a new generation from a manifest, record it and (with --execute) carry it out.",
    ),
    "rollback": LazyCommand(
        "cli.deploy:rollback",
        "Take an env back to generation N: a new generation with N's manifest.",
    ),
    "report-host": LazyCommand(
        "cli.hosts:report_host",
        "Record what an agent found active on HOST (a host_reported event).",
    ),
    "drift": LazyCommand(
        "cli.hosts:drift",
        "Show where hosts run something other than the current generation wants.",
    ),
    "reconstruct": LazyCommand(
        "cli.hosts:reconstruct",
        "Record a generation whose desired manifest is what the hosts of ENV report.",
    ),
    "replay": LazyCommand(
        "cli.replay:replay",
        "Show the topology (or a host's manifest) as it was, by replaying the stream.",
    ),
    "import": LazyCommand(
        "cli.importers:import_group",
        "Record builds from what Nix and SBOM tools print: one build per closure.",
    ),
    "collect": LazyCommand(
        "cli.collect:collect", "Follow the ledger: every event to Riemann, alerts to Slack."
    ),
    "publish": LazyCommand(
        "cli.publish:publish", "Publish every ledger event, in ledger order, to a Kafka topic."
    ),
    "restore": LazyCommand(
        "cli.restore:restore",
        "Rebuild an empty ledger (--ledger) from the topic `ledger publish` fills.",
    ),
    "agent": LazyCommand(
        "cli.agent:agent", "Report into the ledger through Kafka, from a fleet host or a CI job."
    ),
    "serve": LazyCommand("cli.serve:serve", "Serve the HTTP API and the live dashboard."),
    "token": LazyCommand("cli.serve:token", "Create, list and revoke the API's bearer tokens."),
    "alerts": LazyCommand(
        "cli.alerts:alerts",
        "Show the alerts the Slack collector tracks, and messages it could not deliver.",
    ),
    "silence": LazyCommand(
        "cli.alerts:silence", "Mute alerts during maintenance: add, list and expire silences."
    ),
}


def load(name: str) -> click.Command:
    """Import the module that defines command ``name`` and return the command."""
    module, _, attribute = COMMANDS[name].target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{COMMANDS[name].target} is not a click command")
    return command


class LedgerGroup(click.Group):
    """Imports a command's module only when that command runs (click's lazy-loading
    group), and turns every failure into one sentence and an exit code (tracebacks with
    --debug)."""

    _added: dict[str, click.Command]
    """Commands added with ``add_command``: none in ``ledger``, which has ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self._added})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            return load(cmd_name)
        return self._added.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name not in self.list_commands(ctx) and not (name[:1] == "-" or ctx.resilient_parsing):
            # click would suggest names from ``commands``, which imports every command.
            raise click.exceptions.NoSuchCommand(
                name, possibilities=self.list_commands(ctx), ctx=ctx
            )
        return super().resolve_command(ctx, args)

    @property
    def commands(self) -> dict[str, click.Command]:
        """Every command, imported: for code that walks them all (the docs tests).
        ``ledger`` itself goes through ``get_command``, which imports one."""
        for name in COMMANDS.keys() - self._added.keys():
            self._added[name] = load(name)
        return self._added

    @commands.setter
    def commands(self, value: Mapping[str, click.Command] | None) -> None:
        # click.Group.__init__ assigns the commands it is given (none here).
        self._added = dict(value or {})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """``Commands:`` in ``--help`` from the one-line helps in ``COMMANDS``, exactly as
        click writes them, without importing every command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                # A stand-in with the stored help shortens it as click would the real one.
                stand_in = click.Command(name, help=COMMANDS[name].short_help)
                rows.append((name, stand_in.get_short_help_str(limit)))
            elif not (command := self._added[name]).hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`ledger log | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            from cli.errors import explain
            from cli.output import error_console

            code, lines = explain(error)
            for line in lines:
                error_console().print(line, markup=False, highlight=False)
            ctx.exit(code)


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--ledger",
    "url",
    envvar=URL_VARIABLE,
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help=f"SQLite file or postgresql:// URL of the ledger (env: {URL_VARIABLE}).",
)
@click.option(
    "--views",
    "views_url",
    envvar=VIEWS_VARIABLE,
    metavar="URL",
    help="Keep the views (projections) in this database instead of the ledger's "
    f"(SQLite file or postgresql:// URL; env: {VIEWS_VARIABLE}).",
)
@click.option("--debug", is_flag=True, help="Show Python tracebacks on errors.")
@click.version_option(package_name="deploy-ledger")
@click.pass_context
def root(ctx: click.Context, url: str, views_url: str | None, debug: bool) -> None:
    """An append-only, tamper-evident ledger of everything deployed on a fleet.

    Every build, distribution, activation, drain and health event is appended to one
    hash-chained stream. Exit codes: 0 ok, 1 the store failed, 2 bad input,
    3 verification found tampering.

    \b
    Example:
      ledger demo                      # a 300-host demo fleet in ./ledger.db
      ledger where openssl --version-range '>=1.0.1,<1.0.2'
      ledger log --env production --kind activation_failed
      LEDGER_URL=postgresql://ledger@db/ledger ledger verify
    """
    ctx.obj = Session(url=url, debug=debug, views_url=views_url)


def main() -> None:
    root(prog_name="ledger")
