"""ledger ingest: append events from a JSON Lines file, or from a Kafka topic as one of a
group of workers."""

from __future__ import annotations

import logging
import signal
import threading
from typing import IO

import click

from cli import output
from cli.collect import log_to_stderr, stopper
from cli.publish import bootstrap_option
from cli.session import Session, pass_session
from collectors.ingest import IngestSettings, IngestWorker, run_ingest
from ledger.importers.jsonl import ingest as ingest_jsonl

log = logging.getLogger("ledger.ingest")


@click.command()
@click.argument("file", type=click.File("rb"), required=False)
@bootstrap_option("--kafka", required=False)
@click.option(
    "--topic", default="ledger.ingest", show_default=True,
    help="With --kafka: the topic agents and CI publish events to.",
)  # fmt: skip
@click.option(
    "--group", default="deploy-ledger-ingest", show_default=True,
    help="With --kafka: the consumer group; workers in one group share the partitions.",
)  # fmt: skip
@click.option(
    "--dead-letter-topic", default="", show_default="TOPIC.dead-letter",
    help="With --kafka: where records that can never be stored go.",
)  # fmt: skip
@click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True,
    help="Events per transaction (with --kafka: records per poll).",
)  # fmt: skip
@click.option(
    "--max-poll-interval", type=click.FloatRange(1, 3600), default=300.0, show_default=True,
    help="With --kafka: seconds a worker may go without polling before the group "
    "gives its partitions to the others (Kafka's max.poll.interval.ms).",
)  # fmt: skip
@click.option(
    "--session-timeout", type=click.FloatRange(1, 3600), default=10.0, show_default=True,
    help="With --kafka: seconds without heartbeats before the group gives a dead "
    "worker's partitions to the others (Kafka's session.timeout.ms).",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
    help="With --kafka: seconds Kafka may take to answer.",
)  # fmt: skip
@click.option(
    "--once", is_flag=True,
    help="With --kafka: stop once the partitions it holds are read to their end.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_session
def ingest(
    session: Session,
    /,
    file: IO[bytes] | None,
    bootstrap: str | None,
    topic: str,
    group: str,
    dead_letter_topic: str,
    batch_size: int,
    max_poll_interval: float,
    session_timeout: float,
    timeout: float,
    once: bool,
    as_json: bool,
) -> None:
    """Append events from a JSON Lines FILE, or from Kafka with --kafka.

    From a file (one event per line; - reads stdin): the whole file is checked first;
    if any line is invalid, every bad line is reported (line, field, reason) and
    nothing is stored. Lines whose event_id is already stored are skipped and counted,
    so re-running an ingest is safe.

    With --kafka the command is one ingest worker: start as many as the topic has
    partitions to share, all with the same --group. Each record is one event (key:
    its host); valid ones are appended in partition order and offsets are committed
    only after the append, so redelivered records are skipped by event_id. Records
    that can never be stored go to the dead-letter topic with the error and their
    original topic, partition and offset; when the database is down the worker
    retries the same records and skips nothing. Stop with Ctrl-C or SIGTERM.
    See docs/kafka.md.

    \b
    Example:
      ledger ingest events.jsonl
      ledger log --json | LEDGER_URL=copy.db ledger ingest -
      ledger --ledger postgresql://ledger@db/ledger ingest --kafka kafka1:9092 \\
        --topic ledger.ingest --group ledger-ingest
    """
    source = click.get_current_context().get_parameter_source("bootstrap")
    if file is not None and source is click.core.ParameterSource.ENVIRONMENT:
        bootstrap = None  # LEDGER_KAFKA set for the services must not refuse a FILE
    if (file is None) == (bootstrap is None):
        raise click.UsageError("give either a FILE or --kafka BOOTSTRAP (not both)")
    if file is not None:
        _ingest_file(session, file, batch_size, as_json)
        return
    assert bootstrap is not None
    settings = IngestSettings(
        bootstrap=bootstrap,
        topic=topic,
        group=group,
        dead_letter_topic=dead_letter_topic,
        batch=batch_size,
        timeout=timeout,
        max_poll_interval=max_poll_interval,
        session_timeout=session_timeout,
    )
    _ingest_kafka(session, settings, once, as_json)


def _ingest_file(session: Session, file: IO[bytes], batch_size: int, as_json: bool) -> None:
    ledger = session.open()
    with output.progress_bars(["checking", "appending"], _size(file), unit="bytes") as advance:
        report = ingest_jsonl(ledger, file, source="file", batch_size=batch_size, progress=advance)
    if as_json:
        output.print_json(report.__dict__)
    else:
        output.ingest_report(report)


def _ingest_kafka(session: Session, settings: IngestSettings, once: bool, as_json: bool) -> None:
    log_to_stderr(session.debug)
    ledger = session.open()
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stopper(stop))
    try:
        worker = IngestWorker(ledger, settings)
    except BaseException:
        ledger.close()
        raise
    log.info(
        "ingesting %s (group %s) on %s into %s; dead letters to %s",
        settings.topic, settings.group, settings.bootstrap, ledger.location.display,
        settings.dead_letters,
    )  # fmt: skip
    try:
        run_ingest(worker, stop, once=once)
    finally:
        worker.close()
        ledger.close()
    totals = worker.totals
    log.info(
        "stopped: %d records, %d stored, %d already stored, %d dead-lettered",
        totals.records, totals.stored, totals.duplicates, totals.dead_lettered,
    )  # fmt: skip
    if as_json:
        output.print_json(totals.__dict__)


def _size(file: IO[bytes]) -> int | None:
    try:
        return file.seek(0, 2) if file.seekable() else None
    finally:
        if file.seekable():
            file.seek(0)
