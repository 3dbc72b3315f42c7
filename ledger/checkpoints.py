"""The signed checkpoints this ledger has issued, kept in its own database.

``ledger_checkpoints`` holds one signed note (C2SP tlog-checkpoint) per tree size, in the
same database as the events, append-only by trigger like the events and their index: a
checkpoint handed to an auditor or a host (a receipt) must be findable again, and proofs
are made against the sizes that were signed. The table is created by ``ledger init`` and,
for ledgers made before it existed, by the first checkpoint kept (``CREATE … IF NOT
EXISTS``); a reader that finds no table finds no checkpoint.

A size is signed once: keeping a note for a size already kept returns the kept one when
its text (origin, size, root) is the same, and refuses it otherwise, since two roots for
one size mean the history was rewritten in between (tlog-checkpoint: a log never signs
two inconsistent checkpoints).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from ledger.application import Ledger, Verification
    from ledger.checkpoint import Checkpoint, Signer

TABLE = "ledger_checkpoints"

_READY: weakref.WeakSet[Any] = weakref.WeakSet()
"""Ledgers (objects) whose table is known to exist: checked once per process."""


class CheckpointConflict(InvalidInput):
    """A checkpoint of this size with another root (or origin) is kept already."""


def note_text(note: str) -> str:
    """The text of a signed note (what was signed): everything before its last blank
    line, with its final newline. Not a verification: callers that trust the text
    open the note with ``ledger.checkpoint.open_note``."""
    text, blank, _ = note.rpartition("\n\n")
    if not blank:
        raise InvalidInput("not a signed note: no blank line between its text and signatures")
    return text + "\n"


def parse_unverified(note: str) -> Checkpoint:
    """The checkpoint a note carries, its signatures not checked (the ledger's own kept
    notes, or a note whose root is then compared with the ledger's own tree)."""
    from ledger.checkpoint import Checkpoint

    return Checkpoint.parse(note_text(note))


def create_table(ledger: Ledger) -> None:
    """Create the table and its append-only triggers (safe to repeat)."""
    backend = ledger.location.backend
    with _datastore(ledger).transaction(commit=True) as cursor:
        for statement in _ddl(ledger) if backend == "postgres" else _SQLITE_DDL:
            cursor.execute(statement)
    _READY.add(ledger)


def keep(ledger: Ledger, note: str) -> str:
    """Keep a signed checkpoint note; the note kept for its size (this one, or the same
    checkpoint kept earlier). Raises ``CheckpointConflict`` when that size was kept with
    another text."""
    checkpoint = parse_unverified(note)
    if ledger not in _READY:
        create_table(ledger)
    insert = (
        f"INSERT INTO {_table(ledger)} (size, origin, note, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (size) DO NOTHING"
    )
    row = (checkpoint.size, checkpoint.origin, note, datetime.now(UTC).isoformat())
    with _datastore(ledger).transaction(commit=True) as cursor:
        cursor.execute(_placeholders(ledger, insert), row)
    kept = at_size(ledger, checkpoint.size)
    assert kept is not None  # inserted now or before; the table refuses deletes
    if kept != note and note_text(kept) != note_text(note):
        raise CheckpointConflict(
            f"a checkpoint of size {checkpoint.size} with another root is kept already "
            f"({_root_line(kept)} vs {_root_line(note)}): the ledger was rewritten since it "
            "was signed, or the checkpoint is another ledger's"
        )
    return kept


def latest(ledger: Ledger) -> str | None:
    """The kept checkpoint of the largest size, or ``None`` when none was kept."""
    return _one(ledger, f"SELECT note FROM {_table(ledger)} ORDER BY size DESC LIMIT 1", ())


def at_size(ledger: Ledger, size: int) -> str | None:
    """The kept checkpoint of this tree size, or ``None``."""
    return _one(ledger, f"SELECT note FROM {_table(ledger)} WHERE size = ?", (size,))


def issue(ledger: Ledger, signer: Signer) -> str:
    """Sign the ledger's current tree head with ``signer`` (origin = its name), keep it
    and return the kept note: what ``ledger checkpoint`` and a collector that makes
    checkpoints every N events both run.

    Refuses (``CheckpointConflict``) to sign when the newest kept checkpoint no longer
    matches this ledger's tree at its size: signing on top of a rewritten history
    would hide the rewrite from anyone who checks only the newest checkpoint.
    """
    from ledger.checkpoint import Checkpoint, sign_checkpoint

    previous = latest(ledger)
    kept = parse_unverified(previous) if previous is not None else None
    size = ledger.count()
    if kept is not None and kept.size > size:
        raise CheckpointConflict(
            f"the ledger ends at position {size} but a checkpoint of size {kept.size} was "
            f"signed: events after {size} were cut off; nothing was signed"
        )
    if kept is None or kept.size == 0:
        root = ledger.tree_head(size).root
    else:
        # Both roots in one read of the tree.
        proof = ledger.consistency_proof(kept.size, size)
        if proof.old_root != kept.root:
            raise CheckpointConflict(
                f"the ledger's tree of size {kept.size} no longer has the root of the "
                f"checkpoint signed for that size: the history up to position {kept.size} "
                "was rewritten; nothing was signed"
            )
        root = proof.new_root
    note = sign_checkpoint(Checkpoint(signer.name, size, root), signer)
    return keep(ledger, note)


def _one(ledger: Ledger, query: str, params: tuple[Any, ...]) -> str | None:
    if ledger not in _READY and not _exists(ledger):
        return None
    with _datastore(ledger).transaction(commit=False) as cursor:
        cursor.execute(_placeholders(ledger, query), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return str(row["note"] if isinstance(row, dict) else row[0])


def _exists(ledger: Ledger) -> bool:
    with _datastore(ledger).transaction(commit=False) as cursor:
        if ledger.location.backend == "postgres":
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (_table(ledger),))
            found = bool(cursor.fetchone()["ok"])
        else:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)
            )
            found = int(cursor.fetchone()[0]) == 1
    if found:
        _READY.add(ledger)
    return found


