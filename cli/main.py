"""The ``ledger`` command: the root group, shared options and the one place errors end."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli import (
    agent,
    audit,
    collect,
    demo,
    deploy,
    doctor,
    events,
    fleet,
    hosts,
    importers,
    ingest,
    projections,
    publish,
    replay,
    restore,
    serve,
    store,
)
from cli.alerts import alerts, silence
from cli.errors import explain
from cli.output import error_console
from cli.session import Session
from ledger.store import URL_VARIABLE, default_url

VIEWS_VARIABLE = "LEDGER_VIEWS_URL"


class LedgerGroup(click.Group):
    """Turns every failure into one sentence and an exit code (tracebacks with --debug)."""

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
            code, lines = explain(error)
            for line in lines:
                error_console().print(line, markup=False, highlight=False)
            ctx.exit(code)


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--ledger",
    "url",
    envvar=URL_VARIABLE,
    default=default_url,
    show_default="./ledger.db",
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


for command in (
    store.init,
    events.record,
    ingest.ingest,
    events.log,
    store.verify,
    doctor.doctor,
    events.schema,
    demo.demo,
    projections.project,
    projections.projections,
    fleet.topology,
    fleet.manifest,
    fleet.generations,
    fleet.generation,
    fleet.tag,
    fleet.diff,
    audit.where,
    audit.history,
    audit.failures,
    fleet.metrics,
    deploy.deploy,
    deploy.rollback,
    hosts.report_host,
    hosts.drift,
    hosts.reconstruct,
    replay.replay,
    importers.import_group,
    collect.collect,
    publish.publish,
    restore.restore,
    agent.agent,
    serve.serve,
    serve.token,
    alerts,
    silence,
):
    root.add_command(command)


def main() -> None:
    root(prog_name="ledger")
