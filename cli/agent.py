"""ledger agent: what a fleet host or CI job runs to report into the ledger via Kafka."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from cli import output
from cli.collect import log_to_stderr, stopper
from cli.hosts import host_report, host_report_options
from cli.params import default_actor, json_option
from cli.publish import bootstrap_option
from collectors.agent import read_events, send
from collectors.host_agent import (
    HostAgent,
    HttpReporter,
    KafkaReporter,
    Reporter,
    manifest_source,
    run_agent,
    token_from,
)

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


@agent.command("run")
@click.argument("host")
@click.option("--env", required=True, help="The host's environment (e.g. production).")
@click.option(
    "--manifest", "manifest_file", metavar="FILE",
    help="What is active: a JSON manifest file, read again at every report.",
)  # fmt: skip
@click.option(
    "--profiles", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
    help="What is active: a directory of Nix profiles, one per service "
    "(e.g. /nix/var/nix/profiles/per-service).",
)  # fmt: skip
@bootstrap_option("--kafka", required=False)
@click.option(
    "--topic", default="ledger.ingest", show_default=True,
    help="With --kafka: the topic the ledger's ingest workers read.",
)  # fmt: skip
@click.option("--http", "http_url", metavar="URL", help="A `ledger serve` to POST to.")
@click.option(
    "--token-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="With --http: a file holding a writer's token (or env LEDGER_TOKEN).",
)  # fmt: skip
@click.option(
    "--receipts", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
    help="With --http: ask for a receipt per report (an inclusion proof in a signed "
    "checkpoint) and append it to this JSON Lines file, e.g. in the agent's state "
    "directory: /var/lib/deploy-ledger-agent/receipts.jsonl.",
)  # fmt: skip
@click.option(
    "--every", type=click.FloatRange(0.1), default=300.0, show_default=True,
    help="Seconds between reports.",
)  # fmt: skip
@click.option("--actor", default=default_actor, show_default="user@host", help="Who reports.")
@click.option("--once", is_flag=True, help="Deliver one report, then stop.")
@click.option(
    "--timeout", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
    help="Seconds the ledger or the broker may take to answer.",
)  # fmt: skip
@click.pass_context
def run(
    ctx: click.Context,
    host: str,
    env: str,
    manifest_file: str | None,
    profiles: Path | None,
    bootstrap: str | None,
    topic: str,
    http_url: str | None,
    token_file: Path | None,
    receipts: Path | None,
    every: float,
    actor: str,
    once: bool,
    timeout: float,
) -> None:
    """Report what is active on HOST every --every seconds, over HTTP or Kafka.

    Run it on the host itself, as a service or from a timer (deploy/). What is active
    comes from a manifest file or from Nix profiles, one per service: each profile's
    name is the service, its store path the active build. A report that cannot be
    delivered is retried (the same event, so never stored twice); the agent never
    stops for an outage. Stop it with Ctrl-C or SIGTERM. With --receipts (over HTTP),
    each report's receipt — its inclusion proof against a checkpoint signed by the
    ledger, which `ledger verify-proof` checks with the ledger's public key — is
    appended to FILE.

    \b
    Example:
      LEDGER_TOKEN=… ledger agent run web-001 --env production \\
        --profiles /nix/var/nix/profiles/per-service --http https://ledger.internal \\
        --receipts /var/lib/deploy-ledger-agent/receipts.jsonl
      ledger agent run web-001 --env production --manifest active.json \\
        --kafka kafka1:9092 --every 60
    """
    if (bootstrap is None) == (http_url is None):
        raise click.UsageError("give either --http URL or --kafka BOOTSTRAP (not both)")
    source = manifest_source(host, manifest_file, profiles)
    reporter: Reporter
    if http_url is not None:
        token = token_from(os.environ.get("LEDGER_TOKEN"), token_file)
        reporter = HttpReporter(http_url, token, timeout, receipts)
    else:
        if receipts is not None:
            raise click.UsageError("--receipts needs --http: Kafka gives no receipts")
        assert bootstrap is not None
        reporter = KafkaReporter(bootstrap, topic, timeout)
    log_to_stderr(bool(ctx.find_root().params.get("debug")))
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stopper(stop))
    host_agent = HostAgent(host, env, actor, source, reporter)
    source()  # a bad manifest or profile is refused now, not at the first report
    run_agent(host_agent, every=every, stop=stop, once=once)
