"""Commands about what the hosts themselves report: report-host, drift and reconstruct."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

import click

from cli import output
from cli.params import default_actor, env_option, json_option, timestamp
from cli.session import Session, pass_session
from ledger.events import HostReported
from ledger.manifests import read_manifest
from projections import drift as drift_query
from projections.reconstruct import ADDED, CHANGED, REMOVED, Reconstruction, reconstruction
from projections.runner import Views

F = TypeVar("F", bound=Callable[..., Any])


def host_report_options(command: F) -> F:
    """HOST, --manifest, --env, --actor, --at: what a host report is made of."""
    for option in reversed(
        [
            click.argument("host"),
            click.option(
                "--manifest",
                "manifest_file",
                required=True,
                metavar="FILE",
                help="What the agent found active: a JSON manifest file (- reads stdin).",
            ),
            click.option("--env", required=True, help="The host's environment (e.g. production)."),
            click.option(
                "--actor", default=default_actor, show_default="user@host", help="Who reports it."
            ),
            click.option(
                "--at",
                "at_",
                metavar="TIME",
                help="When the host was inspected (ISO 8601 with a timezone; default: now).",
            ),
        ]
    ):
        command = option(command)
    return command


def host_report(
    host: str, manifest_file: str, env: str, actor: str, at_: str | None
) -> HostReported:
    """The host_reported event of the options of ``host_report_options``."""
    return HostReported(
        event_id=uuid4(),
        env=env,
        occurred_at=timestamp(at_, "--at") or datetime.now(UTC),
        actor=actor,
        host=host,
        manifest=read_manifest(manifest_file, host=host),
    )


@click.command("report-host")
@host_report_options
@json_option
@pass_session
def report_host(
    session: Session,
    host: str,
    manifest_file: str,
    env: str,
    actor: str,
    at_: str | None,
    as_json: bool,
) -> None:
    """Record what an agent found active on HOST (a host_reported event).

    FILE lists the services active on the host, one entry each (once) with service,
    build_id and optionally artifact and depends_on (host may be left out). It is a
    JSON list, or an object with a "manifest" list; an empty list says that nothing
    runs there. A bad file is refused with the entry and field at fault, and nothing is
    recorded. `ledger drift` compares the reports with the desired manifest.

    \b
    Example:
      ledger report-host web-001 --env production --manifest web-001.json
      agent-inventory | ledger report-host web-001 --env production --manifest - \\
        --actor agent@web-001
    """
    event = host_report(host, manifest_file, env, actor, at_)
    views = session.open_views()
    result = views.ledger.append([event], source="cli")[0]
    views.catch_up()  # so that the next query shows the report, on any backend
    if as_json:
        output.print_json(
            {"event_id": str(result.event_id), "position": result.position, "new": result.new}
        )
        return
    output.console().print(
        f"Recorded the report of {output.escape(host)} in {output.escape(env)}: "
        f"{_count(len(event.manifest), 'service')} active (position {result.position})."
    )


def _problem_style(row: dict[str, Any]) -> str:
    return "yellow" if row["problem"] == drift_query.NO_REPORT else "red"


def _drift_line(summary: dict[str, Any]) -> str:
    env, number = output.escape(summary["env"]), summary["generation"]
    if number is None:
        return (
            f"{env}: no generation yet; {_count(summary['reported'], 'host')} reported "
            f"(`ledger reconstruct --env {env}` records one from their reports)"
        )
    if summary["drifted"] == summary["unreported"] == 0:
        matching = summary["matching"]
        verb = "matches" if matching == 1 else "match"
        return f"{env}: no drift: {_count(matching, 'host')} {verb} generation {number}"
    line = (
        f"{env}: {summary['drifted']} of {summary['hosts']} hosts drifted from generation "
        f"{number}, {summary['unreported']} never reported, {summary['matching']} match"
    )
    if summary["stale"]:
        line += f"; {_count(summary['stale'], 'report')} older than generation {number}"
    return line


@click.command()
@env_option
@click.option("--host", help="Only this host.")
@json_option
@pass_session
def drift(session: Session, env: str | None, host: str | None, as_json: bool) -> None:
    """Show where hosts run something other than the current generation wants.

    Each host's latest report is compared with the desired manifest of its
    environment's current (highest-numbered) generation. Problems: "different build"
    (another build of a desired service), "missing" (a desired service the host did not
    report), "unexpected" (a reported service not desired there) and "no report" (a
    host of the manifest that never reported). "stale" marks a report made before the
    generation was planned.

    \b
    Example:
      ledger drift --env production
      ledger drift --json | jq '.problems[] | select(.problem == "missing")'
    """
    report = drift_query.drift(session.views(), env, host)
    if as_json:
        output.print_json(asdict(report))
        return
    if report.problems:
        # Build ids shown short, as in `ledger diff`: desired is "from", reported "to".
        output.rows_table(
            [
                {
                    **row,
                    "from_build": row["desired_build"],
                    "to_build": row["reported_build"],
                    "reported_at": output.when(row["reported_at"]),
                }
                for row in report.problems
            ],
            [
                ("env", "env"),
                ("host", "host"),
                ("service", "service"),
                ("problem", "problem"),
                ("from_build", "desired"),
                ("to_build", "reported"),
                ("reported_at", "reported (UTC)"),
                ("stale", "stale"),
            ],
            empty="",
            style=_problem_style,
        )
    lines = [_drift_line(summary) for summary in report.envs if summary["hosts"]]
    for line in lines:
        output.console().print(line)
    if not lines:
        about = f" about {host}" if host else ""
        output.console().print(
            f"[dim]nothing to compare: no generation and no host report{output.escape(about)}[/dim]"
        )


def _current_views(session: Session) -> Views:
    """The views brought up to date on any backend: a command that records what it
    derives from them must not work from views that lag."""
    views = session.open_views()
    with output.progress_bar("updating views", views.lag(), unit="events") as advance:
        views.catch_up(advance)
    return views


@click.command()
@click.option("--env", required=True, help="The environment to reconstruct (e.g. production).")
@click.option("--dry-run", is_flag=True, help="Show the generation; record nothing.")
@click.option("--actor", default=default_actor, show_default="user@host", help="Who reconstructs.")
@json_option
@pass_session
def reconstruct(session: Session, env: str, dry_run: bool, actor: str, as_json: bool) -> None:
    """Record a generation whose desired manifest is what the hosts of ENV report.

    For when the coordinator's own state was lost, as disnix-reconstruct rebuilds it
    from the targets' profiles: the latest report of every host of the environment
    makes up the manifest of a new generation (reason reconstruct, parent the current
    generation), so deployments continue from what really runs. Shows how it differs
    from the current generation, and which of its hosts never reported (their
    placements are left out).

    \b
    Example:
      ledger reconstruct --env production --dry-run
      ledger reconstruct --env production --actor alice@sre
    """
    views = _current_views(session)
    plan = reconstruction(views, env)
    position = None
    if not dry_run:
        event = plan.event(actor, datetime.now(UTC))
        position = views.ledger.append([event], source="cli")[0].position
        views.catch_up()
    if as_json:
        output.print_json(
            {
                "env": plan.env,
                "number": plan.number,
                "parent": plan.parent,
                "recorded": position is not None,
                "position": position,
                "hosts": plan.reported_hosts,
                "placements": len(plan.manifest),
                "changes": plan.changes,
                "unreported": plan.unreported,
                "stale": plan.stale,
                "manifest": [e.model_dump(mode="json") for e in plan.manifest],
            }
        )
        return
    _show_reconstruction(plan, position)


def _show_reconstruction(plan: Reconstruction, position: int | None) -> None:
    show = output.console().print
    parent = "no parent" if plan.parent is None else f"parent {plan.parent}"
    what = (
        f"{output.escape(plan.env)} generation {plan.number} (reconstruct, {parent}): "
        f"{_count(len(plan.manifest), 'placement')} on {_count(plan.reported_hosts, 'host')}"
    )
    if position is None:
        show(f"Dry run, nothing recorded: would record {what}.")
    else:
        show(f"Recorded {what} at position {position}.")
    if plan.parent is None:
        show(f"{output.escape(plan.env)} had no generation: every placement is new.")
    elif not plan.changes:
        show(f"Same placements as generation {plan.parent}.")
    else:
        counts = Counter(r["change"] for r in plan.changes)
        show(
            f"Compared with generation {plan.parent}: {counts[ADDED]} added, "
            f"{counts[REMOVED]} removed, {counts[CHANGED]} changed."
        )
        output.rows_table(
            plan.changes,
            [
                ("host", "host"),
                ("service", "service"),
                ("change", "change"),
                ("from_build", "from build"),
                ("to_build", "to build"),
            ],
            empty="",
        )
    warn = output.error_console().print
    if plan.unreported:
        warn(
            f"[yellow]warning[/yellow]: {_count(len(plan.unreported), 'host')} of generation "
            f"{plan.parent} never reported, so their placements are left out: "
            f"{output.escape(_some(plan.unreported))}"
        )
    if plan.stale:
        warn(
            f"[yellow]warning[/yellow]: {_count(len(plan.stale), 'host')} last reported before "
            f"generation {plan.parent} was planned: {output.escape(_some(plan.stale))}"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _some(hosts: list[str], shown: int = 10) -> str:
    more = f" and {len(hosts) - shown} more" if len(hosts) > shown else ""
    return ", ".join(hosts[:shown]) + more
