"""``ledger doctor``: check the store, views, Kafka, Riemann, Slack and API tokens, and
say plainly what is wrong and how to fix it (the checks are in ``collectors.doctor``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli import output
from cli.collect import CONFIG_VARIABLE, riemann_options
from cli.errors import FAILURE
from cli.publish import bootstrap_option
from cli.session import Session, pass_session
from collectors import doctor as checks
from collectors.settings import CollectSettings, load_settings
from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.store import locate

STYLES = {checks.FAILED: "red", checks.WARNING: "yellow", checks.NOT_CONFIGURED: "dim"}
SETTING_PATHS = {"riemann_ca", "riemann_cert", "riemann_key"}


@click.command()
@click.option("--verify", is_flag=True, help="Also re-check the whole hash chain (may be slow).")
@bootstrap_option("--kafka", required=False)
@click.option("--publish-topic", default=checks.PUBLISH_TOPIC, show_default=True,
              help="With --kafka: the topic `ledger publish` writes to.")  # fmt: skip
@click.option("--ingest-topic", default=checks.INGEST_TOPIC, show_default=True,
              help="With --kafka: the topic `ledger ingest --kafka` reads.")  # fmt: skip
@click.option("--dead-letter-topic", default="", show_default="INGEST_TOPIC.dead-letter",
              help="With --kafka: the ingest workers' dead-letter topic.")  # fmt: skip
@riemann_options("Riemann server, as for `ledger collect`.")
@click.option(
    "--slack-webhook",
    metavar="URL",
    help="Slack webhook to check (a secret: prefer LEDGER_SLACK_WEBHOOK); never sent to.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    envvar=CONFIG_VARIABLE,
    help=f"The collectors' settings file (TOML), as for `ledger collect` (env: {CONFIG_VARIABLE}).",
)
@click.option(
    "--timeout", type=click.FloatRange(0.2, 120), default=5.0, show_default=True,
    help="Seconds each network check may take.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_session
def doctor(
    session: Session,
    /,
    verify: bool,
    bootstrap: str | None,
    publish_topic: str,
    ingest_topic: str,
    dead_letter_topic: str,
    config: str | None,
    timeout: float,
    as_json: bool,
    **flags: Any,
) -> None:
    """Check the store, views, Kafka, Riemann, Slack and API tokens; say what is wrong.

    Each check is ok, a warning or failed, with a one-line finding and, when not ok,
    how to fix it. Kafka, Riemann and Slack are checked when configured, with the
    same flags, LEDGER_… variables and --config file as `ledger publish` and `ledger
    collect`; otherwise they are listed as "not configured". Nothing is sent: the
    Slack webhook is only looked at (and never printed), no event is published. Exit
    code 1 when a check failed, 0 when all are ok or warnings.

    \b
    Example:
      ledger doctor
      ledger --ledger postgresql://ledger@db/ledger doctor --verify
      LEDGER_KAFKA=kafka1:9092 LEDGER_RIEMANN=riemann.internal:5555 ledger doctor --json
    """
    findings: list[checks.Finding] = []
    store_finding, ledger = checks.check_store(session.open, "--ledger / LEDGER_URL")
    findings.append(store_finding)
    settings, settings_finding = _settings(config, flags)
    try:
        if ledger is not None and verify:
            with output.progress_bar("verifying", ledger.count(), unit="events") as advance:
                findings.append(checks.check_chain(ledger, advance))
        if ledger is None:
            findings.append(checks.Finding("views", checks.SKIPPED, "the store did not open"))
        else:
            findings.append(_views(session, ledger))
        if settings_finding is not None:
            findings.append(settings_finding)
        with checks.collector_store(ledger) as store:
            dead_letter = dead_letter_topic or ingest_topic + checks.DEAD_LETTER_SUFFIX
            topics = {
                publish_topic: "ledger publish",
                ingest_topic: "ledger ingest",
                dead_letter: "ingest dead letters",
            }
            findings += checks.check_kafka(bootstrap, topics, timeout, ledger, store)
            if settings_finding is None:
                findings += checks.check_riemann(settings, timeout, ledger, store)
                findings += checks.check_slack(settings, ledger, store)
            else:
                unread = "the settings could not be read"
                findings.append(checks.Finding("riemann", checks.SKIPPED, unread))
                findings.append(checks.Finding("slack", checks.SKIPPED, unread))
            findings.append(checks.check_tokens(store))
    finally:
        if ledger is not None:
            ledger.close()
    output.answer(
        [f.row() for f in findings],
        [("check", "check"), ("status", "status"), ("finding", "finding"), ("fix", "fix")],
        as_json=as_json,
        empty="nothing checked",
        style=lambda row: STYLES.get(row["status"]),
    )
    if checks.failed(findings):
        raise click.exceptions.Exit(FAILURE)


def _views(session: Session, ledger: Ledger) -> checks.Finding:
    try:
        location = locate(session.views_url) if session.views_url else None
    except InvalidInput as error:
        return checks.Finding(
            "views", checks.FAILED, str(error), "correct --views / LEDGER_VIEWS_URL"
        )
    return checks.check_views(ledger, location)


def _settings(
    config: str | None, flags: dict[str, Any]
) -> tuple[CollectSettings | None, checks.Finding | None]:
    """The collectors' settings, or why they cannot be read (then Riemann and Slack are
    not checked)."""
    given = {k: Path(v) if k in SETTING_PATHS and v is not None else v for k, v in flags.items()}
    try:
        return load_settings(Path(config) if config else None, **given), None
    except InvalidInput as error:
        return None, checks.Finding(
            "settings",
            checks.FAILED,
            str(error),
            "correct the flag, the LEDGER_… variable or the --config file it names",
        )
