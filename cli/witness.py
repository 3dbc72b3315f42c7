"""ledger witness: follow the published checkpoints, alert on a split view."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from cli import output
from cli.collect import log_to_stderr, riemann_options, stopper
from cli.errors import FAILURE, TAMPERED
from cli.publish import bootstrap_option
from cli.session import Session, pass_session
from collectors.kafka_client import KafkaUnavailable
from collectors.riemann import sink_for
from collectors.run import run
from collectors.settings import load_settings
from collectors.webhook import SlackWebhook
from collectors.witness import (
    AlertSinks,
    AlertUndelivered,
    ApiProofs,
    ProofSource,
    ReplicaProofs,
    Verdict,
    Witness,
    WitnessSettings,
)
from ledger.application import Ledger
from ledger.checkpoint import KeySettings, load_verifiers
from ledger.errors import InvalidInput

STATE_VARIABLE = "LEDGER_WITNESS_STATE"


@click.command()
@bootstrap_option("--kafka")
@click.option(
    "--topic", default="ledger.events.checkpoints", show_default=True,
    help="The checkpoints topic `ledger publish` fills (its --topic, then .checkpoints).",
)  # fmt: skip
@click.option(
    "--key",
    "vkey",
    envvar="LEDGER_CHECKPOINT_VKEY",
    metavar="VKEY|FILE",
    help="The ledger's verifier key (`ledger keys show`), or a file holding it "
    "(env: LEDGER_CHECKPOINT_VKEY).",
)
@click.option(
    "--api",
    metavar="URL",
    envvar="LEDGER_API_URL",
    help="The ledger's HTTP API, asked for consistency proofs (env: LEDGER_API_URL).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="With --api: a file holding a reader's token (or env LEDGER_TOKEN).",
)
@click.option(
    "--replica",
    is_flag=True,
    help="Check against the replica --ledger names (made by `ledger restore`) instead of "
    "the API: its own Merkle tree, built from the published events.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=STATE_VARIABLE,
    default=Path("witness-state.json"),
    show_default=True,
    help=f"The witness's state file: the last good checkpoint, the offset, undelivered "
    f"alerts (env: {STATE_VARIABLE}).",
)
@riemann_options("Send alerts to Riemann (env: LEDGER_RIEMANN).")
@click.option(
    "--slack-webhook",
    metavar="URL",
    help="Slack incoming-webhook URL for alerts (a secret: prefer LEDGER_SLACK_WEBHOOK).",
)
@click.option(
    "--poll-interval", type=click.FloatRange(0.01, 60), default=1.0, show_default=True,
    help="Seconds between looks at the topic when there is nothing new.",
)  # fmt: skip
@click.option(
    "--once",
    is_flag=True,
    help="Check every checkpoint on the topic now, deliver the alerts, then stop "
    "(exit 3 when a split view or a bad signature was found).",
)
@click.option("--json", "as_json", is_flag=True, help="With --once: the verdicts as JSON.")
@pass_session
def witness(
    session: Session,
    /,
    bootstrap: str,
    topic: str,
    vkey: str | None,
    api: str | None,
    token_file: Path | None,
    replica: bool,
    state: Path,
    poll_interval: float,
    once: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Follow published checkpoints; alert when one is not consistent with the last seen.

    Reads the checkpoints `ledger publish` puts on Kafka, refuses any whose signature
    does not verify with the ledger's public key, and checks each against the last good
    one: a larger size must come with a consistency proof (RFC 9162) that verifies
    against both signed roots, from the ledger's API (--api, a reader's token) or from
    a replica made by `ledger restore` (--replica); the same size must have the same
    root. A smaller size, another root for a size, or a proof that fails is a SPLIT
    VIEW: the ledger showed two histories. It is alerted to Riemann (state critical)
    and Slack, and kept in the state file until both took it, so a restart loses no
    alert and re-checks nothing. The first checkpoint seen is trusted as the start.

    \b
    Example:
      LEDGER_CHECKPOINT_VKEY="$(cat ledger.vkey)" LEDGER_TOKEN=… ledger witness \\
        --kafka kafka1:9092 --api https://ledger.example.com \\
        --riemann riemann.internal:5555 --state /var/lib/ledger/witness.json
      ledger --ledger replica.db witness --kafka kafka1:9092 --replica --key ledger.vkey --once
    """
    if (api is None) == (not replica):
        raise click.UsageError("give --api URL (the ledger's HTTP API) or --replica")
    paths = {"riemann_ca", "riemann_cert", "riemann_key"}
    given = {k: Path(v) if k in paths and v is not None else v for k, v in flags.items()}
    settings = load_settings(None, **given)
    if settings.riemann is None and settings.slack_webhook is None:
        raise click.UsageError(
            "nowhere to alert: give --riemann HOST:PORT and/or --slack-webhook URL "
            "(or LEDGER_RIEMANN / LEDGER_SLACK_WEBHOOK)"
        )
    verifiers = load_verifiers(KeySettings(checkpoint_vkey=vkey) if vkey else None)
    log_to_stderr(session.debug)
    ledger: Ledger | None = None
    proofs: ProofSource
    if replica:
        ledger = session.open()
        proofs = ReplicaProofs(ledger)
    else:
        assert api is not None
        proofs = ApiProofs(api, reader_token(token_file))
    sinks = AlertSinks(
        sink_for(settings) if settings.riemann is not None else None,
        SlackWebhook(settings.slack_webhook) if settings.slack_webhook is not None else None,
    )
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stopper(stop))
    undelivered: AlertUndelivered | None = None
    try:
        watcher = Witness(WitnessSettings(bootstrap, topic, state), verifiers, proofs, sinks)
        try:
            if once:
                undelivered = check_all(watcher, stop)
            else:
                logging.getLogger("ledger.witness").info("witnessing %s on %s", topic, bootstrap)
                run([watcher], poll_interval=poll_interval, stop=stop)
        finally:
            watcher.close()
    finally:
        if ledger is not None:
            ledger.close()
    if not once:
        return
    report(watcher.found, watcher.waiting, as_json)
    if undelivered is not None:
        output.error_console().print(
            f"Error: {undelivered}; kept in {state}, sent by the next run.",
            markup=False,
            highlight=False,
        )
    if any(verdict.status in ("split", "refused") for verdict in watcher.found):
        raise click.exceptions.Exit(TAMPERED)
    if undelivered is not None:
        raise click.exceptions.Exit(FAILURE)


