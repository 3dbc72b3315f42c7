"""ledger publish: follow the ledger and publish every event to a Kafka topic."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cli.collect import log_to_stderr, stopper
from cli.session import Session, pass_session
from collectors.publish import Publisher, PublishSettings
from collectors.run import run

F = TypeVar("F", bound=Callable[..., Any])


def bootstrap_option(flag: str, *, required: bool = True) -> Callable[[F], F]:
    """The Kafka bootstrap servers, as ``flag`` or LEDGER_KAFKA (publish, restore,
    ingest, agent)."""
    return click.option(
        flag,
        "bootstrap",
        required=required,
        envvar="LEDGER_KAFKA",
        metavar="HOST:PORT[,…]",
        help="Kafka bootstrap servers (env: LEDGER_KAFKA).",
    )


@click.command()
@bootstrap_option("--kafka")
@click.option(
    "--topic", default="ledger.events", show_default=True, help="The topic to publish to."
)
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=1000, show_default=True,
    help="Events per batch: sent, acknowledged, then confirmed together.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
    help="Seconds a batch may wait for the broker's acknowledgements before a retry.",
)  # fmt: skip
@click.option(
    "--poll-interval", type=click.FloatRange(0.01, 60), default=0.5, show_default=True,
    help="Seconds between looks at the ledger when there is nothing new.",
)  # fmt: skip
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
    once: bool,
) -> None:
    """Publish every ledger event, in ledger order, to a Kafka topic.

    Records are keyed by host (env for fleet-wide events), the value is the event's
    JSON form, the headers hold the ledger position, event id, kind and chain hash. The
    producer is idempotent with acks=all; the publisher's position (in the ledger's
    database) moves only after the broker acknowledged a batch, so a restart re-sends
    at most the unacknowledged tail: consumers drop duplicates by position. While the
    broker is down the publisher backs off and resumes afterwards. See docs/kafka.md.

    \b
    Example:
      ledger publish --kafka kafka1:9092,kafka2:9092 --topic ledger.events
      ledger --ledger postgresql://ledger@db/ledger publish --kafka kafka1:9092 --once
    """
    log_to_stderr(session.debug)
    ledger = session.open()
    settings = PublishSettings(bootstrap=bootstrap, topic=topic, batch=batch, timeout=timeout)
    publisher = Publisher(ledger, settings)
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stopper(stop))
    log = logging.getLogger("ledger.collect")
    log.info("publishing %s to %s on %s", ledger.location.display, topic, bootstrap)
    try:
        if once:
            while not stop.is_set() and publisher.step():
                pass
        else:
            run([publisher], poll_interval=poll_interval, stop=stop)
    finally:
        publisher.close()
        ledger.close()
    log.info("stopped")
