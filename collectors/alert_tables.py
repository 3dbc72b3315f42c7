"""The alert state's tables in the ledger's database, the lock every change to them
takes first, a row of ``alerts``, and how their times (epoch seconds) read.

- ``alerts``: one row per alert (its fingerprint), with what Slack was last told of it
  (``notified_version``, ``notified_status``); ``alert_hosts``: the hosts it is about.
- ``alert_groups``: when each group's episode started and last sent a message.
- ``alert_generations``: the generations the collector has seen planned, and how they
  ended.
- ``silences`` (``advisory``: a column added after the others); ``alert_collector``:
  the lock.

The outbox's table, ``slack_outbox``, is in ``collectors.outbox``; what advisories
expose, ``exposures`` and ``exposure_vulnerabilities``, in ``collectors.exposure_state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from projections.store import WITHOUT_ROWID, AnyViewRecorder, Tx

COLLECTOR = "slack"

DDL = (
    "CREATE TABLE IF NOT EXISTS alerts ("
    "fingerprint TEXT PRIMARY KEY, env TEXT NOT NULL, service TEXT NOT NULL, "
    "generation BIGINT NOT NULL, kind TEXT NOT NULL, group_key TEXT NOT NULL, "
    "status TEXT NOT NULL, total_hosts BIGINT NOT NULL, detail TEXT NOT NULL, "
    "resolution TEXT, started_at DOUBLE PRECISION NOT NULL, "
    "changed_at DOUBLE PRECISION NOT NULL, first_occurred BIGINT NOT NULL, "
    "position BIGINT NOT NULL, version BIGINT NOT NULL, notified_version BIGINT NOT NULL, "
    "notified_status TEXT, notified_at DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS alerts_open ON alerts (status, env, kind)",
    "CREATE TABLE IF NOT EXISTS alert_hosts ("
    "fingerprint TEXT NOT NULL, host TEXT NOT NULL, build_id TEXT NOT NULL, "
    "reason TEXT NOT NULL, occurred_at BIGINT NOT NULL, "
    "PRIMARY KEY (fingerprint, host))" + WITHOUT_ROWID,
    "CREATE INDEX IF NOT EXISTS alert_hosts_host ON alert_hosts (host)",
    "CREATE TABLE IF NOT EXISTS alert_groups ("
    "group_key TEXT PRIMARY KEY, env TEXT NOT NULL, generation BIGINT NOT NULL, "
    "started_at DOUBLE PRECISION, last_sent_at DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS alert_generations ("
    "env TEXT NOT NULL, number BIGINT NOT NULL, status TEXT NOT NULL, "
    "planned_at BIGINT NOT NULL, PRIMARY KEY (env, number))" + WITHOUT_ROWID,
    "CREATE TABLE IF NOT EXISTS silences ("
    "id TEXT PRIMARY KEY, env TEXT, service TEXT, kind TEXT, "
    "starts_at DOUBLE PRECISION NOT NULL, ends_at DOUBLE PRECISION NOT NULL, "
    "comment TEXT NOT NULL, created_by TEXT NOT NULL, expired_by TEXT, advisory TEXT)",
    "CREATE TABLE IF NOT EXISTS alert_collector ("
    "name TEXT PRIMARY KEY, stepped_at DOUBLE PRECISION NOT NULL)",
)


def create_tables(store: AnyViewRecorder) -> None:
    with store.transaction(commit=True) as tx:
        for statement in DDL:
            tx.execute(statement)
        _add_column(tx, "silences", "advisory", "TEXT")


def _add_column(tx: Tx, table: str, column: str, kind: str) -> None:
    """A column later versions added to a table that an older one made."""
    if tx.postgres:
        columns = tx.tuples(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema()",
            (table,),
        )
        found = {name for (name,) in columns}
    else:
        found = {row["name"] for row in tx.query(f"PRAGMA table_info({table})")}
    if column not in found:  # (ALTER TABLE locks the table even when it changes nothing)
        tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def lock(tx: Tx, now: float) -> None:
    """Write first in a transaction that reads, then writes alert state.

    On SQLite a transaction that has read cannot start writing once another connection
    (the ledger's writers) has committed since; writing first takes the write lock up
    front, waiting for it as for any write. On both backends it also makes concurrent
    evaluations of the alert state take turns.
    """
    tx.execute(
        "INSERT INTO alert_collector (name, stepped_at) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET stepped_at = excluded.stepped_at",
        (COLLECTOR, now),
    )


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2024-05-01T12:00:00Z``), for listings."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AlertRow:
    """A row of ``alerts``."""

    fingerprint: str
    env: str
    service: str
    generation: int
    kind: str
    group_key: str
    status: str
    total_hosts: int
    detail: str
    resolution: str | None
    started_at: float
    changed_at: float
    first_occurred: int
    position: int
    version: int
    notified_version: int
    notified_status: str | None
    notified_at: float | None

    @property
    def changed(self) -> bool:
        return self.version != self.notified_version
