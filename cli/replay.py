"""``ledger replay``: the fleet as it was, from views replayed into a scratch store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from cli import output
from cli.fleet import TOPOLOGY_COLUMNS
from cli.params import env_option, json_option, timestamp
from cli.session import Session, pass_session
from projections import queries
from projections.replay import ReplayPoint, as_recorded_at, before_next_generation, replayed
from projections.store import to_micros


@click.command()
@click.option(
    "--until",
    "until_",
    metavar="TIME",
    help="As the ledger was at TIME: every event it had recorded by then.",
)
@click.option(
    "--to-generation",
    type=click.IntRange(min=1),
    metavar="N",
    help="As generation N left the fleet: the stream up to the planning of N+1.",
)
@env_option
@click.option("--host", help="That host's manifest instead of the whole topology.")
@json_option
@pass_session
def replay(
    session: Session,
    until_: str | None,
    to_generation: int | None,
    env: str | None,
    host: str | None,
    as_json: bool,
) -> None:
    """Show the topology (or a host's manifest) as it was, by replaying the stream.

    Every view is rebuilt from the start of the stream up to the point asked for, in a
    scratch store that is thrown away afterwards; the live views are not touched.
    --until TIME stops at what the ledger had recorded at TIME (a date, or ISO 8601
    with a timezone); --to-generation N just before generation N+1 of the environment
    was planned (the whole stream when N is the latest). `ledger where --at` answers
    "what was active then" from the live views without a replay; a replay shows every
    view as the ledger had it, generations and health included.

    \b
    Example:
      ledger replay --to-generation 12 --env production
      ledger replay --until 2026-01-13T04:00:00Z --host web-004
      ledger replay --to-generation 12 --env production --json | jq '.topology | length'
    """
    at = timestamp(until_, "--until")
    if at is not None and to_generation is not None:
        raise click.UsageError("give --until or --to-generation, not both")
    ledger = session.open()
    if to_generation is not None:
        point = before_next_generation(ledger, to_generation, env)
        env = point.env
    elif at is not None:
        point = as_recorded_at(ledger, at)
    else:
        raise click.UsageError("give --until TIME or --to-generation N")
    with (
        output.progress_bar("replaying", point.until, unit="events") as advance,
        replayed(ledger, point, advance) as views,
    ):
        answer: dict[str, Any] = {"point": {**_point(point), "replayed_events": views.applied}}
        if host:
            answer["manifest"] = queries.manifest(views, host, env, now=point.moment)
        else:
            answer["topology"] = queries.topology(views, env, now=point.moment)
        answer["generations"] = queries.generations(views, env)
    if as_json:
        output.print_json(answer)
    elif point.known_at is not None and not answer["point"]["replayed_events"]:
        first = next(ledger.facts(), None)
        since = (
            ""
            if first is None
            else f": its first event was recorded at {output.when(first.event['recorded_at'])}"
        )
        output.console().print(
            f"Nothing had been recorded by {output.when(_iso(point.known_at))}; the ledger "
            f"was empty then{since}."
        )
    else:
        _show(answer, point, host)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else queries.iso(to_micros(moment))


def _point(point: ReplayPoint) -> dict[str, Any]:
    return {
        "until_position": point.until,
        "known_at": _iso(point.known_at),
        "env": point.env,
        "generation": point.generation,
        "moment": _iso(point.moment),
    }


def _show(answer: dict[str, Any], point: ReplayPoint, host: str | None) -> None:
    show = output.console().print
    if point.generation is not None:
        show(
            f"[bold]{output.escape(point.env or '')} as generation {point.generation} "
            "left it[/bold] "
            f"(replayed {answer['point']['replayed_events']} events: positions 1 to "
            f"{point.until})"
        )
    else:
        show(
            f"[bold]As recorded at {output.when(_iso(point.known_at))}[/bold] "
            f"(replayed the {answer['point']['replayed_events']} events recorded by then, "
            f"of positions 1 to {point.until})"
        )
    if host:
        output.rows_table(
            [{**s, "closure": f"{len(s['closure'])} paths"} for s in answer["manifest"]],
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
            empty=f"nothing was active on {host}",
        )
    else:
        output.rows_table(answer["topology"], TOPOLOGY_COLUMNS, empty="nothing was active")
    show("\n[bold]Generations then[/bold]")
    output.rows_table(
        answer["generations"],
        [
            ("env", "env"),
            ("number", "gen"),
            ("parent", "parent"),
            ("reason", "reason"),
            ("status", "status"),
            ("planned_at", "planned (UTC)"),
            ("placements", "placements"),
        ],
        empty="no generation had been planned",
        style=lambda row: "red" if row["bad"] else None,
    )
