"""Batched ingest throughput, and the raw baseline it is compared with.

Ledger side: ``ledger.importers.jsonl.ingest`` on a fresh, empty ledger, exactly what
``ledger ingest FILE`` runs (without its progress bars): the validation pass (parse and
validate every line, look up event ids and generation numbers) and the append pass
(batches of 1000 events, each one transaction: read the head, look up the ids, build the
hash chain, insert the events and the event index rows). Opening the ledger and creating
its tables are not timed.

Raw side: the rows the ledger stored in its events table (originator_id,
originator_version, topic, state), read back into memory first, then inserted into a
fresh table made with the same DDL as the library's events table, with one
``executemany`` in one transaction, commit included: plain ``sqlite3`` (WAL journal mode,
as the library sets) or psycopg 3. No parsing, validation, hashing, serialisation, event
index or table lock: that is what the ratio ledger/raw measures.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql

from bench.events import EventsFile
from bench.postgres import create_schema, drop_schema, ledger_url
from ledger.application import Ledger
from ledger.importers.jsonl import ingest
from ledger.store import locate

COLUMNS = "originator_id, originator_version, topic, state"


@dataclass(frozen=True)
class Throughput:
    backend: str
    events: int
    ledger_seconds: float
    raw_seconds: float

    @property
    def ledger_rate(self) -> float:
        return self.events / self.ledger_seconds

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def ratio(self) -> float:
        """Ledger events/s over raw rows/s."""
        return self.ledger_rate / self.raw_rate


def timed_ingest(ledger: Ledger, events: EventsFile, batch_size: int) -> float:
    """Seconds ``ingest()`` takes to store the whole file."""
    with events.path.open("rb") as stream:
        start = time.perf_counter()
        report = ingest(ledger, stream, source="file", batch_size=batch_size)
        seconds = time.perf_counter() - start
    if report.stored != events.events:
        raise RuntimeError(f"ingest stored {report.stored} of {events.events} events")
    return seconds


def sqlite_throughput(events: EventsFile, workdir: Path, batch_size: int) -> Throughput:
    path = workdir / "ingest.db"
    ledger = Ledger(locate(str(path)), create=True)
    try:
        ledger_seconds = timed_ingest(ledger, events, batch_size)
        table = cast(SQLiteApplicationRecorder, ledger.recorder).events_table_name
    finally:
        ledger.close()
    with closing(sqlite3.connect(path)) as conn:
        ddl = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
        rows = conn.execute(f"SELECT {COLUMNS} FROM {table} ORDER BY rowid").fetchall()
    raw_path = workdir / "raw.db"
    with closing(sqlite3.connect(raw_path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(ddl)
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} VALUES (?,?,?,?)", rows)
        conn.execute("COMMIT")
        raw_seconds = time.perf_counter() - start
    for file in [*workdir.glob("ingest.db*"), *workdir.glob("raw.db*")]:
        file.unlink()
    return Throughput("SQLite", events.events, ledger_seconds, raw_seconds)


def postgres_throughput(events: EventsFile, server_url: str, batch_size: int) -> Throughput:
    schema = create_schema(server_url, "bench_ingest")
    try:
        ledger = Ledger(locate(ledger_url(server_url, schema)), create=True)
        try:
            ledger_seconds = timed_ingest(ledger, events, batch_size)
            recorder = cast(PostgresApplicationRecorder, ledger.recorder)
        finally:
            ledger.close()
        table = sql.SQL("{}.{}").format(
            sql.Identifier(schema), sql.Identifier(recorder.events_table_name)
        )
        with psycopg.connect(server_url, autocommit=True) as conn:
            rows: list[tuple[Any, ...]] = conn.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY notification_id").format(
                    sql.SQL(COLUMNS), table
                )
            ).fetchall()
            # The library's own statements for its events table (primary key, bigserial
            # notification_id) and the unique index on notification_id, re-run in the
            # emptied schema.
            statements = recorder.sql_create_statements
            ddl = [statements[recorder.create_table_statement_index]] + [
                s for s in statements if recorder.notification_id_index_name in s.as_string(conn)
            ]
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            for statement in ddl:
                conn.execute(statement)
        insert = sql.SQL("INSERT INTO {} ({}) VALUES (%s, %s, %s, %s)").format(
            table, sql.SQL(COLUMNS)
        )
        with psycopg.connect(server_url) as conn:
            start = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(insert, rows)
            raw_seconds = time.perf_counter() - start
    finally:
        drop_schema(server_url, schema)
    return Throughput("PostgreSQL", events.events, ledger_seconds, raw_seconds)
