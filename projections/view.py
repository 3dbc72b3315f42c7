"""What every view is: an eventsourcing ``Projection`` over the ledger's entries.

A view names the event kinds it reads, the tables it owns (with their DDL) and how a
batch of facts changes those tables. The runner (``projections.runner``) hands it
batches inside one transaction that also advances the view's tracking position;
``process_event`` is the library's one-event form of the same thing.

Views must be deterministic functions of the stream: row keys come from positions,
never from sequences or the clock, so that a rebuilt view equals the incrementally
maintained one row for row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.application import batched
from ledger.domain import TOPICS, LedgerEntry
from projections.store import AnyViewRecorder, Tx

IN_LIST = 400
"""Values per ``IN (…)`` list: keeps the number of SQL parameters bounded."""


@dataclass(frozen=True)
class Fact:
    """One ledger entry as views see it."""

    notification_id: int
    position: int
    kind: str
    event: dict[str, Any]

    @classmethod
    def from_entry(cls, notification_id: int, entry: LedgerEntry) -> Fact:
        return cls(notification_id, entry.originator_version, entry.event["kind"], entry.event)


class View(Projection[AnyViewRecorder]):
    """A materialised view of the ledger: tables plus a tracking position."""

    kinds: ClassVar[frozenset[str]] = frozenset()
    tables: ClassVar[tuple[str, ...]] = ()
    """The tables the view owns, dropped on rebuild; first the one dumps start with."""
    ddl: ClassVar[tuple[str, ...]] = ()
    read_ddl: ClassVar[tuple[str, ...]] = ()
    """Indexes only the queries read (``apply`` never does). A rebuild creates them
    after the replay, in one sort each, instead of updating them row by row."""
    description: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1
    """Raise it when the tables or what they hold change: views made by an older version
    are dropped and rebuilt when next opened."""
    former_tables: ClassVar[tuple[str, ...]] = ()
    """Tables older versions of the view had and this one has not (dropped with it)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.topics = tuple(TOPICS[kind] for kind in sorted(cls.kinds) if kind in TOPICS)

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        """Change the view's tables for these facts (all of kinds the view reads)."""
        raise NotImplementedError

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's interface: one event and its tracking, in one transaction."""
        fact = Fact.from_entry(tracking.notification_id, domain_event)
        with self.view.transaction(commit=True) as tx:
            if fact.kind in self.kinds:
                self.apply(tx, [fact])
            self.view.track(tx, tracking)


def rows_for_hosts(
    tx: Tx,
    select: str,
    hosts: Iterable[str],
    *,
    build_ids: Iterable[str] = (),
    services: Iterable[str] = (),
    condition: str = "",
    group_by: str = "",
) -> list[dict[str, Any]]:
    """``select`` (a query without WHERE) for rows of the given hosts — and builds and
    services, when given, and meeting ``condition``; grouped by ``group_by`` — in
    chunks that keep the number of SQL parameters bounded. A batch names few builds and
    services, so those narrow the rows read to about the ones the batch is about."""
    where, params = [condition] if condition else [], []
    for column, values in (("build_id", build_ids), ("service", services)):
        if wanted := sorted(set(values)):
            where.append(f"{column} IN ({', '.join('?' * len(wanted))})")
            params += wanted
    rows: list[dict[str, Any]] = []
    for batch in batched(sorted(set(hosts)), IN_LIST):
        hosts_in = f"host IN ({', '.join('?' * len(batch))})"
        grouped = f" GROUP BY {group_by}" if group_by else ""
        rows += tx.query(
            f"{select} WHERE {' AND '.join([hosts_in, *where])}{grouped}", [*batch, *params]
        )
    return rows
