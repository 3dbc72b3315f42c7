"""The Kafka options commands share: the bootstrap servers, the published topic and
how long the broker may take to acknowledge.

Only click here: ``ledger checkpoint`` takes these options, and importing them must not
import kafka-python (or anything heavy) for the commands that never use Kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

BOOTSTRAP_VARIABLE = "LEDGER_KAFKA"
PUBLISHED_TOPIC = "ledger.events"
"""The default topic of the published replica (``ledger publish``)."""


def bootstrap_option(
    flag: str,
    *,
    required: bool = True,
    envvar: str | None = BOOTSTRAP_VARIABLE,
    help: str | None = None,
) -> Callable[[F], F]:
    """The Kafka bootstrap servers, as ``flag`` or ``envvar`` (publish, restore, ingest,
    agent, witness, doctor); ``envvar=None`` for a command that must use Kafka only when
    asked on its command line (``ledger checkpoint --kafka``)."""
    if help is None:
        help = "Kafka bootstrap servers" + (f" (env: {envvar})." if envvar else ".")
    return click.option(
        flag, "bootstrap", required=required, envvar=envvar, metavar="HOST:PORT[,…]", help=help
    )


def published_topic_option(help: str) -> Callable[[F], F]:
    """--topic: the published replica's topic (its checkpoints go to TOPIC.checkpoints)."""
    return click.option("--topic", default=PUBLISHED_TOPIC, show_default=True, help=help)


def ack_timeout_option(help: str) -> Callable[[F], F]:
    """--timeout: seconds a send may wait for the broker's acknowledgements."""
    return click.option(
        "--timeout", type=click.FloatRange(1, 3600), default=30.0, show_default=True, help=help
    )
