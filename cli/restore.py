"""ledger restore: rebuild an empty ledger from its published Kafka topic."""

from __future__ import annotations

import click

from cli import output
from cli.errors import TAMPERED
from cli.publish import bootstrap_option
from cli.session import Session, pass_session
from collectors.restore import (
    RestoreMismatch,
    RestoreSettings,
    TopicReader,
    check_chain,
    ensure_empty,
    write,
)


@click.command()
@bootstrap_option("--from-kafka")
@click.option(
    "--topic", default="ledger.events", show_default=True,
    help="The topic `ledger publish` wrote to.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
    help="Seconds the broker may take to answer or to deliver more records.",
)  # fmt: skip
@pass_session
def restore(session: Session, /, bootstrap: str, topic: str, timeout: float) -> None:
    """Rebuild an empty ledger (--ledger) from the topic `ledger publish` fills.

    Creates the ledger's tables when there are none (as `ledger init` does) and
    refuses a ledger that already holds events (exit 2) before reading anything.
    Reads every partition from its beginning to its end, drops re-sent
    duplicates and orders the events by their position header; a missing position
    or an invalid record is refused (exit 2) with nothing stored. The chain is
    recomputed and each record's hash header checked before writing (a mismatch
    exits 3, naming the position); the events keep their original recorded_at, so
    the restored ledger has the original hashes, and it is verified at the end.

    \b
    Example:
      ledger --ledger postgresql://ledger@db2/ledger restore \\
        --from-kafka kafka1:9092,kafka2:9092 --topic ledger.events
    """
    ledger = session.open(create=True)
    try:
        ensure_empty(ledger)
        settings = RestoreSettings(bootstrap=bootstrap, topic=topic, timeout=timeout)
        reader = TopicReader(settings)
        try:
            with output.progress_bar("reading", reader.size, unit="records") as advance:
                records = reader.read(advance)
        finally:
            reader.close()
        try:
            with output.progress_bar("checking", len(records), unit="events") as advance:
                check_chain(records, advance)
            with output.progress_bars(
                ["appending", "verifying"], len(records), unit="events"
            ) as progress:
                head_hash = write(ledger, records, batch=settings.batch, progress=progress)
        except RestoreMismatch as error:
            output.error_console().print(f"Error: {error}.", markup=False, highlight=False)
            raise click.exceptions.Exit(TAMPERED) from None
        output.console().print(
            f"Restored {len(records)} events into {ledger.location.display} from topic "
            f"{topic} ({reader.records} records, {reader.records - len(records)} "
            f"duplicates dropped); the chain verifies.\n"
            f"Head: position {len(records)}, hash {head_hash}",
            markup=False,
        )
    finally:
        ledger.close()
