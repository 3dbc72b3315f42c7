"""The stored form of ledger events: eventsourcing domain events on one chain.

Every recorded fact is one ``LedgerEntry`` of a single, linear sequence (the chain):
``originator_id`` is :data:`CHAIN_ID` and ``originator_version`` is the fact's
position, 1, 2, 3 … The eventsourcing library's optimistic concurrency on
(originator_id, originator_version) is what keeps positions gapless and the hash chain
linear when several writers append at once: the loser of a race retries on the new head.

There is one entry class per kind so that stored topics name the kind and followers can
filter by topic in the database. Never rename or move these classes without registering
the old topic (``eventsourcing.utils.register_topic``); change a kind's stored shape only
with a ``class_version`` and an upcaster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

CHAIN_ID: UUID = uuid5(NAMESPACE_URL, "https://deploy-ledger.invalid/chain")


@dataclass(frozen=True)
class LedgerEntry(DomainEvent):
    """A fact at one position of the chain.

    ``event`` is the fact in its documented JSON form; ``prev_hash`` and ``hash`` link
    it to the previous position (see ``ledger.chain``). ``timestamp`` is the
    ``recorded_at`` of the fact.
    """

    event: dict[str, Any]
    prev_hash: str
    hash: str


class BuildRecordedEntry(LedgerEntry):
    pass


class BuildFailedEntry(LedgerEntry):
    pass


class DistributionCompletedEntry(LedgerEntry):
    pass


class DistributionFailedEntry(LedgerEntry):
    pass


class ActivationCompletedEntry(LedgerEntry):
    pass


class ActivationFailedEntry(LedgerEntry):
    pass


class DrainStartedEntry(LedgerEntry):
    pass


class DrainCompletedEntry(LedgerEntry):
    pass


class DrainTimedOutEntry(LedgerEntry):
    pass


class DeactivatedEntry(LedgerEntry):
    pass


class HealthReportedEntry(LedgerEntry):
    pass


class GenerationPlannedEntry(LedgerEntry):
    pass


class GenerationCompletedEntry(LedgerEntry):
    pass


class GenerationFailedEntry(LedgerEntry):
    pass


class GenerationTaggedEntry(LedgerEntry):
    pass


class HostReportedEntry(LedgerEntry):
    pass


class AdvisoryRecordedEntry(LedgerEntry):
    pass


ENTRY_CLASSES: dict[str, type[LedgerEntry]] = {
    "build_recorded": BuildRecordedEntry,
    "build_failed": BuildFailedEntry,
    "distribution_completed": DistributionCompletedEntry,
    "distribution_failed": DistributionFailedEntry,
    "activation_completed": ActivationCompletedEntry,
    "activation_failed": ActivationFailedEntry,
    "drain_started": DrainStartedEntry,
    "drain_completed": DrainCompletedEntry,
    "drain_timed_out": DrainTimedOutEntry,
    "deactivated": DeactivatedEntry,
    "health_reported": HealthReportedEntry,
    "generation_planned": GenerationPlannedEntry,
    "generation_completed": GenerationCompletedEntry,
    "generation_failed": GenerationFailedEntry,
    "generation_tagged": GenerationTaggedEntry,
    "host_reported": HostReportedEntry,
    "advisory_recorded": AdvisoryRecordedEntry,
}
"""The entry class of each event kind."""

TOPICS: dict[str, str] = {kind: get_topic(cls) for kind, cls in ENTRY_CLASSES.items()}
"""The stored topic of each event kind, for filtering notifications in the database."""
