"""ledger collect: follow the ledger and push every event to Riemann, alerts to Slack."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from cli.session import Session, pass_session
from collectors.riemann import RiemannCollector
from collectors.run import Collector, run
from collectors.settings import load_settings, seconds
from collectors.slack import SlackCollector
from ledger.application import Ledger
from ledger.store import locate

CONFIG_VARIABLE = "LEDGER_CONFIG"
F = TypeVar("F", bound=Callable[..., Any])


def riemann_options(what: str) -> Callable[[F], F]:
    """--riemann (described as ``what``) and its TLS settings (collect and doctor)."""

    def add(command: F) -> F:
        for option in reversed(
            [
                click.option("--riemann", metavar="HOST:PORT", help=what),
                click.option(
                    "--riemann-tls", is_flag=True, default=None, help="Connect to Riemann over TLS."
                ),
                click.option(
                    "--riemann-ca", type=click.Path(dir_okay=False), help="CA bundle (PEM) for TLS."
                ),
                click.option(
                    "--riemann-cert",
                    type=click.Path(dir_okay=False),
                    help="Client certificate (PEM).",
                ),
                click.option(
                    "--riemann-key",
                    type=click.Path(dir_okay=False),
                    help="Client certificate's key.",
                ),
            ]
        ):
            command = option(command)
        return command

    return add


class Seconds(click.ParamType[float, Any]):
    """A duration: ``60``, ``45s``, ``5m``, ``1h``."""

    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            found = seconds(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        if found <= 0:
            self.fail(f"{value!r} is not a positive duration", param, ctx)
        return found


def checkpoint_options(*, envvars: bool) -> Callable[[F], F]:
    """--checkpoint-every and --checkpoint-interval (publish, collect); with ``envvars``
    the options read LEDGER_CHECKPOINT_EVERY / _INTERVAL themselves (collect's settings
    read them otherwise)."""

    def add(command: F) -> F:
        command = click.option(
            "--checkpoint-interval",
            type=Seconds(),
            envvar="LEDGER_CHECKPOINT_INTERVAL" if envvars else None,
            help="Also sign a checkpoint of the ledger this often when it grew (60s, 5m, "
            "1h; env: LEDGER_CHECKPOINT_INTERVAL). The key: LEDGER_CHECKPOINT_KEY.",
        )(command)
        return click.option(
            "--checkpoint-every",
            type=click.IntRange(min=1),
            envvar="LEDGER_CHECKPOINT_EVERY" if envvars else None,
            metavar="N",
            help="Also sign a checkpoint once N events were appended since the last one "
            "(env: LEDGER_CHECKPOINT_EVERY). The key: LEDGER_CHECKPOINT_KEY.",
        )(command)

    return add


def checkpoint_maker(every: int | None, interval: float | None) -> Callable[[Ledger], Collector]:
    """What makes the collector that signs and keeps checkpoints every N events or S
    seconds. The private key LEDGER_CHECKPOINT_KEY names is loaded now, so a missing
    key is refused before anything is opened."""
    from collectors.publish import CheckpointMaker
    from ledger.checkpoint import load_signer

    signer = load_signer()
    return lambda ledger: CheckpointMaker(ledger, signer, every=every, interval=interval)


@click.command()
@riemann_options("Send every event and gauges to Riemann.")
@click.option(
    "--slack-webhook",
    metavar="URL",
    help="Slack incoming-webhook URL for alerts (a secret: prefer LEDGER_SLACK_WEBHOOK).",
)
@click.option(
    "--dashboard-url",
    metavar="URL",
    help="The dashboard's public URL (env: LEDGER_DASHBOARD_URL): Slack messages link to "
    "the generation's or advisory's page there.",
)
@click.option("--rules", type=click.Path(dir_okay=False), help="Alert rules file (TOML).")
@click.option(
    "--cpe-map",
    type=click.Path(dir_okay=False, exists=True),
    help="NVD products named otherwise than their packages, for advisory alerts "
    "(env: LEDGER_CPE_MAP; see ledger exposure --help).",
)
@checkpoint_options(envvars=False)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    envvar=CONFIG_VARIABLE,
    help=f"Settings file (TOML) with any of these settings (env: {CONFIG_VARIABLE}).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Deliver everything there is (waiting out group waits and rate limits), then stop.",
)
@pass_session
def collect(session: Session, /, config: str | None, once: bool, **flags: Any) -> None:
    """Follow the ledger: every event to Riemann, alerts to Slack.

    Advisories that expose hosts alert too: one Slack alert per vulnerability (hosts,
    versions, fixed versions) and a Riemann event per vulnerability and env whose metric
    is the hosts exposed; both resolve when no host runs an affected build.

    With --checkpoint-every N or --checkpoint-interval DURATION it also signs the
    ledger's Merkle tree head with the key LEDGER_CHECKPOINT_KEY names and keeps it (as
    `ledger checkpoint` does) every N events or that often; `ledger publish` does the
    same and puts each on Kafka for witnesses.

    Each collector keeps its own position in the ledger's database: after a crash or
    a restart it resumes where it was confirmed, nothing lost, nothing already
    confirmed sent again. While Riemann or Slack is down the ledger keeps accepting
    events; the collector backs off and catches up afterwards. Settings come from the
    flags, then LEDGER_… environment variables (LEDGER_RIEMANN, LEDGER_SLACK_WEBHOOK,
    LEDGER_GROUP_WAIT, …), then --config FILE; see docs/collectors.md.

    \b
    Example:
      ledger collect --riemann riemann.internal:5555
      LEDGER_SLACK_WEBHOOK=https://hooks.slack.com/services/… ledger collect \\
        --riemann riemann.internal:5554 --riemann-tls --riemann-ca ca.pem --rules alerts.toml
      LEDGER_SLACK_WEBHOOK=https://hooks.slack.com/services/… ledger collect \\
        --dashboard-url https://ledger.example.com/   # alerts link to its pages
      LEDGER_CHECKPOINT_KEY=/etc/ledger/checkpoint.key ledger collect \\
        --riemann riemann.internal:5555 --checkpoint-every 1000 --checkpoint-interval 5m
    """
    paths = {"riemann_ca", "riemann_cert", "riemann_key", "rules", "cpe_map"}
    given = {k: Path(v) if k in paths and v is not None else v for k, v in flags.items()}
    settings = load_settings(Path(config) if config else None, **given)
    checkpointing = settings.checkpoint_every or settings.checkpoint_interval
    if settings.riemann is None and settings.slack_webhook is None and not checkpointing:
        raise click.UsageError(
            "nothing to collect to: give --riemann HOST:PORT and/or --slack-webhook URL "
            "(or LEDGER_RIEMANN / LEDGER_SLACK_WEBHOOK), or --checkpoint-every N"
        )
    make_checkpoints = (
        checkpoint_maker(settings.checkpoint_every, settings.checkpoint_interval)
        if checkpointing
        else None
    )
    log_to_stderr(session.debug)
    ledger = session.open()
    views = locate(session.views_url) if session.views_url else None
    collectors: list[Collector] = []
    if settings.riemann is not None:
        collectors.append(RiemannCollector(ledger, settings, views_location=views))
    if settings.slack_webhook is not None:
        collectors.append(SlackCollector(ledger, settings, views_location=views))
    if make_checkpoints is not None:
        collectors.append(make_checkpoints(ledger))
    stop = threading.Event()
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stopper(stop))
    log = logging.getLogger("ledger.collect")
    log.info("following %s: %s", ledger.location.display, ", ".join(c.name for c in collectors))
    try:
        if once:
            _until_done(collectors, settings.poll_interval, stop)
        else:
            run(collectors, poll_interval=settings.poll_interval, stop=stop)
    finally:
        for collector in collectors:
            collector.close()
        ledger.close()
    log.info("stopped")


def _until_done(collectors: list[Collector], poll_interval: float, stop: threading.Event) -> None:
    """Step until no collector has anything left to do now or later (a Slack message
    held back by the rate limit, a group still in its group wait). Errors end it."""
    while not stop.is_set():
        busy = [collector.step() for collector in collectors]
        if any(busy):
            continue
        if not any(getattr(collector, "pending", lambda: False)() for collector in collectors):
            return
        stop.wait(poll_interval)


def stopper(stop: threading.Event) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handler


def log_to_stderr(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("ledger")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