def check_all(watcher: Witness, stop: threading.Event) -> AlertUndelivered | None:
    """Judge every record on the topic (to its end offset taken now, and on until a
    poll brings nothing more: a broker's end offsets may lag its last records), then
    deliver the alerts; what a sink still down left undelivered (kept in the state)."""
    end = watcher.end_offset()
    deadline = time.monotonic() + watcher.settings.timeout
    undelivered: AlertUndelivered | None = None
    while not stop.is_set() and watcher.waiting is None:
        before = watcher.state.offset
        try:
            watcher.step()
        except AlertUndelivered as error:
            undelivered = error
        if watcher.state.offset != before:
            deadline = time.monotonic() + watcher.settings.timeout
        elif watcher.state.offset >= end:
            break
        elif time.monotonic() > deadline:
            raise KafkaUnavailable(
                f"the topic ends at offset {end} but nothing after offset "
                f"{watcher.state.offset} arrived in {watcher.settings.timeout:g} s"
            )
    try:
        watcher.deliver()
    except AlertUndelivered as error:
        return error
    return undelivered if watcher.state.alerts else None


def report(found: list[Verdict], waiting: str | None, as_json: bool) -> None:
    rows = [
        {
            "status": verdict.status,
            "size": verdict.checkpoint.size if verdict.checkpoint else None,
            "reason": verdict.reason,
        }
        for verdict in found
    ]
    if as_json:
        output.print_json({"verdicts": rows, "waiting": waiting})
        return
    for row in rows:
        output.console().print(f"{row['status']:<10} {row['reason']}", markup=False)
    splits = sum(row["status"] == "split" for row in rows)
    refused = sum(row["status"] == "refused" for row in rows)
    summary = f"{len(rows)} checkpoints checked: {splits} split views, {refused} refused."
    if waiting:
        summary += f" Waiting: {waiting}."
    output.console().print(summary, markup=False)


def reader_token(file: Path | None) -> SecretStr:
    """A reader's token for the API, kept secret (never in logs or reprs)."""
    if file is not None:
        return SecretStr(file.read_text().strip())
    if value := os.environ.get("LEDGER_TOKEN"):
        return SecretStr(value)
    raise InvalidInput("--api needs a reader's token: --token-file FILE or LEDGER_TOKEN")
