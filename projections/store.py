"""Where the views live: their tables and tracking positions, in one database.

The views sit in the ledger's own database by default, or in another one (``--views
URL``, same URL forms as the ledger). Each backend gets a subclass of the
eventsourcing library's tracking recorder, so every view's rows and its tracking record
are written by the library's machinery in one transaction: the tracking insert refuses a
position that does not advance, which rolls the whole batch back.

SQL is written once, with ``?`` placeholders, and runs on both backends: the types
(TEXT, BIGINT, DOUBLE PRECISION), partial indexes and ``ON CONFLICT`` clauses used are
common to SQLite and PostgreSQL. Timestamps are stored as integer microseconds since
the epoch (UTC) so that they compare and index as numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast

from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment

from ledger.store import StoreLocation

UPSTREAM = "Ledger"
"""The application whose notifications the views follow."""


def tracking_name(view: str) -> str:
    """The tracking key of one view: the views share one tracking table, a row each."""
    return f"{UPSTREAM}/{view}"


def to_micros(timestamp: str | datetime) -> int:
    """A timestamp (ISO 8601 with zone, or aware datetime) as UTC epoch microseconds."""
    when = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


WITHOUT_ROWID = " /*without rowid*/"
"""Put after a table with a primary key: on SQLite the table is then stored in its
primary key's B-tree alone (one write per row instead of two); PostgreSQL ignores it."""


class Cursor(Protocol):
    def execute(self, sql: Any, params: Any = ...) -> Any: ...

    def executemany(self, sql: Any, params: Any) -> Any: ...

    def fetchall(self) -> Any: ...


class Tx:
    """One open transaction on the views database, with backend-neutral helpers."""

    def __init__(self, cursor: Cursor, *, postgres: bool) -> None:
        self.cursor = cursor
        self.postgres = postgres

    def sql(self, text: str) -> str:
        """Placeholders and table options for this backend."""
        if self.postgres:
            return text.replace("?", "%s").replace(WITHOUT_ROWID, "")
        return text.replace(WITHOUT_ROWID, " WITHOUT ROWID")

    def execute(self, text: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self.sql(text), tuple(params))

    def execute_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(self.sql(text), rows)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        ignore: str = "",
        update_on: str = "",
        update_if: str = "",
    ) -> None:
        """Insert rows. On a conflict over the columns ``ignore`` names the row is
        skipped; over those ``update_on`` names, the existing row takes its values (only
        where the condition ``update_if`` holds, when given: ``excluded.c`` is the new
        value, ``table.c`` the stored one)."""
        if not rows:
            return
        names = ", ".join(columns)
        if ignore:
            conflict = f" ON CONFLICT ({ignore}) DO NOTHING"
        elif update_on:
            keys = {c.strip() for c in update_on.split(",")}
            changes = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
            conflict = f" ON CONFLICT ({update_on}) DO UPDATE SET {changes}"
            if update_if:
                conflict += f" WHERE {update_if}"
        else:
            conflict = ""
        if not self.postgres:
            marks = ", ".join("?" for _ in columns)
            self.execute_many(f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}", rows)
        elif not conflict:
            self._copy(table, columns, rows)
        else:
            staged = self._stage(table, columns, rows)
            self.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staged}{conflict}")

    def update(
        self,
        table: str,
        key: str | Sequence[str],
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Set ``columns`` of the rows whose ``key`` (a column, or several) is each
        row's first value(s)."""
        if not rows:
            return
        keys = (key,) if isinstance(key, str) else tuple(key)
        if not self.postgres:
            changes = ", ".join(f"{c} = ?" for c in columns)
            match = " AND ".join(f"{k} = ?" for k in keys)
            self.execute_many(
                f"UPDATE {table} SET {changes} WHERE {match}",
                [(*row[len(keys) :], *row[: len(keys)]) for row in rows],
            )
            return
        staged = self._stage(table, (*keys, *columns), rows)
        changes = ", ".join(f"{c} = s.{c}" for c in columns)
        match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        self.execute(f"UPDATE {table} AS t SET {changes} FROM {staged} AS s WHERE {match}")

    # PostgreSQL: bulk writes go through COPY, which takes rows at a fraction of the
    # per-statement cost of executemany; conflicts and updates through a staging table.

    def _copy(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        with cast(Any, self.cursor).copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _stage(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        """A session-local table with these columns of ``table``, holding just ``rows``."""
        names = ", ".join(columns)
        staged = f"staged_{table}_{zlib.crc32(names.encode()):08x}"
        self.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staged} ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        self.execute(f"TRUNCATE {staged}")
        self._copy(staged, columns, rows)
        return staged

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(self.sql(text), tuple(params))
        return [dict(row) for row in self.cursor.fetchall()]

    def tuples(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: for large results, where building dicts would cost."""
        raw: Any = self.cursor if self.postgres else self.cursor.sqlite_cursor  # type: ignore[attr-defined]
        saved = raw.row_factory
        if self.postgres:
            from psycopg.rows import tuple_row

            raw.row_factory = tuple_row
        else:
            raw.row_factory = None
        try:
            raw.execute(self.sql(text), tuple(params))
            return list(raw.fetchall())
        finally:
            raw.row_factory = saved


class SQLiteViewRecorder(SQLiteTrackingRecorder):
    postgres = False

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Tx]:
        with self.datastore.get_connection(commit=commit) as connection:
            if commit:
                # Views are derived data: a commit need not wait for the disk. In WAL
                # mode a power cut can then undo the last batches (rows and tracking
                # together, so they are simply applied again), never corrupt them. The
                # ledger's own connections keep full synchronous commits.
                connection._sqlite_conn.execute("PRAGMA synchronous = NORMAL")
                connection._sqlite_conn.execute("PRAGMA wal_autocheckpoint = 16384")
            # Readers too: the pool hands its connections out in turn, and with SQLite's
            # default 2 MB each would read a large fleet's pages from the OS every time
            # (measured: 15-20 ms more per `where` on the 10,000-host fleet).
            connection._sqlite_conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
            with connection.transaction(commit=commit) as c:
                yield Tx(cast(Cursor, c), postgres=False)

    def track(self, tx: Tx, tracking: Tracking) -> None:
        self._insert_tracking(cast(Any, tx.cursor), tracking)

    def forget(self, tx: Tx, application_name: str) -> None:
        tx.execute("DELETE FROM tracking WHERE application_name = ?", (application_name,))


if TYPE_CHECKING:
    from projections.postgres import PostgresViewRecorder

    AnyViewRecorder: TypeAlias = SQLiteViewRecorder | PostgresViewRecorder
else:
    # At run time only a generic parameter (``View(Projection[AnyViewRecorder])``):
    # naming the PostgreSQL class here would import psycopg into every SQLite command.
    AnyViewRecorder = TrackingRecorder


def open_views(location: StoreLocation) -> AnyViewRecorder:
    """The views recorder on a database (its tracking table is created when missing)."""
    settings = {
        **location.settings,
        "CREATE_TABLE": "yes",
        "TRACKING_RECORDER_TOPIC": "",
    }
    settings.pop("APPLICATION_RECORDER_TOPIC", None)
    factory = InfrastructureFactory.construct(Environment("ledger_views", settings))
    recorder_class: type[TrackingRecorder] = SQLiteViewRecorder
    if location.backend == "postgres":
        from projections.postgres import PostgresViewRecorder

        recorder_class = PostgresViewRecorder
    recorder = factory.tracking_recorder(cast(Any, recorder_class))
    return cast(AnyViewRecorder, recorder)
