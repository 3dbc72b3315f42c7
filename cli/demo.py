"""``ledger demo``: fill a ledger with a realistic fleet and show what it holds."""

from __future__ import annotations

import click

from cli import output
from cli.session import Session, pass_session
from ledger.application import append_in_batches, numbered_batches
from ledger.demo import recorded_demo_fleet
from ledger.summary import summarise
from projections import queries


@click.command()
@click.option("--hosts", default=300, show_default=True, type=click.IntRange(2, 2_000))
@click.option("--services", default=30, show_default=True, type=click.IntRange(1, 500))
@click.option("--seed", default=0, show_default=True, help="Same seed, same fleet.")
@pass_session
def demo(session: Session, hosts: int, services: int, seed: int) -> None:
    """Create the ledger if needed, record a demo fleet in it, and summarise it.

    The fleet has production and staging, services with dependencies, builds whose
    closures hold several openssl, zlib and glibc versions, 20+ generations per
    environment with a failed activation and a rollback, drains and health reports;
    three production hosts' agents are offline for five hours and their facts arrive
    late (see `ledger where --known-at`). It is deterministic for a seed, so running it
    twice stores nothing new. It ends with the audit answer: which openssl versions are
    active on how many hosts.

    \b
    Example:
      ledger demo
      ledger --ledger /tmp/big.db demo --hosts 2000 --services 200 --seed 7
    """
    ledger = session.open(create=True)
    with output.progress_bar("recording demo fleet", None, unit="events") as advance:
        totals = append_in_batches(
            ledger,
            numbered_batches(recorded_demo_fleet(hosts=hosts, services=services, seed=seed)),
            source="demo",
            unit="events",
            on_batch=advance,
        )
    output.console().print(
        f"Recorded {totals.stored} new demo events ({totals.skipped} were already there)."
    )
    with output.progress_bar("verifying", ledger.count(), unit="events") as advance:
        result = ledger.verify(progress=advance)
    output.summary_view(summarise(ledger), result, ledger.location.display)

    views = session.open_views(ledger)
    with output.progress_bar("building views", views.lag(), unit="events") as advance:
        views.catch_up(advance)
    output.console().print(
        "\n[bold]Audit[/bold]: which openssl builds are active on which hosts "
        "(`ledger where openssl` lists every host)"
    )
    output.where_summary(queries.where_counts(views, "openssl"))
