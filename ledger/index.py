"""The event index and the Merkle tree's node table kept beside the events table, common
to both backends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol
from uuid import UUID

INDEX_TABLE = "ledger_event_index"
MERKLE_TABLE = "ledger_merkle_nodes"
"""The hashes of the perfect subtrees of the Merkle tree over the chain, keyed by
``(level, idx)``: the subtree over leaves ``[idx·2^level, (idx+1)·2^level)``."""

MerkleNode = tuple[int, int, bytes]
"""``(level, idx, hash)`` of one perfect subtree."""


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

    def has_merkle_table(self) -> bool: ...

    def merkle_nodes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of those of these ``(level, idx)`` nodes that exist."""
        ...

    def add_merkle_nodes(self, nodes: Iterable[MerkleNode]) -> None:
        """Store nodes in one transaction of their own, keeping any already stored (a
        tree built for an existing ledger by ``ledger init``, which may run twice)."""
        ...
