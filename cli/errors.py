"""Every error the CLI can end with, mapped to what a person reads and an exit code."""

from __future__ import annotations

import socket
import sys

OK = 0
FAILURE = 1
BAD_INPUT = 2
TAMPERED = 3


def explain(error: Exception) -> tuple[int, list[str]]:
    """The exit code and the lines to print for ``error``.

    Imported here, not at the top: this module is on every command's path (its exit
    codes), and most errors need none of Kafka, psycopg or pydantic to be explained.
    """
    from eventsourcing.persistence import PersistenceError
    from pydantic import ValidationError

    from ledger.errors import InvalidInput, StoreNotInitialised, StoreUnavailable
    from ledger.events import describe_error
    from ledger.importers.jsonl import IngestRefused

    if isinstance(error, IngestRefused):
        lines = [
            f"Error: {error.bad_lines} of {error.lines} lines are invalid; nothing was stored."
        ]
        lines += [f"  {line_error}" for line_error in error.errors]
        if error.bad_lines > len(error.errors):
            lines.append(f"  … and more: only the first {len(error.errors)} errors are shown")
        return BAD_INPUT, lines
    if isinstance(error, ValidationError):
        lines = ["Error: the event is invalid; nothing was stored."]
        for detail in error.errors(include_url=False):
            field, reason = describe_error(detail)
            lines.append(f"  {field or 'event'}: {reason}")
        return BAD_INPUT, lines
    if isinstance(error, InvalidInput):
        return BAD_INPUT, [f"Error: {error}"]
    if isinstance(error, StoreNotInitialised | StoreUnavailable):
        return FAILURE, [f"Error: {error}"]
    if _is_a(error, ("kafka.errors", "KafkaError")):
        return FAILURE, [
            f"Error: Kafka is unavailable: {_first_line(error)}",
            "  Check that the broker is running and --kafka (or LEDGER_KAFKA) points at it.",
        ]
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        # Riemann, Kafka or another service is down or unreachable: an outage, not a bug.
        text = _first_line(error)
        if type(error).__module__ == "builtins" or isinstance(error, socket.gaierror):
            text = f"a service could not be reached: {type(error).__name__}: {text}"
        return FAILURE, [
            f"Error: {text}",
            "  Check that the service is running and the address given is right.",
        ]
    if isinstance(error, PersistenceError) or _is_a(
        error, ("psycopg", "Error"), ("sqlite3", "Error")
    ):
        return FAILURE, [
            f"Error: the ledger store failed: {_first_line(error)}",
            "  Check that the database is running and LEDGER_URL / --ledger points at it.",
        ]
    return FAILURE, [
        f"Error: unexpected {type(error).__name__}: {error}",
        "  Run again with --debug for the traceback, and report it if it persists.",
    ]


def _first_line(error: BaseException) -> str:
    """The first line of the error's message, or its class name when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _is_a(error: BaseException, *classes: tuple[str, str]) -> bool:
    """Whether ``error`` is an instance of one of the classes named (module, class). A
    module that was never imported raised nothing: it is not imported to find out."""
    return any(
        module in sys.modules and isinstance(error, getattr(sys.modules[module], name))
        for module, name in classes
    )
