"""Commands that read the fleet's state from the views: topology, manifest, generations,
generation, tag, diff and metrics."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import click

from cli import output
from cli.params import GENERATION, default_actor, env_option, json_option
from cli.session import Session, pass_session
from ledger.events import GenerationTagged
from projections import queries
from projections.diff import describe_change
from projections.diff import diff as diff_generations
from projections.metrics import metrics as delivery_metrics

TOPOLOGY_COLUMNS = [
    ("env", "env"),
    ("host", "host"),
    ("service", "service"),
    ("build_id", "build"),
    ("version", "version"),
    ("since", "since (UTC)"),
    ("generation", "gen"),
    ("health", "health"),
]


def _bad(row: dict[str, Any]) -> str | None:
    return "red" if row.get("bad") or str(row.get("health") or "").startswith("critical") else None


@click.command()
@env_option
@click.option("--host", help="Only this host.")
@click.option("--service", help="Only this service.")
@json_option
@pass_session
def topology(
    session: Session, env: str | None, host: str | None, service: str | None, as_json: bool
) -> None:
    """Show what is active now: every env, host and service with its build.

    For each placement: the active build (id, version, artifact), since when, the
    generation that put it there and the latest health report (of the service, else of
    the host; "stale" once its ttl has run out).

    \b
    Example:
      ledger topology --env production
      ledger topology --service api --json | jq -r '.[].host'
    """
    rows = [
        row
        for row in queries.topology(session.views(), env)
        if (host is None or row["host"] == host) and (service is None or row["service"] == service)
    ]
    output.answer(
        rows,
        TOPOLOGY_COLUMNS,
        as_json=as_json,
        empty="nothing is active",
        style=_bad,
    )


@click.command()
@click.argument("host")
@env_option
@click.option("--closure", is_flag=True, help="Also list every component of every closure.")
@json_option
@pass_session
def manifest(session: Session, host: str, env: str | None, closure: bool, as_json: bool) -> None:
    """Show a host's manifest: its services, their builds, closures and dependencies.

    This is what a Disnix profile manifest holds for the host, as the ledger knows it:
    each active service with its build and artifact, the services it depends on (from
    the generation that placed it) and its full closure (with --closure or --json).

    \b
    Example:
      ledger manifest web-001
      ledger manifest web-001 --closure | grep openssl
    """
    services = queries.manifest(session.views(), host, env)
    if as_json:
        output.print_json(services)
        return
    if not services:
        output.console().print(f"[dim]nothing is active on {output.escape(host)}[/dim]")
        return
    output.rows_table(
        [{**s, "closure": f"{len(s['closure'])} paths"} for s in services],
        [
            ("env", "env"),
            ("service", "service"),
            ("build_id", "build"),
            ("version", "version"),
            ("artifact", "artifact"),
            ("depends_on", "depends on"),
            ("closure", "closure"),
            ("generation", "gen"),
        ],
        empty="",
    )
    for service in services if closure else ():
        output.console().print(f"\n[bold]{output.escape(service['service'])}[/bold] closure:")
        output.rows_table(
            service["closure"],
            [("name", "name"), ("version", "version"), ("store_path", "store path")],
            empty="(empty closure)",
        )


@click.command()
@env_option
@json_option
@pass_session
def generations(session: Session, env: str | None, as_json: bool) -> None:
    """Show the generations of each environment, as a tree.

    Each generation has a parent; a rollback restores an older generation's manifest
    and marks what it undoes as rolled back (bad). `↳` marks a generation whose
    parent is not the one listed just before it: a branch of the tree.

    \b
    Example:
      ledger generations --env production
      ledger generations --json | jq '.[] | select(.bad)'
    """
    rows = queries.generations(session.views(), env)
    if as_json:
        output.print_json(rows)
        return
    previous: dict[str, int] = {}
    for row in rows:
        branch = row["parent"] is not None and previous.get(row["env"]) != row["parent"]
        row["gen"] = f"{'↳ ' if branch else ''}{row['number']}"
        row["why"] = f"{row['reason']} → {row['target']}" if row["target"] else row["reason"]
        previous[row["env"]] = row["number"]
    output.rows_table(
        rows,
        [
            ("env", "env"),
            ("gen", "gen"),
            ("parent", "parent"),
            ("why", "reason"),
            ("status", "status"),
            ("actor", "actor"),
            ("planned_at", "planned (UTC)"),
            ("placements", "placements"),
            ("tags", "tags"),
        ],
        empty="no generations recorded",
        style=_bad,
    )


@click.command()
@click.argument("number", type=GENERATION)
@env_option
@click.option("--placements", is_flag=True, help="List every placement of the manifest.")
@json_option
@pass_session
def generation(
    session: Session, number: int, env: str | None, placements: bool, as_json: bool
) -> None:
    """Show one generation: who planned it, why, its status and its desired manifest.

    --env is needed only when the ledger has several environments.

    \b
    Example:
      ledger generation 42 --env production
      ledger generation 42 --env production --json | jq '.manifest | length'
    """
    row = queries.generation(session.views(), number, env)
    if as_json:
        output.print_json(row)
        return
    show = output.console().print
    style = "red" if row["bad"] else "green" if row["status"] == "completed" else "yellow"
    env_name = output.escape(row["env"])
    show(f"[bold]{env_name} generation {row['number']}[/bold]: [{style}]{row['status']}")
    details = [
        ("parent", row["parent"]),
        ("reason", row["reason"] + (f" → {row['target']}" if row["target"] else "")),
        ("rolled back by", row["rolled_back_by"]),
        ("actor", row["actor"]),
        ("source revision", row["source_revision"]),
        ("tags", ", ".join(row["tags"])),
        ("planned", output.when(row["planned_at"])),
        ("finished", output.when(row["finished_at"])),
        ("failure", row["failure"]),
    ]
    for label, value in details:
        if value not in (None, ""):
            show(f"  {label:>15}: {output.escape(str(value))}")
    entries = row["manifest"]
    per_service = Counter((e["service"], e["build_id"]) for e in entries)
    output.rows_table(
        [
            {"service": service, "build_id": build, "hosts": hosts}
            for (service, build), hosts in sorted(per_service.items())
        ],
        [("service", "service"), ("build_id", "build"), ("hosts", "hosts")],
        empty="the manifest is empty",
    )
    if placements:
        output.rows_table(
            entries,
            [
                ("host", "host"),
                ("service", "service"),
                ("build_id", "build"),
                ("artifact", "artifact"),
                ("depends_on", "depends on"),
            ],
            empty="",
        )


@click.command()
@click.argument("number", type=GENERATION)
@click.argument("tags", nargs=-1, required=True)
@env_option
@click.option("--actor", default=default_actor, show_default="user@host", help="Who tags it.")
@pass_session
def tag(session: Session, number: int, tags: tuple[str, ...], env: str | None, actor: str) -> None:
    """Put labels on a generation (recorded as a generation_tagged event).

    \b
    Example:
      ledger tag 42 known-good --env production
      ledger tag 42 release-2026.03 audited --env production
    """
    views = session.views()
    env = queries.require_generation(views, number, env)
    event = GenerationTagged(
        event_id=uuid4(),
        env=env,
        occurred_at=datetime.now(UTC),
        actor=actor,
        number=number,
        tags=tags,
    )
    result = views.ledger.append([event], source="cli")[0]
    views.catch_up()  # so that the next query shows the tag, on any backend
    output.console().print(
        f"Tagged {output.escape(env)} generation {number} with {output.escape(', '.join(tags))} "
        f"(position {result.position})."
    )


@click.command()
@click.argument("a", type=GENERATION)
@click.argument("b", type=GENERATION)
@env_option
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="NAME",
    help="Only closure changes of this package (repeatable), e.g. openssl.",
)
@json_option
@pass_session
def diff(
    session: Session, a: int, b: int, env: str | None, packages: tuple[str, ...], as_json: bool
) -> None:
    """Show what changed from generation A to generation B, down to the closures.

    Placements added, removed and moved to another build, per service; then, like
    `nix store diff-closures` but fleet-wide, which packages changed version in the
    changed builds, in how many services on how many hosts.

    \b
    Example:
      ledger diff 19 20 --env production --package openssl --package zlib
      ledger diff 19 20 --env production --json | jq '.closure_changes[0]'
    """
    result = diff_generations(session.views(), a, b, env)
    if packages:
        result["closure_changes"] = [c for c in result["closure_changes"] if c["name"] in packages]
    if as_json:
        output.print_json(result)
        return
    show = output.console().print
    show(f"[bold]{output.escape(result['env'])}: generation {a} → {b}[/bold]")
    output.rows_table(
        result["services"],
        [
            ("service", "service"),
            ("change", "change"),
            ("from_build", "from build"),
            ("to_build", "to build"),
            ("hosts", "hosts"),
        ],
        empty="no placement changed",
    )
    if result["closure_changes"]:
        show("\n[bold]Closure changes[/bold]")
        for change in result["closure_changes"]:
            show(f"  {output.escape(describe_change(change))}")


@click.command()
@env_option
@json_option
@pass_session
def metrics(session: Session, env: str | None, as_json: bool) -> None:
    """Show the four DORA delivery metrics per environment and service.

    Deployment frequency (generations that activated a new build, per day), lead time
    (build recorded → first activation, median hours), change failure rate (share of
    the generations touching the service that failed or were rolled back) and time to
    restore (bad generation known → next good one completed, median hours).

    \b
    Example:
      ledger metrics --env production
      ledger metrics --json | jq '.[] | select(.change_failure_rate > 0.1)'
    """
    output.answer(
        delivery_metrics(session.views(), env),
        [
            ("env", "env"),
            ("service", "service"),
            ("deployments", "deploys"),
            ("deployments_per_day", "per day"),
            ("lead_time_hours", "lead time (h)"),
            ("change_failure_rate", "change failure rate"),
            ("time_to_restore_hours", "time to restore (h)"),
        ],
        as_json=as_json,
        empty="nothing deployed yet",
    )
