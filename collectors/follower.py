"""Following the ledger from a durable position of one's own.

A collector reads the facts after its tracked position, delivers them (to Riemann, into
the alert state), and only then confirms: its position moves in the ledger's database,
in the library's tracking table under a name of its own (``Collector/riemann``). After
a crash or a restart it reads again from the last confirmed position, so nothing is
lost; what was delivered but not yet confirmed is delivered again (at least once).

Reading is by polling the notification log, on both backends (as the views do). A
collector only reads: the ledger's writers never wait for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from eventsourcing.persistence import Tracking

from ledger.application import Ledger
from ledger.domain import CHAIN_ID, TOPICS, LedgerEntry
from projections.store import AnyViewRecorder, Tx, open_views
from projections.view import Fact

PREFIX = "Collector"


def tracking_name(collector: str) -> str:
    """The tracking key of a collector (views use ``Ledger/<view>``)."""
    return f"{PREFIX}/{collector}"


class Follower:
    """Reads the ledger after a collector's confirmed position, and confirms."""

    def __init__(
        self, ledger: Ledger, name: str, *, kinds: Iterable[str] = (), batch: int = 500
    ) -> None:
        self.ledger = ledger
        self.name = tracking_name(name)
        self.batch = batch
        self.topics = tuple(TOPICS[kind] for kind in sorted(set(kinds)))
        self.store: AnyViewRecorder = open_views(ledger.location)

    def position(self) -> int:
        """The last notification id confirmed (0: nothing yet)."""
        return self.store.max_tracking_id(self.name) or 0

    def read(self, after: int, limit: int | None = None) -> list[Fact]:
        """Up to ``limit`` facts (of the collector's kinds) after notification ``after``."""
        return self.read_with_hashes(after, limit)[0]

    def read_with_hashes(
        self, after: int, limit: int | None = None
    ) -> tuple[list[Fact], list[str]]:
        """``read``, with each fact's chain hash (for consumers that verify the chain)."""
        notifications = self.ledger.recorder.select_notifications(
            after, limit or self.batch, topics=self.topics, inclusive_of_start=False
        )
        to_domain_event = self.ledger.mapper.to_domain_event
        facts: list[Fact] = []
        hashes: list[str] = []
        for notification in notifications:
            if notification.originator_id != CHAIN_ID:
                continue
            entry = cast(LedgerEntry, to_domain_event(notification))
            facts.append(Fact.from_entry(notification.id, entry))
            hashes.append(entry.hash)
        return facts, hashes

    def confirm(self, notification_id: int, also: Callable[[Tx], None] | None = None) -> None:
        """Move the position to ``notification_id``, with ``also``'s writes in the same
        transaction (a collector's own state moves with its position, or not at all)."""
        with self.store.transaction(commit=True) as tx:
            if also is not None:
                also(tx)
            self.store.track(tx, Tracking(self.name, notification_id))

    def close(self) -> None:
        self.store.datastore.close()
