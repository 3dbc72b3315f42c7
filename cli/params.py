"""Parsing option values the same way in every command."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, date, datetime

import click


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
    return parsed.astimezone(UTC)


def default_actor() -> str:
    """Who is running the command: user@host."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return "cli"
