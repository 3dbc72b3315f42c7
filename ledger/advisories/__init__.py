"""Vulnerability advisories read from the files people download, as ``advisory_recorded``
events: NVD CVE JSON 2.0 (``nvd``), OSV records (``osv``), and the files, archives and
folders that hold them (``files``). Nothing here touches the store: the importer decides
what to append.

The two parsers share the little defined here: the problem they raise for a record they
cannot read (``files`` turns it into an ``ImportRefused`` naming the file and the record),
and how a database's prose becomes the event's one-paragraph summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SUMMARY_LIMIT = 1000
"""Characters of the database's description kept as the summary; the rest is cut (with
an ellipsis) because the ledger stores what matching and reports need, and the full text
stays one link away at the database."""

# Control characters other than tab and newlines: the event form refuses them in text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class RecordProblem(ValueError):
    """One record of an advisory file cannot be read; ``field`` is its path in the record."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


@dataclass
class Content:
    """What a parser read from one record: the event's fields (without the envelope), and
    where each came from in the record, so that a field the event model refuses is named
    as the file names it (``fields`` path → record path)."""

    fields: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)


def summary(text: str) -> str:
    """The first ``SUMMARY_LIMIT`` characters of a description, stripped; control
    characters (which a description pasted from a terminal may hold) become spaces, since
    refusing a whole year of advisories over one stray byte in prose would help nobody."""
    text = _CONTROL.sub(" ", text).strip()
    if len(text) <= SUMMARY_LIMIT:
        return text
    return text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def text_at(path: str, value: Any, *, required: bool = False) -> str | None:
    """``value`` if it is a string; None if absent and not required; else the problem."""
    if value is None:
        if required:
            raise RecordProblem(path, "missing")
        return None
    if not isinstance(value, str):
        raise RecordProblem(path, f"expected a string, found {json_type(value)}")
    return value


def items_at(path: str, value: Any) -> list[Any]:
    """``value`` if it is a list, an empty list if absent or null, else the problem."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordProblem(path, f"expected a list, found {json_type(value)}")
    return value


def object_at(path: str, value: Any) -> dict[str, Any]:
    """``value`` if it is an object, an empty one if absent or null, else the problem."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordProblem(path, f"expected an object, found {json_type(value)}")
    return value


def json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
