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

    def connection_problem(self) -> str | None:
        """Why the store cannot be reached right now (naming server and cause), or
        ``None``: for messages when an operation failed without saying why."""
        ...

    def index_rows(self, first: int, last: int) -> list[IndexRow]:
        """The index rows whose positions lie in ``first..last``, in position order."""
        ...
