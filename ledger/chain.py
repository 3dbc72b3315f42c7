"""The hash chain that makes the history tamper-evident.

``hash(n) = sha256(canonical_json({"position": n, "prev_hash": hash(n-1), "event": e}))``
with ``hash(0)`` = :data:`GENESIS`. Canonical JSON is UTF-8, keys sorted, no spaces.
A row changed, deleted or inserted behind the ledger's back breaks either a hash or the
gapless sequence of positions, and ``Ledger.verify`` reports the first position where
that happens. Appending a correctly chained row at the *end* needs an outside anchor to
be caught: ``ledger verify`` prints the head so it can be kept elsewhere.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS = "0" * 64

# Fields the ledger itself fills in; left out of the producer's content digest so that a
# re-sent event (or a copy made with ``ledger log --json``) is recognised as the same fact.
_ASSIGNED_FIELDS = ("recorded_at", "source")


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def entry_hash(position: int, prev_hash: str, event: dict[str, Any]) -> str:
    payload = canonical_json({"position": position, "prev_hash": prev_hash, "event": event})
    return hashlib.sha256(payload).hexdigest()


def content_digest(event: dict[str, Any]) -> str:
    """Digest of what the producer said, to tell a re-sent event from a clashing one."""
    content = {k: v for k, v in event.items() if k not in _ASSIGNED_FIELDS}
    if content.get("kind") == "generation_planned":
        content.pop("number", None)
    return hashlib.sha256(canonical_json(content)).hexdigest()
