"""``ledger project`` and ``ledger projections status|rebuild``: running the views."""

from __future__ import annotations

import time
from dataclasses import asdict

import click
import psycopg
from eventsourcing.persistence import PersistenceError

from cli import output
from cli.session import Session, pass_session
from ledger.errors import StoreUnavailable

RETRY_SECONDS = 5.0


@click.command()
@click.option("--follow", is_flag=True, help="Keep running: wait for new events and apply them.")
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between looks for new events with --follow.",
)
@pass_session
def project(session: Session, follow: bool, interval: float) -> None:
    """Bring every view up to date with the ledger (and keep it so with --follow).

    Each batch of events is applied to the views and their tracking positions in one
    transaction, so stopping it at any moment loses or repeats nothing. With the views
    on SQLite, queries do this themselves first; with PostgreSQL, run it as a service.
    In follow mode a database outage is waited out, not fatal.

    \b
    Example:
      ledger project
      ledger --ledger postgresql://ledger@db/ledger project --follow
      ledger --views postgresql://views@dash/views project --follow --interval 2
    """
    views = session.open_views()
    if not follow:
        with output.progress_bar("projecting", views.lag(), unit="events") as advance:
            done = views.catch_up(advance)
        output.console().print(f"Views up to date: {done} new events applied.")
        return
    output.error_console().print(f"Following the ledger every {interval:g} s; Ctrl-C stops.")
    try:
        while True:
            try:
                if done := views.catch_up():
                    output.console().print(f"Applied {done} new events.")
            except (StoreUnavailable, PersistenceError, psycopg.Error) as error:
                output.error_console().print(f"[yellow]waiting[/yellow]: {error}")
                time.sleep(RETRY_SECONDS)
            time.sleep(interval)
    except KeyboardInterrupt:
        output.error_console().print("Stopped.")


@click.group()
def projections() -> None:
    """Inspect and rebuild the views (projections) derived from the ledger.

    \b
    Example:
      ledger projections status
      ledger projections rebuild placements
    """


@projections.command()
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_session
def status(session: Session, as_json: bool) -> None:
    """Show each view's position in the ledger and how far behind it is.

    \b
    Example:
      ledger projections status
      ledger projections status --json | jq '.[] | select(.lag > 0)'
    """
    rows = [{**asdict(s), "lag": s.lag} for s in session.open_views().status()]
    output.answer(
        rows,
        [
            ("name", "view"),
            ("position", "position"),
            ("head", "ledger head"),
            ("lag", "lag"),
            ("description", "answers"),
        ],
        as_json=as_json,
        empty="no views",
        style=lambda row: "yellow" if row["lag"] else None,
    )


@projections.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@pass_session
def rebuild(session: Session, names: tuple[str, ...]) -> None:
    """Drop views, reset their tracking and replay the whole ledger into them.

    Without NAME, every view is rebuilt. The views are builds, placements,
    generations, history, failures and reports (`ledger projections status` lists
    them).
    Queries during a rebuild see the view partly filled.

    \b
    Example:
      ledger projections rebuild
      ledger projections rebuild history failures
    """
    views = session.open_views()
    head, _ = views.ledger.head()
    started = time.perf_counter()
    with output.progress_bar("rebuilding", head, unit="events") as advance:
        replayed = views.rebuild(names, advance)
    seconds = time.perf_counter() - started
    output.console().print(
        f"Rebuilt {', '.join(names) or 'every view'}: {replayed} events replayed "
        f"in {seconds:.1f} s."
    )
