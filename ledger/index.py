"""The event index kept beside the events table, common to both backends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol
from uuid import UUID

INDEX_TABLE = "ledger_event_index"


class IndexRow(NamedTuple):
    event_id: UUID
    position: int
    env: str
    kind: str
    planned_generation: int | None
    digest: str


class IndexedEvent(NamedTuple):
    position: int
    digest: str


class LedgerRecorder(Protocol):
    """What the ledger needs of a recorder beyond the library's application recorder."""

    events_table_name: str

    def has_tables(self) -> bool: ...

    def lookup_event_ids(self, event_ids: Iterable[UUID]) -> dict[UUID, IndexedEvent]: ...

    def last_generations(self, envs: Iterable[str]) -> dict[str, int]: ...

    def index_count(self) -> int: ...
