"""The ledger's PostgreSQL recorder: the library's events table, the event index, and
triggers that make both append-only.

See ``ledger.sqlite`` for what the index is for. Here the index rows are inserted in the
library's pre-insert hook, in the same transaction as the events (before the library's
``LOCK TABLE … IN EXCLUSIVE MODE``); rows are sorted by event id so that two writers
racing on overlapping batches wait for each other instead of deadlocking.

Both tables are written with binary ``COPY`` rather than the library's ``INSERT …
SELECT FROM unnest(composite[])``: psycopg builds that array parameter in Python, text
escaping every event's bytes, which cost more than the database's own work. The
library's protocol is kept statement for statement: lock the events table, notify,
insert, then read back the new rows' notification ids (the lock makes them the only
ones above the largest id before the insert), all in one transaction.

The Merkle tree's nodes (``ledger_merkle_nodes``) are inserted beside the index rows,
sorted by key for the same reason; a writer that built on a stale head collides on
their primary key (or on the events') and ``Ledger.append`` starts over.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.errors import StoreUnavailable
from ledger.index import INDEX_TABLE, MERKLE_TABLE, IndexedEvent, IndexRow, MerkleNode

log = logging.getLogger("ledger.store")

REFUSE_FUNCTION = "ledger_refuse_change"
PROBE_TIMEOUT = 2  # seconds; libpq's smallest connect_timeout
INSERT_ATTEMPTS = 10
INSERT_RETRY_WAIT = 0.2


def connection_problem(kwargs: Mapping[str, Any]) -> str | None:
    """Why a connection with these settings fails, in one line naming the server and
    the cause (refused, no such database, authentication failed), or ``None``.

    The library's pool retries in the background and, when it gives up, only says it
    "couldn't get a connection after N sec"; one direct attempt says why at once.
    """
    settings = {k: kwargs[k] for k in ("dbname", "host", "port", "user", "password") if k in kwargs}
    try:
        psycopg.connect(**settings, connect_timeout=PROBE_TIMEOUT).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {_server(settings)}: {_cause(error)}"
    return None


def _server(settings: Mapping[str, Any]) -> str:
    host = str(settings.get("host") or "localhost")
    return f"{host}:{settings.get('port') or 5432}"


def _cause(error: psycopg.Error) -> str:
    """libpq's reason without its preamble: 'connection to server at "h", port p
    failed: FATAL:  database "x" does not exist' becomes 'database "x" does not exist'."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    reason = re.split(r"\bfailed: ", lines[0])[-1]
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason).strip()
    if reason == "Connection refused":
        return "connection refused (is the server running there and listening on that port?)"
    return reason[:1].lower() + reason[1:]


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        problem = connection_problem(cast(Mapping[str, Any], datastore.pool.kwargs))
        if problem is not None:
            datastore.close()
            raise StoreUnavailable(f"cannot connect to the ledger's {problem}")
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(self.datastore.schema),
            "events": Identifier(self.events_table_name),
            "index": Identifier(INDEX_TABLE),
            "merkle": Identifier(MERKLE_TABLE),
            "generation_index": Identifier(f"{INDEX_TABLE}_generation"),
            "refuse": Identifier(REFUSE_FUNCTION),
        }
        statements = [
            "CREATE TABLE IF NOT EXISTS {schema}.{index} ("
            "event_id uuid PRIMARY KEY, "
            "position bigint NOT NULL UNIQUE, "
            "env text NOT NULL, "
            "kind text NOT NULL, "
            "planned_generation bigint, "
            "digest text NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS {generation_index} "
            "ON {schema}.{index} (env, planned_generation) "
            "WHERE planned_generation IS NOT NULL",
            "CREATE TABLE IF NOT EXISTS {schema}.{merkle} ("
            "level smallint NOT NULL, "
            "idx bigint NOT NULL, "
            "hash bytea NOT NULL, "
            "PRIMARY KEY (level, idx))",
            "CREATE OR REPLACE FUNCTION {schema}.{refuse}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'the deployment ledger is append-only: % on % refused', "
            "TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
            "END $$",
        ]
        for table in ("events", "index", "merkle"):
            statements += [
                "CREATE OR REPLACE TRIGGER ledger_append_only "
                f"BEFORE UPDATE OR DELETE ON {{schema}}.{{{table}}} "
                "FOR EACH ROW EXECUTE FUNCTION {schema}.{refuse}()",
                "CREATE OR REPLACE TRIGGER ledger_no_truncate "
                f"BEFORE TRUNCATE ON {{schema}}.{{{table}}} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{refuse}()",
            ]
        self.sql_create_statements += [SQL(s).format(**names) for s in statements]
        self._copy_index = SQL(
            "COPY {schema}.{index} (event_id, position, env, kind, planned_generation, digest) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(**names)
        self._copy_events = SQL(
            "COPY {schema}.{events} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(**names)
        self._insert_merkle = SQL(
            "INSERT INTO {schema}.{merkle} (level, idx, hash) "
            "SELECT * FROM unnest(%s::int2[], %s::int8[], %s::bytea[])"
        ).format(**names)
        self._select_merkle = SQL(
            "SELECT level, idx, hash FROM {schema}.{merkle} "
            "WHERE (level, idx) IN (SELECT * FROM unnest(%s::int2[], %s::int8[]))"
        ).format(**names)
        self._add_merkle = SQL(
            "INSERT INTO {schema}.{merkle} (level, idx, hash) "
            "SELECT * FROM unnest(%s::int2[], %s::int8[], %s::bytea[]) "
            "ON CONFLICT DO NOTHING"
        ).format(**names)
        self._event_types = [self.datastore.originator_id_type, "int8", "text", "bytea"]
        self._max_notification_id = SQL(
            "SELECT MAX(notification_id) AS last FROM {schema}.{events}"
        ).format(**names)
        self._new_notification_ids = SQL(
            "SELECT notification_id FROM {schema}.{events} WHERE notification_id > %s "
            "ORDER BY notification_id"
        ).format(**names)
        # Ids as one text array literal: psycopg dumps a list of UUIDs item by item.
        self._select_ids = SQL(
            "SELECT event_id, position, digest FROM {schema}.{index} "
            "WHERE event_id = ANY(%s::uuid[])"
        ).format(**names)
        self._select_generation = SQL(
            "SELECT env, MAX(planned_generation) AS last FROM {schema}.{index} "
            "WHERE env = ANY(%s) GROUP BY env"
        ).format(**names)
        self._select_rows = SQL(
            "SELECT event_id, position, env, kind, planned_generation, digest "
            "FROM {schema}.{index} WHERE position BETWEEN %s AND %s ORDER BY position"
        ).format(**names)
        self._count_index = SQL("SELECT count(*) AS n FROM {schema}.{index}").format(**names)
        self._has_tables = SQL(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL AS ok"
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert, retried (with a log line each time) while the database
        cannot be reached."""
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                return self._insert_once(stored_events, **kwargs)
            except (InterfaceError, OperationalError) as error:
                if attempt == INSERT_ATTEMPTS:
                    raise
                cause = _first_line(error)
                if "couldn't get a connection" in cause:
                    cause += f" ({connection_problem(self._connect_settings()) or 'reachable now'})"
                log.warning(
                    "ledger store: storing %d events failed (%s); retrying in %.1f s "
                    "(attempt %d of %d)",
                    len(stored_events), cause, INSERT_RETRY_WAIT, attempt, INSERT_ATTEMPTS,
                )  # fmt: skip
                time.sleep(INSERT_RETRY_WAIT * random.uniform(0.95, 1.05))
        return None  # not reached: the last attempt returns or raises

    def connection_problem(self) -> str | None:
        """Why the database cannot be reached right now, or ``None`` when it can."""
        return connection_problem(self._connect_settings())

    def _connect_settings(self) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self.datastore.pool.kwargs)

    def _insert_once(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert, without pipeline mode, with ``COPY`` (module docstring).

        In pipeline mode (what the library uses) psycopg 3.3 hangs when one batch carries
        more than about a megabyte — a few build events with large closures are enough:
        the server waits for the rest of the message while the client waits to read.
        The statements and their order are the library's: our index rows, then lock the
        table, notify, insert the events and return their notification ids.
        """
        if not stored_events:
            return []
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)
            self._lock_table(curs)
            self._notify_channel(curs)
            # Under the lock no other transaction inserts events: the ids above the
            # largest one now are this COPY's, assigned in row order.
            curs.execute(self._max_notification_id)
            row = curs.fetchone()
            before = int(row["last"] or 0) if row else 0
            with curs.copy(self._copy_events) as copy:
                copy.set_types(self._event_types)
                for s in stored_events:
                    copy.write_row((s.originator_id, s.originator_version, s.topic, s.state))
            curs.execute(self._new_notification_ids, (before,))
            ids = [int(r["notification_id"]) for r in curs.fetchall()]
            if len(ids) != len(stored_events):
                raise ProgrammingError(
                    f"expected {len(stored_events)} new notification ids, found {len(ids)}"
                )
            return ids

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        index_rows: Sequence[IndexRow] = (),
        merkle_nodes: Sequence[MerkleNode] = (),
        **_: Any,
    ) -> None:
        if index_rows:
            with curs.copy(self._copy_index) as copy:
                copy.set_types(["uuid", "int8", "text", "text", "int8", "text"])
                for row in sorted(index_rows, key=lambda r: r.event_id):
                    copy.write_row(row)
        if merkle_nodes:
            # One statement, one round trip: a few dozen bytes a node need no COPY.
            nodes = sorted(merkle_nodes)
            curs.execute(
                self._insert_merkle,
                ([n[0] for n in nodes], [n[1] for n in nodes], [n[2] for n in nodes]),
            )

    def has_tables(self) -> bool:
        schema = self.datastore.schema
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                self._has_tables,
                (f'"{schema}"."{self.events_table_name}"', f'"{schema}"."{INDEX_TABLE}"'),
            )
            row = curs.fetchone()
            return bool(row and row["ok"])

    def lookup_event_ids(self, event_ids: Iterable[UUID]) -> dict[UUID, IndexedEvent]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_ids, ("{" + ",".join(map(str, event_ids)) + "}",))
            return {
                row["event_id"]: IndexedEvent(position=row["position"], digest=row["digest"])
                for row in curs.fetchall()
            }

    def last_generations(self, envs: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(envs))
        result = dict.fromkeys(wanted, 0)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_generation, (wanted,))
            for row in curs.fetchall():
                result[row["env"]] = int(row["last"] or 0)
        return result

    def index_count(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._count_index)
            row = curs.fetchone()
            return int(row["n"]) if row else 0

    def index_rows(self, first: int, last: int) -> list[IndexRow]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_rows, (first, last))
            return [IndexRow(**row) for row in curs.fetchall()]

    def has_merkle_table(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS ok",
                (f'"{self.datastore.schema}"."{MERKLE_TABLE}"',),
            )
            row = curs.fetchone()
            return bool(row and row["ok"])

    def merkle_nodes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        wanted = list(keys)
        if not wanted:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_merkle, ([k[0] for k in wanted], [k[1] for k in wanted]))
            return {(row["level"], row["idx"]): bytes(row["hash"]) for row in curs.fetchall()}

    def add_merkle_nodes(self, nodes: Iterable[MerkleNode]) -> None:
        batch = sorted(nodes)
        with self.datastore.transaction(commit=True) as curs:
            for start in range(0, len(batch), 50_000):
                chunk = batch[start : start + 50_000]
                curs.execute(
                    self._add_merkle,
                    ([n[0] for n in chunk], [n[1] for n in chunk], [n[2] for n in chunk]),
                )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
