"""The outbox: Slack messages waiting for, in, or done with delivery, in the ledger's
database (``slack_outbox``), and their states — ``pending`` (to send, now or after a
retry's backoff or a 429's Retry-After), ``sending``, ``sent``, ``failed``, and
``unknown`` (delivery unknown).

- **Outbox.** A message is queued in ``slack_outbox`` in the transaction that records
  which alerts it tells about. Delivery goes oldest first.
- **At most once.** A message is marked ``sending`` — committed, on disk — before the
  POST, and ``sent`` after it. A message found ``sending`` when the collector starts
  was in flight when the previous one stopped: Slack may or may not have it, so it is
  not sent again but reported as *delivery unknown*. Likewise when the request went out
  and no answer came back (timeout, connection reset). Sending twice would page twice;
  a message whose fate is unknown is reported instead (logs, ``ledger alerts``).
- **Failures.** A 5xx (after slack_sdk's own retry, ``collectors.webhook``) or a
  connection that could not be made is retried with backoff, up to ``MAX_ATTEMPTS``
  attempts, then the message is marked ``failed`` and reported. Any other 4xx (a
  deleted webhook, a bad payload) is permanent: ``failed`` at once. A 429 is not an
  attempt: the message waits for its Retry-After.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import orjson

from collectors.alert_tables import iso
from collectors.messages import GroupNotice, message
from collectors.webhook import Outcome
from projections.store import AnyViewRecorder, Cursor, SQLiteViewRecorder, Tx

PENDING, SENDING, SENT, FAILED, UNKNOWN = "pending", "sending", "sent", "failed", "unknown"
MAX_ATTEMPTS = 5
"""Deliveries that end in a 5xx or no connection before a message is given up."""

OUTBOX_DDL = (
    "CREATE TABLE IF NOT EXISTS slack_outbox ("
    "id BIGINT PRIMARY KEY, group_key TEXT NOT NULL, status TEXT NOT NULL, "
    "summary TEXT NOT NULL, payload TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
    "attempts BIGINT NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL, "
    "claimed_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, error TEXT)",
    "CREATE INDEX IF NOT EXISTS slack_outbox_status ON slack_outbox (status, id)",
)


@dataclass(frozen=True)
class Message:
    id: int
    group_key: str
    summary: str
    payload: dict[str, Any]
    attempts: int


class Outbox:
    """Messages waiting for, in, or done with delivery."""

    def __init__(self, store: AnyViewRecorder, *, dashboard_url: str | None = None) -> None:
        self.store = store
        self.dashboard_url = dashboard_url
        """The dashboard's public URL: messages link to its pages when it is known."""

    def create_tables(self) -> None:
        with self.store.transaction(commit=True) as tx:
            for statement in OUTBOX_DDL:
                tx.execute(statement)

    def enqueue(self, tx: Tx, notice: GroupNotice, now: float) -> int:
        """Queue a message about ``notice`` (in the caller's transaction)."""
        rows = tx.query("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM slack_outbox")
        message_id = int(rows[0]["id"])
        payload = message(notice, message_id, self.dashboard_url)
        tx.execute(
            "INSERT INTO slack_outbox (id, group_key, status, summary, payload, created_at, "
            "attempts, next_attempt_at) VALUES (?, ?, 'pending', ?, ?, ?, 0, ?)",
            (
                message_id,
                notice.group_key,
                payload["text"][:500],
                orjson.dumps(payload).decode(),
                now,
                now,
            ),
        )
        return message_id

    def next_due(self, now: float) -> Message | None:
        """The oldest pending message, if it may go now. Oldest first, always: a group's
        resolution never overtakes its firing, and a 429's wait holds them all."""
        with self.store.transaction(commit=False) as tx:
            rows = tx.query(
                "SELECT id, group_key, summary, payload, attempts, next_attempt_at "
                "FROM slack_outbox WHERE status = 'pending' ORDER BY id LIMIT 1"
            )
        if not rows or rows[0]["next_attempt_at"] > now:
            return None
        row = rows[0]
        return Message(
            row["id"], row["group_key"], row["summary"], orjson.loads(row["payload"]),
            row["attempts"],
        )  # fmt: skip

    def pending(self) -> bool:
        """Whether a message will still be sent: one ``pending``, due now or waiting
        for a retry's backoff or a 429's Retry-After."""
        with self.store.transaction(commit=False) as tx:
            rows = tx.query("SELECT 1 AS found FROM slack_outbox WHERE status = 'pending' LIMIT 1")
        return bool(rows)

    def claim(self, message_id: int, now: float) -> bool:
        """Mark the message ``sending``, durably; False if it is not pending any more."""
        with _durably(self.store) as tx:
            claimed = tx.query(
                "UPDATE slack_outbox SET status = 'sending', claimed_at = ? "
                "WHERE id = ? AND status = 'pending' RETURNING id",
                (now, message_id),
            )
        return bool(claimed)

    def finish(self, message: Message, outcome: Outcome, now: float) -> str:
        """Record how a delivery ended; returns the message's new status."""
        # A 429 is Slack pacing us, not a failed attempt.
        attempts = message.attempts + (outcome.retry_after is None)
        if outcome.status == "sent":
            status, wait = SENT, 0.0
        elif outcome.status == "retry" and outcome.retry_after is not None:
            status, wait = PENDING, outcome.retry_after
        elif outcome.status == "retry" and attempts < MAX_ATTEMPTS:
            status, wait = PENDING, backoff(attempts)
        elif outcome.status == "unknown":
            status, wait = UNKNOWN, 0.0
        else:
            status, wait = FAILED, 0.0
        error = outcome.error or None
        if status == FAILED and outcome.status == "retry":
            error = f"gave up after {attempts} attempts; last: {outcome.error}"
        with self.store.transaction(commit=True) as tx:
            tx.execute(
                "UPDATE slack_outbox SET status = ?, attempts = ?, next_attempt_at = ?, "
                "finished_at = ?, error = ? WHERE id = ?",
                (
                    status,
                    attempts,
                    now + wait,
                    now if status != PENDING else None,
                    error,
                    message.id,
                ),
            )
        return status

    def recover(self, now: float) -> list[dict[str, Any]]:
        """Messages left ``sending`` by a collector that stopped mid-delivery: marked
        ``unknown``, never sent again."""
        with self.store.transaction(commit=True) as tx:
            return tx.query(
                "UPDATE slack_outbox SET status = 'unknown', finished_at = ?, error = ? "
                "WHERE status = 'sending' RETURNING id, group_key, summary",
                (
                    now,
                    "in flight when the collector stopped: Slack may or may not have it; "
                    "not sent again",
                ),
            )


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 2, 4, 8, 16, … up to five minutes."""
    return float(min(300, 2**attempts))


@contextmanager
def _durably(store: AnyViewRecorder) -> Iterator[Tx]:
    """A transaction whose commit is on disk when it returns. The views' SQLite
    transactions trade that for speed (a power cut may undo the last ones); a message
    marked ``sending`` must stay marked whatever happens after."""
    if store.postgres:
        with store.transaction(commit=True) as tx:
            yield tx
        return
    sqlite = cast(SQLiteViewRecorder, store)
    with sqlite.datastore.get_connection(commit=True) as connection:
        connection._sqlite_conn.execute("PRAGMA synchronous = FULL")
        with connection.transaction(commit=True) as cursor:
            yield Tx(cast(Cursor, cursor), postgres=False)


def deliveries(
    store: AnyViewRecorder, *, problems: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest messages (only those not delivered, with ``problems``), newest first."""
    clause = "WHERE status IN ('failed', 'unknown')" if problems else ""
    with store.transaction(commit=False) as tx:
        rows = tx.query(
            "SELECT id, group_key, status, summary, created_at, attempts, finished_at, error "
            f"FROM slack_outbox {clause} ORDER BY id DESC LIMIT ?",
            (limit,),
        )
    return [
        {**row, "created_at": iso(row["created_at"]), "finished_at": iso(row["finished_at"])}
        for row in rows
    ]
