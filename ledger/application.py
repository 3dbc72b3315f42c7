"""The ledger application: append facts idempotently to the hash chain, read them back,
verify the chain.

Appending is optimistic: read the head of the chain, look up which event ids are already
stored and which generation numbers are taken, build the new entries on top of the head,
and insert them in one transaction. A concurrent writer that got there first makes the
insert fail on the chain's primary key (or the index's unique keys); the append then
starts over on the new head. So positions stay gapless, the chain stays linear, a re-sent
event is stored once and generation numbers have no gaps or duplicates.

The same transaction stores the perfect subtrees that the new entries complete in the
Merkle tree over the chain (``ledger.merkle``), hashed into the tree's right frontier
at the head (kept from this instance's last append, else read: O(log n) rows). A tree
head of any size and any proof are then O(log n) lookups. Only levels 4 and up are
stored (one row per 16 positions, not two per position): a lower node is hashed from
the at most 16 chain hashes under it, which the events table holds already, in one range
read. bench/merkle.py measured the choice: storing from level 0, 1 or 4 left 81 %, 90 %
and 96 % of the append rate without the tree (batches of 1000 small events, SQLite).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, PersistenceError, Transcoder

from ledger.chain import GENESIS, content_digest, entry_hash
from ledger.domain import CHAIN_ID, ENTRY_CLASSES, TOPICS, LedgerEntry
from ledger.errors import EventConflict, InvalidInput, StoreNotInitialised, StoreUnavailable
from ledger.index import IndexedEvent, IndexRow, LedgerRecorder, MerkleNode
from ledger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    InclusionProof,
    RootBuilder,
    TreeHead,
    compact_range,
    consistency_ranges,
    extend_tree,
    fold_right,
    inclusion_ranges,
    leaf_hash,
    perfect_subtrees,
    root_of,
)
from ledger.store import StoreLocation
from ledger.transcoder import LedgerTranscoder

if TYPE_CHECKING:
    # Annotations only: the pydantic models take ~100 ms to build, and reading the
    # ledger (every query command) needs none of them.
    from ledger.events import Envelope, Source

MAX_APPEND_ATTEMPTS = 100
READ_BATCH = 500
PLANNED = "generation_planned"
NO_TREE = (
    "was created before the ledger kept a Merkle tree: run `ledger init` once (safe on "
    "an existing ledger) to build it"
)

T = TypeVar("T")


@dataclass(frozen=True)
class Appended:
    """The outcome of appending one event: its position, and whether it is new."""

    event_id: UUID
    position: int
    new: bool


class PreparedEvent(NamedTuple):
    """A validated event in its documented JSON form, with what the append needs of it.

    Built once per event (``prepare``): an ingest prepares each event in its validation
    pass and keeps (or spools) this form, so the append pass neither parses nor
    serialises the event again. ``data`` is never changed in place.
    """

    event_id: UUID
    env: str
    kind: str
    number: int | None
    """The generation number the producer gave (``generation_planned`` only)."""
    data: dict[str, Any]
    """``model_dump(mode="json")`` of the event."""
    digest: str
    """``content_digest(data)``: what tells a re-sent event from a clashing one."""


def prepare(event: Envelope | PreparedEvent) -> PreparedEvent:
    if isinstance(event, PreparedEvent):
        return event
    data = event.model_dump(mode="json")
    kind = data["kind"]
    number = data.get("number") if kind == PLANNED else None
    return PreparedEvent(event.event_id, event.env, kind, number, data, content_digest(data))


def prepared_from_json(data: dict[str, Any], digest: str | None = None) -> PreparedEvent:
    """The prepared form of an event's JSON form that was validated earlier (``digest``
    when it is known already)."""
    kind = data["kind"]
    return PreparedEvent(
        UUID(data["event_id"]),
        data["env"],
        kind,
        data.get("number") if kind == PLANNED else None,
        data,
        content_digest(data) if digest is None else digest,
    )


@dataclass(frozen=True)
class StoredFact:
    """A fact as read back from the chain."""

    position: int
    event: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Problem:
    """Why the event at ``index`` of a batch cannot be appended."""

    index: int
    message: str


@dataclass
class CheckState:
    """What a multi-batch check (an ingest's validation pass) carries between batches."""

    next_generation: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    """The result of re-checking the whole chain."""

    events: int
    head_hash: str  # empty when the chain does not verify
    bad_position: int | None = None
    reason: str = ""
    tree_checked: bool = False
    """Whether the stored Merkle tree was compared with the chain (a ledger that has no
    tree yet is verified without it)."""
    root: bytes | None = None
    """With ``verify(root_at=SIZE)``: the Merkle root of the chain hashes of positions
    1..SIZE, recomputed from the events (None: the chain ends before SIZE)."""

    @property
    def intact(self) -> bool:
        return self.bad_position is None


class Ledger(Application[UUID]):
    """The deployment ledger on one store (SQLite file or PostgreSQL database)."""

    name = "Ledger"
    keeps_merkle_tree = True
    """False only in bench/merkle.py, to measure appending without the tree."""
    lowest_stored_level = 4
    """The lowest level of the Merkle tree kept in ``ledger_merkle_nodes`` (see the
    module docstring). A property of the stored data: every writer of one ledger must
    use the same; only bench/merkle.py sets another, on ledgers of its own."""

    def __init__(self, location: StoreLocation, *, create: bool = False) -> None:
        if (
            location.backend == "sqlite"
            and not create
            and not Path(location.settings["SQLITE_DBNAME"]).exists()
        ):
            raise StoreNotInitialised(
                f"there is no ledger at {location.display}: run `ledger init` first"
            )
        self.location = location
        super().__init__(env={**location.settings, "CREATE_TABLE": "yes" if create else "no"})
        self.store = cast(LedgerRecorder, self.recorder)
        if not self.store.has_tables():
            raise StoreNotInitialised(
                f"{location.display} holds no ledger yet: run `ledger init` first"
            )
        self._has_tree = False
        self._frontier: tuple[int, str, list[bytes]] = (0, GENESIS, [])
        """The tree's right frontier after this instance's last append: (size, head
        hash, hashes). The next append on that same head needs no read of it."""
        if create:
            self.build_tree()

    def construct_transcoder(self) -> Transcoder:
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    # --- writing ----------------------------------------------------------------------

    def append(
        self, events: Sequence[Envelope | PreparedEvent], *, source: Source = "cli"
    ) -> list[Appended]:
        """Append events in order, in one transaction; already stored ones are skipped.

        Raises ``EventConflict`` (and stores nothing) when an event id is stored with
        other content or a generation number is not the env's next one.
        """
        prepared = [prepare(e) for e in events]
        for attempt in range(MAX_APPEND_ATTEMPTS):
            head_position, head_hash = self.head()
            existing = self.store.lookup_event_ids(e.event_id for e in prepared)
            planned_envs = [e.env for e in prepared if e.kind == PLANNED]
            last_generation = self.store.last_generations(planned_envs) if planned_envs else {}
            results, entries, rows, problems = self._plan(
                prepared, existing, last_generation, head_position, head_hash, source
            )
            if problems:
                raise EventConflict("; ".join(p.message for p in problems))
            if not entries:
                return results
            nodes, frontier = self._new_tree_nodes(head_position, head_hash, entries)
            try:
                self.events.put(entries, index_rows=rows, merkle_nodes=nodes)
            except IntegrityError:
                # Another writer moved the head (or stored one of these ids) first.
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** min(attempt, 7))))
                continue
            self._frontier = (entries[-1].originator_version, entries[-1].hash, frontier)
            return results
        raise StoreUnavailable(
            f"gave up after {MAX_APPEND_ATTEMPTS} attempts: other writers kept moving the "
            "head of the chain; nothing of this batch was stored, retry it"
        )

    def check(self, events: Sequence[Envelope | PreparedEvent], state: CheckState) -> list[Problem]:
        """What ``append`` would refuse in this batch, without writing anything.

        ``state`` carries generation numbers planned by earlier batches of the same input.
        """
        prepared = [prepare(e) for e in events]
        existing = self.store.lookup_event_ids(e.event_id for e in prepared)
        new_envs = [
            e.env for e in prepared if e.kind == PLANNED and e.env not in state.next_generation
        ]
        if new_envs:
            for env, last in self.store.last_generations(new_envs).items():
                state.next_generation[env] = last + 1
        last_generation = {env: n - 1 for env, n in state.next_generation.items()}
        _, _, _, problems = self._plan(
            prepared, existing, last_generation, 0, GENESIS, "cli", dry_run=True
        )
        state.next_generation.update({env: n + 1 for env, n in last_generation.items()})
        return problems

    def _plan(
        self,
        events: Sequence[PreparedEvent],
        existing: dict[UUID, IndexedEvent],
        last_generation: dict[str, int],
        head_position: int,
        head_hash: str,
        source: Source,
        *,
        dry_run: bool = False,
    ) -> tuple[list[Appended], list[LedgerEntry], list[IndexRow], list[Problem]]:
        """Decide, for each event, whether it is new and where it goes; build the entries.

        ``last_generation`` is updated in place with the numbers planned here. A dry run
        (``check``) builds no entries, so validating a large input stays cheap.
        """
        from ledger.events import TIMESTAMP

        now = TIMESTAMP.dump_python(datetime.now(UTC), mode="json")
        results: list[Appended] = []
        entries: list[LedgerEntry] = []
        rows: list[IndexRow] = []
        problems: list[Problem] = []
        seen: dict[UUID, tuple[int, str]] = {}
        position, prev_hash = head_position, head_hash
        for index, event in enumerate(events):
            earlier = existing.get(event.event_id)
            if earlier is None and event.event_id in seen:
                earlier = IndexedEvent(*seen[event.event_id])
            if earlier is not None:
                if earlier.digest != event.digest:
                    problems.append(
                        Problem(
                            index,
                            f"event_id {event.event_id} is already stored at position "
                            f"{earlier.position} with different content",
                        )
                    )
                results.append(Appended(event.event_id, earlier.position, new=False))
                continue
            planned: int | None = None
            if event.kind == PLANNED:
                planned = last_generation.get(event.env, 0) + 1
                if event.number not in (None, planned):
                    problems.append(
                        Problem(
                            index,
                            f"generation {event.number} of env {event.env!r} cannot be "
                            f"planned: the next number is {planned}",
                        )
                    )
                    continue
                last_generation[event.env] = planned
            position += 1
            seen[event.event_id] = (position, event.digest)
            results.append(Appended(event.event_id, position, new=True))
            if dry_run:
                continue
            data = dict(event.data)  # the prepared form may be appended again (a retry)
            if data["recorded_at"] is None:
                data["recorded_at"] = now
            if data["source"] is None:
                data["source"] = source
            if planned is not None:
                data["number"] = planned
            entry_digest = entry_hash(position, prev_hash, data)
            entries.append(
                ENTRY_CLASSES[event.kind](
                    originator_id=CHAIN_ID,
                    originator_version=position,
                    timestamp=datetime.fromisoformat(data["recorded_at"]),
                    event=data,
                    prev_hash=prev_hash,
                    hash=entry_digest,
                )
            )
            rows.append(
                IndexRow(event.event_id, position, event.env, event.kind, planned, event.digest)
            )
            prev_hash = entry_digest
        return results, entries, rows, problems

    # --- reading ----------------------------------------------------------------------

    def stored(self, event_ids: Iterable[UUID]) -> dict[UUID, int]:
        """The positions of those of these events the ledger already holds."""
        return {
            event_id: indexed.position
            for event_id, indexed in self.store.lookup_event_ids(event_ids).items()
        }

    def head(self) -> tuple[int, str]:
        """Position and hash of the last fact (0 and the genesis hash when empty)."""
        last = self.recorder.select_events(CHAIN_ID, desc=True, limit=1)
        if not last:
            return 0, GENESIS
        entry = cast(LedgerEntry, self.mapper.to_domain_event(last[0]))
        return entry.originator_version, entry.hash

    def facts(self, *, kinds: Iterable[str] = ()) -> Iterator[StoredFact]:
        """Every fact in ledger order, optionally only some kinds, streamed in batches."""
        topics = [TOPICS[k] for k in kinds]
        for notification in self._notifications(topics):
            if notification.originator_id != CHAIN_ID:
                continue
            entry = cast(LedgerEntry, self.mapper.to_domain_event(notification))
            yield StoredFact(entry.originator_version, entry.event, entry.prev_hash, entry.hash)

    def _notifications(self, topics: Sequence[str] = ()) -> Iterator[Notification]:
        start: int | None = None
        while True:
            batch = self.recorder.select_notifications(
                start, READ_BATCH, topics=topics, inclusive_of_start=False
            )
            yield from batch
            if len(batch) < READ_BATCH:
                return
            start = batch[-1].id

    # --- verifying --------------------------------------------------------------------

    def verify(
        self,
        progress: Callable[[int], None] | None = None,
        anchors: Mapping[int, str] | None = None,
        *,
        check_tree: bool = False,
        root_at: int | None = None,
    ) -> Verification:
        """Re-check every row of the chain; stop at the first position that is wrong.

        ``anchors`` maps positions to the hashes they had when someone wrote them down
        (``ledger verify`` prints the head): they catch what the chain alone cannot, a
        history rewritten consistently from some position on, or rows cut off its end.

        ``check_tree`` also recomputes every stored Merkle tree node from the chain:
        a history rewritten consistently (chain and index) but not its tree, or rows
        cut off the end of both, no longer passes; nor does a tree changed on its own,
        whose proofs and checkpoints would not match the chain. It is what checking
        the ledger against a signed checkpoint needs (the checkpoint's root is then
        compared with ``tree_head``); off by default, the chain alone is checked.

        ``root_at`` (a checkpoint's size) also folds the chain hashes of positions
        1..``root_at`` into their RFC 9162 root as they are read (``Verification.root``;
        None when the chain is shorter), so a checkpoint is checked in the same pass.
        """
        anchors = dict(anchors or {})
        expected, prev_hash = 1, GENESIS
        batch: list[tuple[int, dict[str, Any]]] = []
        tree = _TreeCheck(self) if check_tree and self.store.has_merkle_table() else None
        leaves: list[bytes] = []
        builder = RootBuilder() if root_at is not None else None
        root: bytes | None = EMPTY_ROOT if root_at == 0 else None

        def bad(position: int, reason: str) -> Verification:
            # Rows before this one whose index entries are not checked yet come first.
            earlier = self._check_index([(p, e) for p, e in batch if p < position])
            if earlier is not None:
                position, reason = earlier
            return Verification(position - 1, "", position, reason)

        for notification in self._notifications():
            if notification.originator_id != CHAIN_ID:
                return bad(
                    expected,
                    f"a row that is not part of the chain (notification "
                    f"{notification.id}) was inserted before position {expected}",
                )
            position = notification.originator_version
            if position > expected:
                return bad(expected, f"position {expected} is missing: the row was deleted")
            if position < expected:
                return bad(position, f"position {position} appears twice or out of order")
            try:
                entry = cast(LedgerEntry, self.mapper.to_domain_event(notification))
                event = entry.event
                kind_ok = TOPICS.get(str(event.get("kind"))) == notification.topic
            except Exception:  # any decoding failure means the stored bytes were altered
                return bad(position, f"position {position} was changed: it no longer decodes")
            if not kind_ok:
                return bad(position, f"position {position} was changed: its kind was altered")
            if entry.prev_hash != prev_hash:
                return bad(
                    max(position - 1, 1),
                    f"the link between positions {position - 1} and {position} is broken: "
                    f"one of them was rewritten",
                )
            if entry_hash(position, prev_hash, event) != entry.hash:
                return bad(position, f"position {position} was changed: its hash does not match")
            if anchors.get(position, entry.hash) != entry.hash:
                return bad(
                    position,
                    f"position {position} does not have its anchored hash: the history up "
                    f"to it was rewritten",
                )
            batch.append((position, event))
            if tree is not None or builder is not None:
                leaf = leaf_hash(bytes.fromhex(entry.hash))
                if tree is not None:
                    leaves.append(leaf)
                if builder is not None and position <= cast(int, root_at):
                    builder.add(leaf)
                    if position == root_at:
                        root = builder.root()
            if len(batch) >= READ_BATCH:
                problem = self._check_index(batch)
                if problem is not None:
                    return bad(*problem)
                batch.clear()
                problem = tree.check(leaves) if tree else None
                if problem is not None:
                    return bad(*problem)
                leaves.clear()
            prev_hash = entry.hash
            expected += 1
            if progress is not None:
                progress(1)
        problem = self._check_index(batch)
        if problem is not None:
            return bad(*problem)
        batch.clear()
        problem = tree.check(leaves) if tree else None
        if problem is not None:
            return bad(*problem)
        indexed = self.store.index_count()
        if indexed != expected - 1:
            return bad(
                expected,
                f"the event index holds {indexed} events but the chain ends at position "
                f"{expected - 1}: rows after it were deleted",
            )
        beyond = [p for p in anchors if p >= expected]
        if beyond:
            return bad(
                expected,
                f"position {max(beyond)} was anchored but the chain ends at position "
                f"{expected - 1}: rows after it were deleted",
            )
        problem = tree.check_end() if tree else None
        if problem is not None:
            return bad(*problem)
        return Verification(expected - 1, prev_hash, tree_checked=tree is not None, root=root)

    def _check_index(self, batch: list[tuple[int, dict[str, Any]]]) -> tuple[int, str] | None:
        """The first position of ``batch`` (positions in order, with their events) whose
        index row is missing or differs from what its event says, and which field.

        The index decides what counts as already stored (event id and digest) and which
        generation number is next: a row changed behind the ledger's back would let a
        changed resend pass as a duplicate or a generation number be given out twice.
        """
        if not batch:
            return None
        rows = {row.position: row for row in self.store.index_rows(batch[0][0], batch[-1][0])}
        for position, event in batch:
            row = rows.get(position)
            if row is None:
                return position, (
                    f"position {position} is not in the event index: it was inserted or "
                    f"rewritten behind the ledger's back"
                )
            for name, indexed, expected in _index_fields(row, event):
                if indexed != expected:
                    return position, (
                        f"the event index row of position {position} was changed: its "
                        f"{name} is {indexed!r} but the event says {expected!r}"
                    )
        return None

    def count(self) -> int:
        return self.head()[0]

    # --- the Merkle tree --------------------------------------------------------------

    def build_tree(self) -> int:
        """Store the Merkle tree of a ledger whose events were appended before it kept
        one (``ledger init`` calls this; it is a no-op on a ledger whose tree is
        complete, and safe to run twice). Reads every chain hash once: O(n), one-off.
        Returns how many nodes it stored."""
        self._has_tree = self.store.has_merkle_table()
        if not self._has_tree:
            return 0  # a ledger opened without create: `ledger init` makes the table
        size = self.head()[0]
        frontier = self._stored_keys(compact_range(size))
        if len(self.store.merkle_nodes(frontier)) == len(frontier):
            return 0
        leaves = [leaf_hash(bytes.fromhex(fact.hash)) for fact in self.facts()][:size]
        nodes = extend_tree(0, [], leaves, self.lowest_stored_level)[0]
        self.store.add_merkle_nodes(nodes)
        return len(nodes)

    def tree_head(self, size: int | None = None) -> TreeHead:
        """The size and root of the Merkle tree over positions ``1..size`` (all of them
        when ``size`` is None): O(log n) stored nodes."""
        size = self._tree_size(size)
        if size == 0:
            return TreeHead(0, EMPTY_ROOT)
        keys = compact_range(size)
        nodes = self._tree_nodes(keys)
        return TreeHead(size, fold_right([nodes[key] for key in keys]))

    def inclusion_proof(self, position: int, size: int | None = None) -> InclusionProof:
        """RFC 9162 PATH for ``position`` (leaf index ``position - 1``) in the tree of
        ``size`` positions (the whole ledger when None), with that tree's root."""
        return self.inclusion_proofs([position], size)[0]

    def inclusion_proofs(
        self, positions: Sequence[int], size: int | None = None
    ) -> list[InclusionProof]:
        """``inclusion_proof`` of each position, in the tree of one ``size``: the head,
        the tree nodes and the chain hashes read once for all of them (the receipts of
        one ``POST /api/events`` share blocks and most of their paths)."""
        size = self._tree_size(size)
        for position in positions:
            if not 1 <= position <= size:
                raise InvalidInput(
                    f"position {position} is not in the tree of size {size}: positions "
                    f"run from 1 to {size}"
                )
        chain_hashes = self._chain_hashes(positions)
        leaves = {p: leaf_hash(chain_hashes[p]) for p in positions}
        paths = {p: inclusion_ranges(p - 1, size) for p in positions}
        nodes = self._tree_nodes(
            [key for ranges in paths.values() for key in self._range_keys(ranges)]
            + compact_range(size),
            {(0, p - 1): leaf for p, leaf in leaves.items()},
        )
        root = fold_right([nodes[key] for key in compact_range(size)])
        return [
            InclusionProof(
                p, p - 1, size, chain_hashes[p], leaves[p], self._path(paths[p], nodes), root
            )
            for p in positions
        ]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """RFC 9162 PROOF from the tree of ``old_size`` positions to the one of
        ``new_size`` (the whole ledger when None), with both roots."""
        new_size = self._tree_size(new_size)
        if not 1 <= old_size <= new_size:
            raise InvalidInput(
                f"no consistency proof from size {old_size} to size {new_size}: the old "
                f"size must be at least 1 and at most {new_size}"
            )
        ranges = consistency_ranges(old_size, new_size)
        old_keys, new_keys = compact_range(old_size), compact_range(new_size)
        nodes = self._tree_nodes([*self._range_keys(ranges), *old_keys, *new_keys])
        return ConsistencyProof(
            old_size,
            new_size,
            self._path(ranges, nodes),
            fold_right([nodes[key] for key in old_keys]),
            fold_right([nodes[key] for key in new_keys]),
        )

    def _tree_size(self, size: int | None) -> int:
        head = self.head()[0]
        if size is None:
            return head
        if not 0 <= size <= head:
            raise InvalidInput(
                f"there is no tree of size {size}: the ledger holds {head} events, so a "
                f"size runs from 0 to {head}"
            )
        return size

    @staticmethod
    def _range_keys(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        return [key for start, end in ranges for key in perfect_subtrees(start, end)]

    @classmethod
    def _path(
        cls, ranges: Iterable[tuple[int, int]], nodes: Mapping[tuple[int, int], bytes]
    ) -> list[bytes]:
        return [cls._range_hash(start, end, nodes) for start, end in ranges]

    @staticmethod
    def _range_hash(start: int, end: int, nodes: Mapping[tuple[int, int], bytes]) -> bytes:
        return fold_right([nodes[key] for key in perfect_subtrees(start, end)])

    def _stored_keys(self, keys: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        return [key for key in keys if key[0] >= self.lowest_stored_level]

    def _tree_nodes(
        self, keys: Iterable[tuple[int, int]], known: Mapping[tuple[int, int], bytes] = {}
    ) -> dict[tuple[int, int], bytes]:
        """The hashes of these perfect subtrees: stored ones read in one query, those
        below the lowest stored level hashed from the chain hashes under them (one range
        read per block of ``2^lowest_stored_level`` positions). ``StoreNotInitialised``
        when one is missing."""
        wanted = {key for key in keys if key not in known}
        stored = self._stored_keys(wanted)
        nodes = dict(known)
        nodes.update(self._read_nodes(stored))
        low = wanted - set(stored)
        blocks = {(index << level) >> self.lowest_stored_level for level, index in low}
        leaves = self._block_leaves(blocks)
        for level, index in low:
            span = range(index << level, (index + 1) << level)
            if span[-1] in leaves:
                nodes[level, index] = root_of([leaves[i] for i in span])
        if not wanted <= nodes.keys():
            raise StoreNotInitialised(f"{self.location.display} {NO_TREE}")
        return nodes

    def _block_leaves(self, blocks: Iterable[int]) -> dict[int, bytes]:
        """Leaf hashes by leaf index of every position in these blocks of
        ``2^lowest_stored_level`` positions (as far as the chain goes)."""
        leaves: dict[int, bytes] = {}
        width = 1 << self.lowest_stored_level
        for block in blocks:
            rows = self.recorder.select_events(CHAIN_ID, gt=block * width, lte=(block + 1) * width)
            for row in rows:
                entry = cast(LedgerEntry, self.mapper.to_domain_event(row))
                leaves[entry.originator_version - 1] = leaf_hash(bytes.fromhex(entry.hash))
        return leaves

    def _read_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not keys:
            return {}
        try:
            return self.store.merkle_nodes(keys)
        except PersistenceError:
            if self.store.has_merkle_table():
                raise
            raise StoreNotInitialised(f"{self.location.display} {NO_TREE}") from None

    def _chain_hashes(self, positions: Iterable[int]) -> dict[int, bytes]:
        """The chain hashes (32 bytes) of these positions: one indexed range read per
        run of consecutive positions."""
        found: dict[int, bytes] = {}
        runs: list[list[int]] = []
        for position in sorted(set(positions)):
            if runs and runs[-1][1] == position - 1:
                runs[-1][1] = position
            else:
                runs.append([position, position])
        for first, last in runs:
            for row in self.recorder.select_events(CHAIN_ID, gt=first - 1, lte=last):
                entry = cast(LedgerEntry, self.mapper.to_domain_event(row))
                found[entry.originator_version] = bytes.fromhex(entry.hash)
        return found

    def _new_tree_nodes(
        self, head_position: int, head_hash: str, entries: Sequence[LedgerEntry]
    ) -> tuple[list[MerkleNode], list[bytes]]:
        """The tree nodes that ``entries``, appended on the head, complete (those to
        store), and the frontier after them: hashed into the right frontier at the head,
        which is read from the store unless this instance's last append left it there."""
        if not self.keeps_merkle_tree:
            return [], []
        if not self._has_tree:
            self._has_tree = self.store.has_merkle_table()
            if not self._has_tree:
                raise StoreNotInitialised(f"{self.location.display} {NO_TREE}")
        keys = compact_range(head_position)
        if self._frontier[:2] == (head_position, head_hash):
            frontier = self._frontier[2]
        else:
            known = {(0, head_position - 1): leaf_hash(bytes.fromhex(head_hash))}
            nodes = self._tree_nodes(keys, known) if head_position else {}
            frontier = [nodes[key] for key in keys]
        sha256 = hashlib.sha256
        leaves = [sha256(b"\x00" + bytes.fromhex(entry.hash)).digest() for entry in entries]
        return extend_tree(head_position, frontier, leaves, self.lowest_stored_level)


class _TreeCheck:
    """``Ledger.verify``'s comparison of the stored Merkle tree with the chain: every
    stored node is recomputed from the chain hashes as the chain is read, batch by
    batch. A history rewritten consistently from some position on (chain, index and
    all) still differs from the tree written when the rows were appended."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.size = 0
        self.frontier: list[bytes] = []

    def check(self, leaves: Sequence[bytes]) -> tuple[int, str] | None:
        """The position whose append wrote the first stored node that is missing or
        does not match ``leaves`` (the next chain positions' leaf hashes), and why."""
        lowest = self.ledger.lowest_stored_level
        kept, frontier = extend_tree(self.size, self.frontier, leaves, lowest)
        stored = self.ledger.store.merkle_nodes((level, index) for level, index, _ in kept)
        for level, index, value in sorted(kept, key=lambda n: ((n[1] + 1) << n[0], n[0])):
            first, last = (index << level) + 1, (index + 1) << level
            found = stored.get((level, index))
            if found != value:
                what = "is missing" if found is None else "does not match the chain"
                return last, (
                    f"the Merkle tree node over positions {first}-{last} {what}: the "
                    f"history from a position in that range was rewritten, or the tree "
                    f"was changed behind the ledger's back"
                )
        self.size += len(leaves)
        self.frontier = frontier
        return None

    def check_end(self) -> tuple[int, str] | None:
        """A stored node reaching past the chain's end: rows after it were deleted."""
        beyond = [
            (level, self.size >> level) for level in range(self.ledger.lowest_stored_level, 64)
        ]
        found = self.ledger.store.merkle_nodes(beyond)
        if not found:
            return None
        level, index = min(found, key=lambda key: (key[1] << key[0], key[0]))
        return self.size + 1, (
            f"the Merkle tree holds a node over positions {(index << level) + 1}-"
            f"{(index + 1) << level} but the chain ends at position {self.size}: rows "
            f"after it were deleted"
        )


@dataclass
class BatchTotals:
    stored: int = 0
    skipped: int = 0
    first: int | None = None
    last: int | None = None


def append_in_batches(
    ledger: Ledger,
    batches: Iterable[Sequence[tuple[int, Envelope | PreparedEvent]]],
    *,
    source: Source,
    unit: str = "lines",
    on_batch: Callable[[int], None] | None = None,
) -> BatchTotals:
    """Append batches of numbered events (line numbers, say), one transaction each.

    A batch that conflicts is refused whole; the error names its numbers and says how
    many events before it were stored (a re-run skips those).
    """
    totals = BatchTotals()
    for batch in batches:
        try:
            results = ledger.append([event for _, event in batch], source=source)
        except EventConflict as error:
            raise EventConflict(
                f"{unit} {batch[0][0]}-{batch[-1][0]}: {error}; the {totals.stored} new "
                f"events before them were stored, a re-run skips them"
            ) from None
        for result in results:
            if result.new:
                totals.stored += 1
                totals.first = result.position if totals.first is None else totals.first
                totals.last = result.position
            else:
                totals.skipped += 1
        if on_batch is not None:
            on_batch(len(batch))
    return totals


def numbered_batches(
    events: Iterable[Envelope], size: int = 1000
) -> Iterator[list[tuple[int, Envelope]]]:
    """Number events from 1 and cut them into batches of ``size``."""
    return batched(enumerate(events, start=1), size)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter), read lazily."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _index_fields(row: IndexRow, event: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Each field of an index row with the value its stored event implies."""
    kind = event.get("kind")
    return [
        ("event_id", str(row.event_id), str(event.get("event_id"))),
        ("env", row.env, event.get("env")),
        ("kind", row.kind, kind),
        (
            "generation number",
            row.planned_generation,
            event.get("number") if kind == "generation_planned" else None,
        ),
        ("content digest", row.digest, content_digest(event)),
    ]
