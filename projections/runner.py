"""The runner: keeps every view caught up with the ledger, and rebuilds them.

It reads the ledger's notification log in batches from the lowest tracked position
and hands each view the facts it has not seen, all in one transaction per batch that
also advances each view's tracking record. The library's tracking insert refuses a
position that does not advance, so if another runner got there first the whole batch
rolls back and this one re-reads where the views are: nothing is applied twice or
skipped, whatever crashes or runs concurrently.

Reading is by polling (``select_notifications``), which works on both backends:
SQLite has no subscriptions in eventsourcing 9.5, and polling from a tracked position
is what a subscription does anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from itertools import takewhile
from typing import Any, cast

import orjson
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    OperationalError,
    Tracking,
)

from ledger.application import Ledger
from ledger.domain import CHAIN_ID, LedgerEntry
from ledger.errors import InvalidInput
from ledger.store import StoreLocation
from projections.advisories import AdvisoriesView
from projections.builds import BuildsView
from projections.failures import FailuresView
from projections.generations import GenerationsView
from projections.history import HistoryView
from projections.placements import PlacementsView
from projections.reports import ReportsView
from projections.store import AnyViewRecorder, Tx, open_views, to_micros, tracking_name
from projections.view import Fact, View

VIEW_CLASSES: tuple[type[View], ...] = (
    BuildsView,
    PlacementsView,
    GenerationsView,
    HistoryView,
    FailuresView,
    ReportsView,
    AdvisoriesView,
)
VIEW_NAMES = tuple(cls.name for cls in VIEW_CLASSES)
READ_BATCH = 1000
COMMIT_EVENTS = 100_000
COMMIT_SECONDS = 1.0
MAX_RACES = 50

Progress = Callable[[int], None]


def _rolled_back(error: OperationalError) -> bool:
    """Whether PostgreSQL rolled the transaction back for a clash with another one."""
    import psycopg  # here: SQLite commands need not load it

    return isinstance(
        error.__cause__, psycopg.errors.TransactionRollback | psycopg.errors.DeadlockDetected
    )


@dataclass(frozen=True)
class Stop:
    """Where a catch-up stops: no fact past ``position``, none recorded after
    ``recorded_by`` (epoch microseconds); ``None`` for no limit."""

    position: int | None = None
    recorded_by: int | None = None


@dataclass(frozen=True)
class ViewStatus:
    name: str
    description: str
    notification_id: int
    position: int
    head: int

    @property
    def lag(self) -> int:
        return self.head - self.position


class Views:
    """The ledger's views, in the ledger's database or in another one."""

    def __init__(
        self,
        ledger: Ledger,
        location: StoreLocation | None = None,
        *,
        batch: int = READ_BATCH,
        commit_events: int = COMMIT_EVENTS,
    ) -> None:
        self.ledger = ledger
        self.batch = batch
        self.commit_events = commit_events
        self.commit_seconds = COMMIT_SECONDS
        self.location = location or ledger.location
        self.recorder: AnyViewRecorder = open_views(self.location)
        self.views: dict[str, View] = {cls.name: cls(self.recorder) for cls in VIEW_CLASSES}
        self.applied = 0
        """How many facts catching up has kept (read and not left out by a stop)."""
        mapper = ledger.mapper
        self._plain_state = mapper.cipher is None and mapper.compressor is None
        """Whether stored states are plain JSON (no cipher or compression configured)."""
        self._create_tables(self.views.values())

    @property
    def embedded(self) -> bool:
        """Views in a SQLite file: queries bring them up to date before answering."""
        return self.location.backend == "sqlite"

    def _create_tables(self, views: Iterable[View], *, reading: bool = True) -> None:
        """Create the views' tables (and, with ``reading``, the indexes only queries
        use). A view whose tables were made by an older version of its code
        (``View.schema_version``) is dropped and forgotten first, so the next catch-up
        rebuilds it: an upgrade needs no manual step."""
        with self.recorder.transaction(commit=True) as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS view_schemas "
                "(name TEXT PRIMARY KEY, version BIGINT NOT NULL)"
            )
            made = dict(tx.tuples("SELECT name, version FROM view_schemas"))
            for view in views:
                if made.get(view.name, 1) != view.schema_version:
                    for table in (*view.tables, *view.former_tables):
                        tx.execute(f"DROP TABLE IF EXISTS {table}")
                    self.recorder.forget(tx, tracking_name(view.name))
                for statement in (*view.ddl, *(view.read_ddl if reading else ())):
                    tx.execute(statement)
            tx.insert(
                "view_schemas",
                ("name", "version"),
                [(view.name, view.schema_version) for view in views],
                update_on="name",
            )

    # --- reading ----------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.recorder.transaction(commit=False) as tx:
            return tx.query(sql, params)

    def read(self) -> AbstractContextManager[Tx]:
        """A read-only transaction, for several queries that must agree."""
        return self.recorder.transaction(commit=False)

    # --- following --------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        """The last notification id each view has processed (0: none yet)."""
        return {
            name: self.recorder.max_tracking_id(tracking_name(name)) or 0 for name in self.views
        }

    def lag(self) -> int:
        """Events the slowest view has still to process."""
        head_position, _ = self.ledger.head()
        return head_position - self._position_of(min(self.positions().values()))

    def status(self) -> list[ViewStatus]:
        head_position, _ = self.ledger.head()
        positions = self.positions()
        # Views usually stand at the same notification: look each one up once.
        position_of = {n: self._position_of(n) for n in set(positions.values())}
        return [
            ViewStatus(name, self.views[name].description, n, position_of[n], head_position)
            for name, n in positions.items()
        ]

    def _position_of(self, notification_id: int) -> int:
        if notification_id == 0:
            return 0
        found = self.ledger.recorder.select_notifications(notification_id, 1)
        return found[0].originator_version if found else 0

    def catch_up(
        self,
        progress: Progress | None = None,
        *,
        until: int | None = None,
        known_at: datetime | None = None,
    ) -> int:
        """Process every fact the views have not seen; returns how many were read.

        ``until``: apply nothing past that position. ``known_at``: leave out the facts
        recorded after that moment (``recorded_at`` later than it); they count as read,
        so views caught up this way never get them. Both are for replays into scratch
        views (``projections.replay``), never for the live ones.
        """
        stop = Stop(until, None if known_at is None else to_micros(known_at))
        read = [0]
        for _ in range(MAX_RACES):
            try:
                self._run(self.positions(), progress, read, stop)
                return read[0]
            except IntegrityError:
                pass  # another runner advanced a view first: nothing of ours was kept
            except OperationalError as error:
                # SQLite: another connection held the write lock when this one wanted
                # it; PostgreSQL: two runners deadlocked. Either way, try again. A
                # database that cannot be reached is for the caller to wait out.
                if self.recorder.postgres and not _rolled_back(error):
                    raise
            time.sleep(0.05)
        self._run(self.positions(), progress, read, stop)
        return read[0]

    def _run(
        self, positions: dict[str, int], progress: Progress | None, read: list[int], stop: Stop
    ) -> None:
        """Apply batches in transactions of up to ``commit_events`` events or
        ``commit_seconds`` seconds, whichever comes first: fewer, larger commits write each
        changed page once, and a transaction stays short enough not to hold up the
        ledger's writers."""
        start = min(positions.values(), default=0)
        while True:
            batch = self._select(start, stop)
            if not batch:
                return
            with self.recorder.transaction(commit=True) as tx:
                began, in_transaction = time.monotonic(), 0
                while True:
                    facts = self._decode(batch, stop)
                    self.applied += len(facts)
                    last = batch[-1].id
                    for name, view in self.views.items():
                        if positions[name] < last:
                            self._feed(tx, view, facts, positions[name])
                    in_transaction += len(batch)
                    start, full = last, len(batch) == self.batch
                    if progress:
                        progress(len(batch))
                    if (
                        not full
                        or in_transaction >= self.commit_events
                        or time.monotonic() - began >= self.commit_seconds
                        or not (batch := self._select(start, stop))
                    ):
                        break
                for name in self.views:
                    if positions[name] < last:
                        self.recorder.track(tx, Tracking(tracking_name(name), last))
            positions = {name: max(seen, last) for name, seen in positions.items()}
            read[0] += in_transaction
            if not full:
                return

    def _select(self, start: int, stop: Stop) -> Sequence[Notification]:
        batch = self.ledger.recorder.select_notifications(
            start, self.batch, inclusive_of_start=False
        )
        if (until := stop.position) is None:
            return batch
        # Notification ids may skip (PostgreSQL's sequence) but grow with the positions:
        # cut the batch at the first fact past the stop. A shorter batch ends the run.
        return list(
            takewhile(lambda n: n.originator_id != CHAIN_ID or n.originator_version <= until, batch)
        )

    def _decode(self, batch: Sequence[Notification], stop: Stop) -> list[Fact]:
        if self._plain_state:
            # The views need the event only: read it straight from the stored JSON
            # (orjson), without the library's decoder and domain objects. A quarter of
            # a rebuild went into those. Entries upcast from an older class version go
            # the library's way.
            facts = []
            for n in batch:
                if n.originator_id == CHAIN_ID:
                    state = orjson.loads(n.state)
                    if "class_version" in state:
                        facts.append(self._from_mapper(n))
                    else:
                        event = state["event"]
                        facts.append(Fact(n.id, n.originator_version, event["kind"], event))
        else:
            facts = [self._from_mapper(n) for n in batch if n.originator_id == CHAIN_ID]
        if stop.recorded_by is None:
            return facts
        return [f for f in facts if to_micros(f.event["recorded_at"]) <= stop.recorded_by]

    def _from_mapper(self, notification: Notification) -> Fact:
        entry = cast(LedgerEntry, self.ledger.mapper.to_domain_event(notification))
        return Fact.from_entry(notification.id, entry)

    def _feed(self, tx: Tx, view: View, facts: list[Fact], after: int) -> None:
        kinds = view.kinds
        if facts and facts[0].notification_id > after:
            mine = [f for f in facts if f.kind in kinds]
        else:  # this view has seen part of the batch already
            mine = [f for f in facts if f.notification_id > after and f.kind in kinds]
        if mine:
            view.apply(tx, mine)

    def follow(self, interval: float, progress: Progress | None = None) -> None:
        """Catch up, then keep polling for new facts until interrupted."""
        while True:
            self.catch_up(progress)
            time.sleep(interval)

    # --- rebuilding -------------------------------------------------------------------

    def rebuild(self, names: Sequence[str] = (), progress: Progress | None = None) -> int:
        """Drop the named views (all when none), reset their tracking, replay the stream.

        The indexes only queries read are made after the replay: one sort per index
        instead of an update per row. Should the rebuild stop half-way, the next
        ``Views`` opened on the database makes them (queries are right meanwhile, only
        slower)."""
        chosen = self.reset(names, reading=False)
        replayed = self.catch_up(progress)
        self._create_tables(chosen)
        if self.recorder.postgres:
            # Fresh statistics for the query planner. (SQLite's ANALYZE reads whole
            # tables, and its planner does well on these indexes without it.)
            with self.recorder.transaction(commit=True) as tx:
                for view in chosen:
                    for table in view.tables:
                        tx.execute(f"ANALYZE {table}")
        return replayed

    def reset(self, names: Sequence[str] = (), *, reading: bool = True) -> list[View]:
        """Empty the named views (all when none) and forget their tracking positions
        (``reading``: create the indexes only queries use now, not later)."""
        unknown = [name for name in names if name not in self.views]
        if unknown:
            raise InvalidInput(
                f"no view named {unknown[0]!r}: the views are {', '.join(VIEW_NAMES)}"
            )
        chosen = [self.views[name] for name in (names or VIEW_NAMES)]
        with self.recorder.transaction(commit=True) as tx:
            for view in chosen:
                for table in view.tables:
                    tx.execute(f"DROP TABLE IF EXISTS {table}")
                self.recorder.forget(tx, tracking_name(view.name))
        self._create_tables(chosen, reading=reading)
        return chosen

    def dump(self, name: str) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of a view's tables, sorted: for comparing two builds of a view."""
        dumped = {}
        for table in self.views[name].tables:
            rows = self.query(f"SELECT * FROM {table}")
            dumped[table] = sorted((tuple(row.values()) for row in rows), key=repr)
        return dumped