def _root_line(note: str) -> str:
    """The root line of a checkpoint note, for messages."""
    lines = note_text(note).splitlines()
    return f"root {lines[2]}" if len(lines) > 2 else "no root"


def _table(ledger: Ledger) -> str:
    if ledger.location.backend == "postgres":
        return f'"{_schema(ledger)}".{TABLE}'
    return TABLE


def _schema(ledger: Ledger) -> str:
    return str(_datastore(ledger).schema).replace('"', '""')


def _datastore(ledger: Ledger) -> Any:
    """The library's datastore under the ledger's recorder (SQLite or PostgreSQL): its
    ``transaction`` gives a cursor of that backend."""
    return ledger.recorder.datastore  # type: ignore[attr-defined]


def _placeholders(ledger: Ledger, sql: str) -> str:
    return sql.replace("?", "%s") if ledger.location.backend == "postgres" else sql


_SQLITE_DDL = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (size INTEGER PRIMARY KEY, origin TEXT NOT NULL, "
    "note TEXT NOT NULL, created_at TEXT NOT NULL)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, 'the deployment ledger is append-only: {op} on {TABLE} "
        "refused'); END"
        for op in ("UPDATE", "DELETE")
    ),
]


def _ddl(ledger: Ledger) -> list[str]:
    """PostgreSQL: the table, and the triggers of the events table (``ledger.postgres``:
    its function refuses UPDATE, DELETE and TRUNCATE)."""
    from ledger.postgres import REFUSE_FUNCTION

    schema, table = f'"{_schema(ledger)}"', _table(ledger)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (size bigint PRIMARY KEY, origin text NOT NULL, "
        "note text NOT NULL, created_at timestamptz NOT NULL)",
        "CREATE OR REPLACE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON "
        f"{table} FOR EACH ROW EXECUTE FUNCTION {schema}.{REFUSE_FUNCTION}()",
        "CREATE OR REPLACE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON "
        f"{table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{REFUSE_FUNCTION}()",
    ]


# --- proofs against checkpoints: the JSON that `ledger prove`, /api/proof/* and receipts
# answer, and `ledger verify-proof` reads (hashes in lowercase hex) ---------------------


def within(ledger: Ledger, note: str) -> Checkpoint:
    """The checkpoint in ``note`` (signatures not checked), once its size is no larger
    than the ledger: a ledger shorter than a checkpoint it signed was cut off."""
    checkpoint = parse_unverified(note)
    head = ledger.count()
    if checkpoint.size > head:
        raise CheckpointConflict(
            f"the checkpoint covers {checkpoint.size} events but the ledger ends at position "
            f"{head}: events after {head} were cut off (or the checkpoint is another ledger's)"
        )
    return checkpoint


