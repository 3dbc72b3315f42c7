"""ledger agent: what a fleet host or CI job runs to report into the ledger via Kafka."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from cli import output
from cli.fleet import json_option
from cli.hosts import host_report, host_report_options
from cli.publish import bootstrap_option
from collectors.agent import read_events, send

F = TypeVar("F", bound=Callable[..., Any])


def _kafka_options(command: F) -> F:
    """--kafka, --topic, --timeout: where the events go."""
    command = click.option(
        "--timeout", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
        help="Seconds the broker may take to acknowledge.",
    )(command)  # fmt: skip
    command = click.option(
        "--topic", default="ledger.ingest", show_default=True,
        help="The topic the ledger's ingest workers read.",
    )(command)  # fmt: skip
    return bootstrap_option("--kafka")(command)


@click.group()
def agent() -> None:
    """Report into the ledger through Kafka, from a fleet host or a CI job.

    The events go to the ingest topic, where `ledger ingest --kafka` workers append
    them. Each is checked here first (a bad one is refused with its line and field,
    and nothing is sent); a command returns once the broker acknowledged every event,
    and sending again is harmless (the workers skip event ids already stored).

    \b
    Example:
      ledger agent report web-001 --env production --manifest active.json \\
        --kafka kafka1:9092
      ledger agent send build-events.jsonl --kafka kafka1:9092
    """


@agent.command("report")
@host_report_options
@_kafka_options
@json_option
def report(
    host: str,
    manifest_file: str,
    env: str,
    actor: str,
    at_: str | None,
    bootstrap: str,
    topic: str,
    timeout: float,
    as_json: bool,
) -> None:
    """Send what is active on HOST (a host_reported event) to the ingest topic.

    The manifest file lists the services active on the host, as for
    `ledger report-host`: a JSON list (or an object with a "manifest" list) of entries
    with service, build_id and optionally artifact and depends_on.

    \b
    Example:
      ledger agent report web-001 --env production --manifest active.json \\
        --kafka kafka1:9092 --topic ledger.ingest
    """
    event = host_report(host, manifest_file, env, actor, at_)
    send([event], bootstrap=bootstrap, topic=topic, timeout=timeout)
    if as_json:
        output.print_json({"event_id": str(event.event_id), "topic": topic})
        return
    output.console().print(
        f"Sent the report of {host} ({len(event.manifest)} services active) to {topic}; "
        f"event {event.event_id}."
    )


@agent.command("send")
@click.argument("file", type=click.File("rb"))
@_kafka_options
@json_option
def send_file(file: IO[bytes], bootstrap: str, topic: str, timeout: float, as_json: bool) -> None:
    """Send the events of a JSON Lines FILE (- reads stdin) to the ingest topic.

    Every line is checked first; if any is invalid, each bad line is reported (line,
    field, reason) and nothing is sent. Events are keyed by host (env for builds and
    generations), so one host's events keep their order.

    \b
    Example:
      ledger agent send build-events.jsonl --kafka kafka1:9092
      ci-build --emit-events | ledger agent send - --kafka kafka1:9092
    """
    events = read_events(file)
    sent = send(events, bootstrap=bootstrap, topic=topic, timeout=timeout)
    if as_json:
        output.print_json({"sent": sent, "topic": topic})
        return
    output.console().print(f"Sent {sent} events to {topic}.")
