"""Silences (``ledger silence``): they mute matching alerts while active. Silenced
alerts are kept and tracked but not sent; still firing when the silence ends (it runs
out, or ``ledger silence expire``), they are sent (after ``group_wait`` or
``group_interval`` as usual: see ``collectors.grouping``). Silences live in the ledger's
database, so every ``ledger collect`` sees them at once. A silence may name an advisory
(a pattern: ``CVE-2014-*``): it mutes the advisory alerts of the vulnerabilities with a
matching id, the group's key or any of its aliases."""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from collectors.alert_tables import iso
from collectors.kinds import ADVISORY, ALERT_KINDS
from collectors.rules import Rule
from ledger.errors import InvalidInput
from projections.store import AnyViewRecorder, Tx


@dataclass(frozen=True)
class Silence:
    """Mutes the alerts it matches (env, service, advisory: patterns; a field left out
    matches anything) from ``starts_at`` until ``ends_at`` (epoch seconds)."""

    id: str
    env: str | None
    service: str | None
    kind: str | None
    starts_at: float
    ends_at: float
    comment: str
    created_by: str
    expired_by: str | None = None
    advisory: str | None = None

    def matches(self, env: str, service: str, kind: str, ids: Iterable[str] = ()) -> bool:
        """Whether it mutes an alert; ``ids``: an advisory alert's vulnerability ids."""
        if self.advisory is not None and (
            kind != ADVISORY or not any(fnmatch.fnmatchcase(i, self.advisory) for i in ids)
        ):
            return False
        return Rule("silence", self.kind, self.env, self.service).matches(env, service, kind)

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def describe(self) -> str:
        """What it matches, as ``ledger silence list`` and the API write it:
        ``env=production service=api``."""
        fields = {"env": self.env, "service": self.service, "kind": self.kind,
                  "advisory": self.advisory}  # fmt: skip
        return " ".join(f"{key}={value}" for key, value in fields.items() if value)

    def row(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "service": self.service,
            "kind": self.kind,
            "advisory": self.advisory,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "active": self.active(now),
            "comment": self.comment,
            "created_by": self.created_by,
            "expired_by": self.expired_by,
        }


def add_silence(
    store: AnyViewRecorder,
    *,
    env: str | None,
    service: str | None,
    kind: str | None,
    seconds: float,
    comment: str,
    created_by: str,
    now: float,
    advisory: str | None = None,
) -> Silence:
    """A new silence, active from ``now`` for ``seconds``."""
    if env is None and service is None and kind is None and advisory is None:
        raise InvalidInput("a silence needs at least one of --env, --service, --kind, --advisory")
    if kind is not None and kind not in ALERT_KINDS:
        raise InvalidInput(f"unknown alert kind {kind!r} (known: {', '.join(ALERT_KINDS)})")
    if advisory is not None and kind not in (None, ADVISORY):
        raise InvalidInput(
            f"--advisory mutes advisory alerts only: leave out --kind {kind} "
            "(or give a separate silence for it)"
        )
    if advisory is not None and not advisory.strip():
        raise InvalidInput("--advisory needs an id or a pattern (CVE-2014-0160, 'GHSA-*')")
    if seconds <= 0:
        raise InvalidInput("a silence must last some time (--for 2h)")
    silence = Silence(
        uuid.uuid4().hex[:8], env, service, kind, now, now + seconds, comment, created_by,
        advisory=advisory,
    )  # fmt: skip
    with store.transaction(commit=True) as tx:
        tx.execute(
            "INSERT INTO silences (id, env, service, kind, starts_at, ends_at, comment, "
            "created_by, advisory) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                silence.id,
                env,
                service,
                kind,
                silence.starts_at,
                silence.ends_at,
                comment,
                created_by,
                advisory,
            ),
        )
    return silence


def silences(store: AnyViewRecorder, now: float, *, ended: bool = False) -> list[Silence]:
    """The silences active or still to come (and those that ended, with ``ended``)."""
    with store.transaction(commit=False) as tx:
        return read_silences(tx, None if ended else now)


def read_silences(tx: Tx, still_at: float | None) -> list[Silence]:
    """The silences that end after ``still_at`` (every one when None), in ``tx``."""
    clause, params = ("WHERE ends_at > ?", [still_at]) if still_at is not None else ("", [])
    rows = tx.query(f"SELECT * FROM silences {clause} ORDER BY starts_at, id", params)
    return [Silence(**row) for row in rows]


def expire_silence(store: AnyViewRecorder, silence_id: str, *, by: str, now: float) -> Silence:
    """End a silence now: the alerts it muted are sent at the next evaluation."""
    with store.transaction(commit=True) as tx:
        rows = tx.query("SELECT * FROM silences WHERE id = ?", (silence_id,))
        if not rows:
            raise InvalidInput(f"no silence {silence_id!r}: `ledger silence list` shows them")
        silence = Silence(**rows[0])
        if silence.ends_at <= now:
            raise InvalidInput(f"silence {silence_id} already ended at {iso(silence.ends_at)}")
        tx.execute(
            "UPDATE silences SET ends_at = ?, expired_by = ? WHERE id = ?",
            (now, by, silence_id),
        )
    return Silence(**{**rows[0], "ends_at": now, "expired_by": by})