def same_root(checkpoint: Checkpoint, root: bytes) -> None:
    """Refuse (``CheckpointConflict``) a proof whose tree, this ledger's at the
    checkpoint's size, has another root: it would not verify, and the mismatch itself
    is the finding."""
    if root != checkpoint.root:
        raise CheckpointConflict(
            f"this ledger's Merkle tree of size {checkpoint.size} has root {root.hex()}, not "
            f"the checkpoint's {checkpoint.root.hex()}: the history up to position "
            f"{checkpoint.size} was rewritten (or the checkpoint is another ledger's)"
        )


def inclusion_answer(ledger: Ledger, position: int, note: str) -> dict[str, Any]:
    """The inclusion proof of ``position`` in the tree of the checkpoint ``note``; the
    proof's own root is compared with the checkpoint's (no second read of the tree)."""
    return inclusion_answers(ledger, [position], note)[0]


def inclusion_answers(ledger: Ledger, positions: Sequence[int], note: str) -> list[dict[str, Any]]:
    """``inclusion_answer`` of each position, the tree read once for all of them."""
    checkpoint = within(ledger, note)
    for position in positions:
        if not 1 <= position <= checkpoint.size:
            raise InvalidInput(
                f"position {position} is not covered by the checkpoint of size "
                f"{checkpoint.size}" + ("" if position >= 1 else ": positions start at 1")
            )
    from ledger.checkpoint import inclusion_document

    proofs = ledger.inclusion_proofs(positions, checkpoint.size)
    if proofs:
        same_root(checkpoint, proofs[0].root)
    return [inclusion_document(proof, note) for proof in proofs]


def consistency_answer(ledger: Ledger, old_note: str, new_note: str) -> dict[str, Any]:
    """The consistency proof from the checkpoint ``old_note`` to ``new_note``, whose
    roots must be this ledger's (compared with the proof's own)."""
    from ledger.checkpoint import consistency_document

    old, new = within(ledger, old_note), within(ledger, new_note)
    if not 1 <= old.size <= new.size:
        raise InvalidInput(
            f"no consistency proof from size {old.size} to size {new.size}: the old "
            "checkpoint must be of size 1 or more, and no larger than the new one"
        )
    proof = ledger.consistency_proof(old.size, new.size)
    same_root(old, proof.old_root)
    same_root(new, proof.new_root)
    return consistency_document(proof, old_note, new_note)


def covering(ledger: Ledger, position: int) -> str:
    """The newest kept checkpoint, which must cover ``position``; the error says to run
    ``ledger checkpoint`` otherwise."""
    note = latest(ledger)
    if note is None:
        raise InvalidInput("no checkpoint was made yet: run `ledger checkpoint` first")
    size = parse_unverified(note).size
    if size < position:
        raise InvalidInput(
            f"position {position} came after the latest checkpoint (size {size}): run "
            "`ledger checkpoint` to sign one that covers it"
        )
    return note


# --- the root of a checkpoint's size, recomputed from the chain alone ------------------


def check_ledger(ledger: Ledger, checkpoint: Checkpoint, verification: Verification) -> None:
    """Raise ``CheckpointConflict`` naming what differs unless the chain's own hashes
    give the checkpoint's root at its size, and the stored tree agrees with them.

    ``verification`` is ``ledger.verify(root_at=checkpoint.size)``'s intact result: the
    root was folded from the chain hashes in the same pass that checked the chain."""
    root = verification.root
    if root is None:
        raise CheckpointConflict(
            f"the ledger ends at position {verification.events} but the checkpoint covers "
            f"{checkpoint.size} events: events after {verification.events} were cut off"
        )
    if root != checkpoint.root:
        raise CheckpointConflict(
            f"the Merkle root of the chain hashes of positions 1–{checkpoint.size} is "
            f"{root.hex()}, not the signed {checkpoint.root.hex()}: the history up to "
            f"position {checkpoint.size} was rewritten since the checkpoint was signed"
        )
    stored = ledger.tree_head(checkpoint.size).root
    if stored != root:
        raise CheckpointConflict(
            f"the stored Merkle tree of size {checkpoint.size} has root {stored.hex()}, but "
            f"the chain gives {root.hex()}: the tree's rows were changed behind the "
            "ledger's back"
        )
