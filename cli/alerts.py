"""ledger alerts and ledger silence: the Slack collector's alerts and deliveries, and
silences that mute alerts during maintenance."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from cli import output
from cli.events import KindChoice
from cli.params import default_actor
from cli.session import Session, pass_session
from collectors.alert_tables import create_tables
from collectors.alerts import STALE, never_collected
from collectors.grouping import alert_rows
from collectors.kinds import ALERT_KINDS
from collectors.outbox import Outbox, deliveries
from collectors.silences import add_silence, expire_silence, silences
from ledger.application import Ledger
from projections.store import AnyViewRecorder, open_views

env_option = click.option("--env", help="Only this environment (e.g. production).")
json_option = click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
NEVER_COLLECTED = (
    "no alerts yet: no Slack collector has run on this ledger, so nothing it holds has "
    "been looked at. Start one: `ledger collect --slack-webhook URL` (or set "
    "LEDGER_SLACK_WEBHOOK; add --once to deliver what there is and stop)."
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@contextmanager
def _alert_store(session: Session) -> Iterator[tuple[Ledger, AnyViewRecorder]]:
    """The ledger, and the alert tables in its database (created when missing)."""
    ledger = session.open()
    store = open_views(ledger.location)
    try:
        create_tables(store)
        Outbox(store).create_tables()
        yield ledger, store
    finally:
        store.datastore.close()
        ledger.close()


def duration(value: str) -> float:
    """``2h``, ``90m``, ``1h30m``, ``45s``, ``1d`` → seconds."""
    text = value.strip().lower()
    if not text or _DURATION.sub("", text) or not _DURATION.search(text):
        raise click.BadParameter(
            f"{value!r} is not a duration such as 2h, 90m, 1h30m or 1d", param_hint="--for"
        )
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))


@click.command()
@env_option
@click.option("--all", "everything", is_flag=True, help="Also alerts resolved and told.")
@click.option(
    "--deliveries", is_flag=True, help="Instead: the latest Slack messages and their delivery."
)
@json_option
@pass_session
def alerts(
    session: Session, env: str | None, everything: bool, deliveries: bool, as_json: bool
) -> None:
    """Show the alerts the Slack collector tracks, and messages it could not deliver.

    One row per alert (env, generation, service, kind): how many hosts, since when,
    the silence muting it, and whether Slack was told ("firing"/"resolved") or not
    yet (waiting for group_wait or group_interval). Status "stale": known only from
    health reports whose ttl had run out when the collector read them — listed, never
    sent. Messages that failed, or whose delivery is unknown (in flight when a
    collector stopped), are listed after. Until a Slack collector has run (`ledger
    collect --slack-webhook URL`), it says so rather than "no alerts".

    \b
    Example:
      ledger alerts --env production
      ledger alerts --deliveries
      ledger alerts --json | jq '.[] | select(.status == "firing") | .summary'
    """
    now = time.time()
    with _alert_store(session) as (ledger, store):
        if deliveries:
            rows = _deliveries(store, problems=False)
            output.answer(
                rows if as_json else [_when(row, "created_at") for row in rows],
                [
                    ("id", "#"),
                    ("created_at", "queued (UTC)"),
                    ("status", "status"),
                    ("attempts", "attempts"),
                    ("summary", "message"),
                    ("error", "error"),
                ],
                as_json=as_json,
                empty="no Slack messages yet",
                style=_delivery_style,
            )
            return
        rows = alert_rows(store, now, env=env, resolved=everything)
        problems = _deliveries(store, problems=True)
        idle = not rows and never_collected(ledger, store)
    if idle:
        # "no alerts" would read as "nothing failed": nothing has been looked at yet.
        if as_json:
            output.print_json([])
            output.error_console().print(NEVER_COLLECTED, markup=False)
        else:
            output.note(NEVER_COLLECTED)
        return
    output.answer(
        rows,
        [
            ("fingerprint", "alert"),
            ("env", "env"),
            ("generation", "gen"),
            ("status", "status"),
            ("since", "since (UTC)"),
            ("notified", "last message"),
            ("silenced_by", "silenced by"),
            ("summary", "summary"),
        ],
        as_json=as_json,
        empty="no alerts",
        style=_alert_style,
    )
    if problems and not as_json:
        output.console().print(
            f"\n[red]{len(problems)} Slack message(s) not delivered[/red] "
            "(`ledger alerts --deliveries` for all):"
        )
        for row in problems:
            output.console().print(
                f"  #{row['id']} {row['status']}: {output.escape(row['summary'])} — "
                f"{output.escape(row['error'] or '')}",
                highlight=False,
            )


def _deliveries(store: AnyViewRecorder, *, problems: bool) -> list[dict[str, Any]]:
    return [
        {**row, "status": "delivery unknown" if row["status"] == "unknown" else row["status"]}
        for row in deliveries(store, problems=problems)
    ]


def _alert_style(row: dict[str, Any]) -> str | None:
    if row["status"] == STALE:
        return "dim"
    return "red" if row["status"] == "firing" and not row["silenced_by"] else None


def _delivery_style(row: dict[str, Any]) -> str | None:
    return {"failed": "red", "delivery unknown": "yellow", "pending": "dim"}.get(row["status"])


@click.group()
def silence() -> None:
    """Mute alerts during maintenance: add, list and expire silences.

    A silence matches alerts by env, service and kind, and advisory alerts by advisory
    id too (env, service and advisory may be shell patterns such as 'pr-*'). While it
    lasts, matching alerts are tracked but not sent to Slack; those still firing when
    it ends are sent then. Silences live in the ledger's database, so every `ledger
    collect` sees them.

    \b
    Example:
      ledger silence add --env production --service api --for 2h --comment "db migration"
      ledger silence add --advisory CVE-2014-0160 --for 7d --comment "not reachable: SEC-88"
      ledger silence list
      ledger silence expire 3f9a1c2e
    """


@silence.command("add")
@click.option("--env", help="Environment (or pattern) to silence.")
@click.option("--service", help="Service (or pattern) to silence.")
@click.option(
    "--kind",
    type=KindChoice(list(ALERT_KINDS)),
    help="Alert kind to silence, e.g. activation_failed (or activation-failed).",
)
@click.option(
    "--advisory",
    help="Advisory id (or pattern) whose advisory alerts to silence: an id of the "
    "vulnerability or any alias, e.g. CVE-2014-0160 or 'GHSA-*'.",
)
@click.option("--for", "length", required=True, metavar="DURATION", help="How long: 2h, 90m, 1d.")
@click.option("--comment", default="", help="Why (a ticket, the maintenance).")
@click.option("--author", default=default_actor, show_default="user@host", help="Who silences.")
@json_option
@pass_session
def silence_add(
    session: Session,
    env: str | None,
    service: str | None,
    kind: str | None,
    advisory: str | None,
    length: str,
    comment: str,
    author: str,
    as_json: bool,
) -> None:
    """Silence matching alerts from now on, for a while.

    Give at least one of --env, --service, --kind, --advisory; what is left out matches
    anything.

    \b
    Example:
      ledger silence add --env production --service api --for 2h --comment "CHG-1234"
      ledger silence add --env 'pr-*' --kind drain_timed_out --for 1d
      ledger silence add --advisory CVE-2014-0160 --env staging --for 7d
    """
    seconds = duration(length)
    now = time.time()
    with _alert_store(session) as (_, store):
        added = add_silence(
            store,
            env=env,
            service=service,
            kind=kind,
            advisory=advisory,
            seconds=seconds,
            comment=comment,
            created_by=author,
            now=now,
        )
        muted = [row for row in alert_rows(store, now) if added.id in row["silenced_by"]]
    if as_json:
        output.print_json(added.row(now))
        return
    output.console().print(
        f"Silence [bold]{added.id}[/bold] until {output.when(added.row(now)['ends_at'])} "
        f"({output.escape(added.describe())}); it mutes {len(muted)} alert(s) now."
    )


@silence.command("list")
@click.option("--all", "everything", is_flag=True, help="Also silences that have ended.")
@json_option
@pass_session
def silence_list(session: Session, everything: bool, as_json: bool) -> None:
    """List the silences: active and coming (with --all, ended ones too).

    \b
    Example:
      ledger silence list
      ledger silence list --all --json
    """
    now = time.time()
    with _alert_store(session) as (_, store):
        rows = [{**s.row(now), "matches": s.describe()} for s in silences(
            store, now, ended=everything
        )]  # fmt: skip
    output.answer(
        rows if as_json else [_when(row, "starts_at", "ends_at") for row in rows],
        [
            ("id", "id"),
            ("matches", "matches"),
            ("starts_at", "from (UTC)"),
            ("ends_at", "until (UTC)"),
            ("active", "active"),
            ("created_by", "by"),
            ("comment", "comment"),
        ],
        as_json=as_json,
        empty="no silences",
    )


@silence.command("expire")
@click.argument("silence_id", metavar="ID")
@click.option("--author", default=default_actor, show_default="user@host", help="Who ends it.")
@pass_session
def silence_expire(session: Session, silence_id: str, author: str) -> None:
    """End a silence now: alerts it muted that still fire are sent to Slack.

    \b
    Example:
      ledger silence expire 3f9a1c2e
    """
    with _alert_store(session) as (_, store):
        expire_silence(store, silence_id, by=author, now=time.time())
    output.console().print(f"Silence {output.escape(silence_id)} ended.")


def _when(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Times for people (2026-03-11 14:10:00Z), in a table."""
    return {**row, **{key: output.when(row[key]) for key in keys}}
