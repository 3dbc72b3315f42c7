"""ledger publish: follow the ledger and publish every event to a Kafka topic."""

from __future__ import annotations

import logging
import signal
import threading

import click

from cli.collect import checkpoint_maker, checkpoint_options, log_to_stderr, stopper
from cli.kafka_options import ack_timeout_option, bootstrap_option, published_topic_option
from cli.session import Session, pass_session
from collectors.publish import CheckpointPublisher, Publisher, PublishSettings, checkpoints_topic
from collectors.run import Collector, run

# bootstrap_option moved to cli.kafka_options; the commands that import it from here
# (restore, ingest, doctor, agent, witness) keep working.
__all__ = ["bootstrap_option", "publish"]


@click.command()
@bootstrap_option("--kafka")
@published_topic_option("The topic to publish to.")
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=1000, show_default=True,
    help="Events per batch: sent, acknowledged, then confirmed together.",
)  # fmt: skip
@ack_timeout_option("Seconds a batch may wait for the broker's acknowledgements before a retry.")
@click.option(
    "--poll-interval", type=click.FloatRange(0.01, 60), default=0.5, show_default=True,
    help="Seconds between looks at the ledger when there is nothing new.",
)  # fmt: skip
@checkpoint_options(envvars=True)
@click.option("--once", is_flag=True, help="Publish everything there is, then stop.")
@pass_session
def publish(
    session: Session,
    /,
    bootstrap: str,
    topic: str,
    batch: int,
    timeout: float,
    poll_interval: float,
    checkpoint_every: int | None,
    checkpoint_interval: float | None,
    once: bool,
) -> None:
    """Publish every ledger event, in ledger order, to a Kafka topic.

    Records are keyed by host (env for fleet-wide events), the value is the event's
    JSON form, the headers hold the ledger position, event id, kind and chain hash. The
    producer is idempotent with acks=all; the publisher's position (in the ledger's
    database) moves only after the broker acknowledged a batch, so a restart re-sends
    at most the unacknowledged tail: consumers drop duplicates by position. While the
    broker is down the publisher backs off and resumes afterwards. See docs/kafka.md.

    Checkpoints: the newest checkpoint kept in the ledger (by `ledger checkpoint`, or
    made here with --checkpoint-every N / --checkpoint-interval DURATION and the key
    LEDGER_CHECKPOINT_KEY names) goes to the topic TOPIC.checkpoints whenever it is
    larger than the last one published: key = its size, value = the signed note, each
    once acknowledged. Create that topic with ONE partition: witnesses (`ledger
    witness`) read the checkpoints in the order they were made.

    \b
    Example:
      ledger publish --kafka kafka1:9092,kafka2:9092 --topic ledger.events
      ledger --ledger postgresql://ledger@db/ledger publish --kafka kafka1:9092 --once
      LEDGER_CHECKPOINT_KEY=/etc/ledger/checkpoint.key ledger publish --kafka kafka1:9092 \\
        --checkpoint-every 1000 --checkpoint-interval 60s
    """
    log_to_stderr(session.debug)
    make_checkpoints = None
    if checkpoint_every is not None or checkpoint_interval is not None:
        make_checkpoints = checkpoint_maker(checkpoint_every, checkpoint_interval)
    ledger = session.open()
    settings = PublishSettings(bootstrap=bootstrap, topic=topic, batch=batch, timeout=timeout)
    publisher = Publisher(ledger, settings)
    collectors: list[Collector] = [publisher]
    if make_checkpoints is not None:
        collectors.append(make_checkpoints(ledger))
    collectors.append(CheckpointPublisher(ledger, settings))
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stopper(stop))
    log = logging.getLogger("ledger.collect")
    log.info(
        "publishing %s to %s (checkpoints to %s) on %s",
        ledger.location.display, topic, checkpoints_topic(topic), bootstrap,
    )  # fmt: skip
    try:
        if once:
            # Each round: the events first, then the checkpoints made and kept over them.
            while not stop.is_set():
                busy = [collector.step() for collector in collectors]
                if not any(busy):
                    break
        else:
            run(collectors, poll_interval=poll_interval, stop=stop)
    finally:
        for collector in collectors:
            collector.close()
        ledger.close()
    log.info("stopped")
