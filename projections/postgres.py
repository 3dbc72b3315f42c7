"""The views' recorder on PostgreSQL (imported only for a PostgreSQL store, so that a
command on SQLite never loads psycopg)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder

from projections.store import Cursor, Tx


class PostgresViewRecorder(PostgresTrackingRecorder):
    postgres = True

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Tx]:
        with self.datastore.transaction(commit=commit) as c:
            if self.datastore.schema:
                c.execute(f'SET LOCAL search_path TO "{self.datastore.schema}"')
            if commit:
                # Views look up state by key (host, build, service). While a view fills
                # up its statistics lag behind (a rebuild starts from empty tables), and
                # the planner would scan whole tables it believes tiny: keep to indexes.
                c.execute("SET LOCAL enable_seqscan = off")
            yield Tx(cast(Cursor, c), postgres=True)

    def track(self, tx: Tx, tracking: Tracking) -> None:
        self._insert_tracking(cast(Any, tx.cursor), tracking)

    def forget(self, tx: Tx, application_name: str) -> None:
        tx.execute(
            f"DELETE FROM {self.tracking_table_name} WHERE application_name = ?",
            (application_name,),
        )
