"""The ledger's SQLite recorder: the library's events table plus the event index, both
append-only by trigger.

The index (``ledger_event_index``) maps every ``event_id`` to its position and holds
the numbers of planned generations. It is written in the same transaction as the
events, so its primary key is what makes a re-sent event a no-op and its unique keys
are what keep generation numbers free of duplicates, also under concurrent writers.

The Merkle tree's nodes (``ledger_merkle_nodes``) are written in the same transaction
too; their primary key makes a writer that built on a stale head fail like the index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ledger.index import INDEX_TABLE, MERKLE_TABLE, IndexedEvent, IndexRow, MerkleNode

_CHUNK = 500  # bound on SQL variables per statement


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        # Triggers refuse UPDATE and DELETE, as on PostgreSQL. Anyone with the file can
        # drop them; the hash chain is what catches that (``ledger verify``).
        refuse = [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the deployment ledger is append-only: "
            f"{op} on {table} refused'); END"
            for table in (self.events_table_name, INDEX_TABLE, MERKLE_TABLE)
            for op in ("UPDATE", "DELETE")
        ]
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} ("
            "event_id TEXT PRIMARY KEY, "
            "position INTEGER NOT NULL UNIQUE, "
            "env TEXT NOT NULL, "
            "kind TEXT NOT NULL, "
            "planned_generation INTEGER, "
            "digest TEXT NOT NULL) WITHOUT ROWID",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {INDEX_TABLE}_generation "
            f"ON {INDEX_TABLE} (env, planned_generation) "
            "WHERE planned_generation IS NOT NULL",
            f"CREATE TABLE IF NOT EXISTS {MERKLE_TABLE} ("
            "level INTEGER NOT NULL, "
            "idx INTEGER NOT NULL, "
            "hash BLOB NOT NULL, "
            "PRIMARY KEY (level, idx)) WITHOUT ROWID",
            *refuse,
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        index_rows: Sequence[IndexRow] = (),
        merkle_nodes: Sequence[MerkleNode] = (),
        **_: Any,
    ) -> Sequence[int] | None:
        # One executemany instead of the library's row-by-row loop. The transaction
        # holds SQLite's write lock, so the new rows get the largest rowids, in order.
        c.executemany(
            self.insert_events_statement,
            [
                (
                    s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                    s.originator_version,
                    s.topic,
                    s.state,
                )
                for s in stored_events
            ],
        )
        c.executemany(
            f"INSERT INTO {INDEX_TABLE} VALUES (?,?,?,?,?,?)",
            [
                (str(r.event_id), r.position, r.env, r.kind, r.planned_generation, r.digest)
                for r in index_rows
            ],
        )
        if merkle_nodes:
            c.executemany(f"INSERT INTO {MERKLE_TABLE} VALUES (?,?,?)", merkle_nodes)
        c.execute(self.select_max_notification_id_statement)
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))

    def has_tables(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN (?, ?)",
                (self.events_table_name, INDEX_TABLE),
            )
            return int(c.fetchone()[0]) == 2

    def lookup_event_ids(self, event_ids: Iterable[UUID]) -> dict[UUID, IndexedEvent]:
        ids = [str(i) for i in event_ids]
        found: dict[UUID, IndexedEvent] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                c.execute(
                    f"SELECT event_id, position, digest FROM {INDEX_TABLE} "
                    f"WHERE event_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    found[UUID(row[0])] = IndexedEvent(position=row[1], digest=row[2])
        return found

    def last_generations(self, envs: Iterable[str]) -> dict[str, int]:
        result: dict[str, int] = {}
        with self.datastore.transaction(commit=False) as c:
            for env in set(envs):
                # "IS NOT NULL" lets SQLite use the partial index on (env, number) instead
                # of reading every index row: MAX ignores NULLs either way.
                c.execute(
                    f"SELECT MAX(planned_generation) FROM {INDEX_TABLE} "
                    "WHERE env = ? AND planned_generation IS NOT NULL",
                    (env,),
                )
                result[env] = int(c.fetchone()[0] or 0)
        return result

    def index_count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {INDEX_TABLE}")
            return int(c.fetchone()[0])

    def connection_problem(self) -> str | None:
        return None  # a file: its errors say what is wrong

    def index_rows(self, first: int, last: int) -> list[IndexRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT event_id, position, env, kind, planned_generation, digest "
                f"FROM {INDEX_TABLE} WHERE position BETWEEN ? AND ? ORDER BY position",
                (first, last),
            )
            return [
                IndexRow(_uuid(row[0]), row[1], row[2], row[3], row[4], row[5])
                for row in c.fetchall()
            ]

    def has_merkle_table(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name = ?",
                (MERKLE_TABLE,),
            )
            return int(c.fetchone()[0]) == 1

    def merkle_nodes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        wanted = list(keys)
        found: dict[tuple[int, int], bytes] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(wanted), _CHUNK // 2):
                chunk = wanted[start : start + _CHUNK // 2]
                # OR'd key pairs, not `(level, idx) IN (VALUES …)`: SQLite 3.40 plans that
                # as a scan of the whole table, and this as primary-key searches.
                c.execute(
                    f"SELECT level, idx, hash FROM {MERKLE_TABLE} WHERE "
                    + " OR ".join(["(level = ? AND idx = ?)"] * len(chunk)),
                    [value for key in chunk for value in key],
                )
                for level, idx, value in c.fetchall():
                    found[level, idx] = bytes(value)
        return found

    def add_merkle_nodes(self, nodes: Iterable[MerkleNode]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(f"INSERT OR IGNORE INTO {MERKLE_TABLE} VALUES (?,?,?)", nodes)


def _uuid(value: object) -> UUID:
    """An index row's event id; a value that is no UUID (written behind the ledger's
    back) becomes the nil UUID, which no event has, so verify reports it."""
    try:
        return UUID(str(value))
    except ValueError:
        return UUID(int=0)
