"""``ledger log`` and ``schema``: reading events out, and the form they take.

``ledger record`` (cli/record.py) builds its options from the event models; reading
needs only the kinds' names, so ``ledger log`` does not import pydantic's models."""

from __future__ import annotations

import collections
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cli import output
from cli.params import timestamp
from cli.session import Session, pass_session
from ledger.domain import TOPICS

if TYPE_CHECKING:
    from ledger.application import StoredFact

DEFAULT_TABLE_ROWS = 50


class KindChoice(click.Choice[str]):
    """A kind, written as stored and shown (``activation_failed``) or as ``ledger record``'s
    subcommands are (``activation-failed``): both spellings are accepted, and the stored
    one is passed on (and named in errors)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, str):
            value = value.strip().replace("-", "_")
        return super().convert(value, param, ctx)


@click.command()
@click.option("--env", help="Only this environment.")
@click.option("--host", help="Only events about this host.")
@click.option("--service", help="Only events about this service.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=KindChoice(sorted(TOPICS)),
    metavar="KIND",
    help="Only this kind (repeatable), e.g. activation_failed (or activation-failed); the "
    "kinds are in docs/events.md and `ledger record --help`.",
)
@click.option("--since", help="Occurred at or after (date or ISO 8601 time with timezone).")
@click.option("--until", help="Occurred before (date or ISO 8601 time with timezone).")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help=f"Show the last N matching events (default: {DEFAULT_TABLE_ROWS} in the table, "
    "all with --json; 0 = all).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines in the documented event form.")
@click.option(
    "--chain",
    is_flag=True,
    help='JSON Lines of {"position", "prev_hash", "chain_hash", "event"}: what anyone needs '
    "to recompute the hash chain and the Merkle tree (implies --json).",
)
@pass_session
def log(
    session: Session,
    env: str | None,
    host: str | None,
    service: str | None,
    kinds: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
    chain: bool,
) -> None:
    """Show recorded events in ledger order, filtered.

    `--json` prints exactly the documented event form, one event per line, so the
    output can be ingested into another ledger.

    `--chain` prints, per event, its position, the chain hash before it and its own
    (hex), and the event as stored, so that an export can be checked with one's own
    code: chain_hash = SHA-256 of the canonical JSON (UTF-8, keys sorted, no spaces) of
    {"position", "prev_hash", "event"}, and the Merkle tree of `ledger checkpoint` has
    as leaf n (from 0) SHA-256(0x00 + the 32 bytes of chain_hash of position n + 1)
    (RFC 9162). Unfiltered, it holds every position from 1.

    \b
    Example:
      ledger log --env production --host web-001 --since 2026-01-05
      ledger log --kind activation_failed --kind generation_failed
      ledger log --json | LEDGER_URL=copy.db ledger ingest -
      ledger log --chain > export.jsonl
    """
    start = timestamp(since, "--since")
    end = timestamp(until, "--until")
    ledger = session.open()

    def wanted(fact: StoredFact) -> bool:
        event = fact.event
        if env is not None and event["env"] != env:
            return False
        if host is not None and event.get("host") != host:
            return False
        if service is not None and event.get("service") != service:
            return False
        if start is not None or end is not None:
            occurred = datetime.fromisoformat(event["occurred_at"])
            if start is not None and occurred < start:
                return False
            if end is not None and occurred >= end:
                return False
        return True

    matching = (fact for fact in ledger.facts(kinds=kinds) if wanted(fact))
    as_json = as_json or chain
    lines = _chained if chain else _event
    if limit is None:
        limit = 0 if as_json else DEFAULT_TABLE_ROWS
    count = 0
    if limit == 0:
        # Everything: written as it is read, never held in memory.
        if as_json:
            output.print_json_lines(map(lines, matching))
        else:
            output.facts_table(matching)
        return
    shown: collections.deque[StoredFact] = collections.deque(maxlen=limit or None)
    for fact in matching:
        count += 1
        shown.append(fact)
    if as_json:
        output.print_json_lines(map(lines, shown))
    else:
        output.facts_table(shown, matching=count)


def _event(fact: StoredFact) -> dict[str, Any]:
    return fact.event


def _chained(fact: StoredFact) -> dict[str, Any]:
    """An event with what ties it into the chain (``ledger log --chain``)."""
    return {"position": fact.position, "prev_hash": fact.prev_hash, "chain_hash": fact.hash,
            "event": fact.event}  # fmt: skip


@click.command()
def schema() -> None:
    """Print the JSON Schema of the event form (generated from the models).

    \b
    Example:
      ledger schema > docs/schema/ledger-event.schema.json
    """
    from ledger.events import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
