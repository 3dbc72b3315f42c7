"""Parsing option values the same way in every command."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, date, datetime

import click

MAX_NUMBER = 2**62
"""The largest generation number or count an option takes: as large as an event's
generation number may be (``ledger.events``), well inside a 64-bit database integer,
so that a huge number is a usage error (exit 2), not an overflow in SQLite."""

GENERATION = click.IntRange(1, MAX_NUMBER)
"""A generation number option or argument: 1 to ``MAX_NUMBER``."""
COUNT = click.IntRange(0, MAX_NUMBER)
"""A count such as ``--limit``: 0 to ``MAX_NUMBER``."""


def timestamp(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or an ISO 8601 time such as 2026-03-11T14:10:00Z",
            param_hint=option,
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no timezone; add Z for UTC (2026-03-11T14:10:00Z)", param_hint=option
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise click.BadParameter(
            f"{value!r} is out of range once converted to UTC", param_hint=option
        ) from None


def default_actor() -> str:
    """Who is running the command: user@host."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return "cli"


env_option = click.option("--env", help="Only this environment (e.g. production).")
json_option = click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
