"""``ledger init`` and ``ledger verify``: creating the store and re-checking its chain."""

from __future__ import annotations

from dataclasses import asdict

import click

from cli import output
from cli.errors import TAMPERED
from cli.session import Session, pass_session


@click.command()
@pass_session
def init(session: Session) -> None:
    """Create the ledger's tables (safe to run again: it changes nothing then).

    This also installs the triggers that refuse UPDATE and DELETE (and, on
    PostgreSQL, TRUNCATE) of stored events.

    \b
    Example:
      ledger init
      ledger --ledger postgresql://ledger:secret@db.internal/ledger init
    """
    ledger = session.open(create=True)
    output.console().print(
        f"Ledger ready at {ledger.location.display} ({ledger.location.backend}): "
        f"{ledger.count()} events."
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_session
def verify(session: Session, as_json: bool) -> None:
    """Re-check the whole hash chain; exit 3 at the first row changed, deleted or inserted.

    Prints the head (last position and its hash): keep it somewhere else to be able
    to prove later that no event was appended or removed at the end.

    \b
    Example:
      ledger verify && echo "ledger intact"
      ledger verify --json | jq .head_hash
    """
    ledger = session.open()
    with output.progress_bar("verifying", ledger.count(), unit="events") as advance:
        result = ledger.verify(progress=advance)
    if as_json:
        output.print_json({**asdict(result), "intact": result.intact})
    else:
        output.verification(result, ledger.location.display)
    if not result.intact:
        raise click.exceptions.Exit(TAMPERED)
