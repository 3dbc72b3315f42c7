"""The Merkle tree kept in the store as events are appended, on both backends: its heads
and proofs equal those computed independently from the chain hashes that
``Ledger.facts`` reads back; concurrent writers keep it right; a ledger made before it
gets it from ``ledger init``; a rewritten history or tree does not pass."""

from __future__ import annotations

import random
from functools import partial

import pytest
from click.testing import CliRunner

from cli.main import root
from ledger.application import Ledger
from ledger.chain import content_digest, entry_hash
from ledger.errors import InvalidInput, StoreNotInitialised
from ledger.index import MERKLE_TABLE
from ledger.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof_of,
    inclusion_proof_of,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from ledger.store import locate
from tests.factories import make_event
from tests.integration.test_append import _concurrently
from tests.integration.test_tamper import RawSQL, _rewrite


def chain_leaves(ledger: Ledger) -> list[bytes]:
    """The leaf hashes computed here from the chain hashes, not from the stored tree."""
    return [leaf_hash(bytes.fromhex(fact.hash)) for fact in ledger.facts()]


def append_random_batches(ledger: Ledger, count: int, seed: int) -> None:
    rng = random.Random(seed)
    appended = 0
    while appended < count:
        size = min(rng.randint(1, 17), count - appended)
        ledger.append(
            [make_event("health_reported", host=f"web-{appended + i:03}") for i in range(size)]
        )
        appended += size


def nodes_table(raw: RawSQL) -> str:
    if raw.backend == "postgres":
        return f'"{raw.ledger.recorder.datastore.schema}".{MERKLE_TABLE}'  # type: ignore[attr-defined]
    return MERKLE_TABLE


def assert_tree_matches_chain(ledger: Ledger) -> None:
    leaves = chain_leaves(ledger)
    size = len(leaves)
    assert ledger.tree_head() == (size, root_of(leaves))
    for n in range(size + 1):
        assert ledger.tree_head(n).root == root_of(leaves[:n]), n


def test_heads_and_proofs_after_random_batches(ledger: Ledger) -> None:
    assert ledger.tree_head() == (0, EMPTY_ROOT)
    append_random_batches(ledger, 140, seed=19)
    assert_tree_matches_chain(ledger)
    leaves = chain_leaves(ledger)
    facts = list(ledger.facts())
    rng = random.Random(7)
    for size in {len(leaves), 1, 2, 64, 65, 100, *rng.sample(range(1, len(leaves)), 5)}:
        root = root_of(leaves[:size])
        for position in range(1, size + 1):
            proof = ledger.inclusion_proof(position, size)
            assert (proof.position, proof.leaf_index, proof.tree_size) == (
                position,
                position - 1,
                size,
            )
            assert proof.chain_hash == bytes.fromhex(facts[position - 1].hash)
            assert proof.leaf_hash == leaves[position - 1]
            assert proof.root == root
            assert proof.hashes == inclusion_proof_of(leaves, position - 1, size)
            verify_inclusion(proof.leaf_index, size, proof.leaf_hash, proof.hashes, root)
        for old in range(1, size + 1):
            consistency = ledger.consistency_proof(old, size)
            assert (consistency.old_root, consistency.new_root) == (root_of(leaves[:old]), root)
            assert consistency.hashes == consistency_proof_of(leaves, old, size)
            verify_consistency(old, size, consistency.old_root, root, consistency.hashes)
    whole = ledger.inclusion_proof(5)
    assert whole.tree_size == len(leaves)
    assert ledger.consistency_proof(3).new_size == len(leaves)
    assert ledger.verify(check_tree=True).tree_checked


def test_inclusion_proofs_of_many_positions_at_once(ledger: Ledger) -> None:
    append_random_batches(ledger, 90, seed=23)
    leaves = chain_leaves(ledger)
    rng = random.Random(5)
    for size in [1, 17, 64, 90]:
        runs = [list(range(1, size + 1)), sorted(rng.sample(range(1, size + 1), min(7, size)))]
        runs.append([size, 1, size])  # any order, repeats allowed
        for positions in runs:
            proofs = ledger.inclusion_proofs(positions, size)
            assert [p.position for p in proofs] == positions
            for proof in proofs:
                assert proof.leaf_hash == leaves[proof.position - 1]
                assert proof.hashes == inclusion_proof_of(leaves, proof.position - 1, size)
                assert proof.root == root_of(leaves[:size])
    with pytest.raises(InvalidInput, match="position 91 is not in the tree of size 90"):
        ledger.inclusion_proofs([3, 91], 90)


def test_verify_folds_the_root_at_a_size_in_the_same_pass(ledger: Ledger) -> None:
    append_random_batches(ledger, 70, seed=3)
    leaves = chain_leaves(ledger)
    for size in [0, 1, 2, 15, 16, 17, 33, 69, 70]:
        result = ledger.verify(root_at=size)
        assert result.intact, size
        assert result.root == root_of(leaves[:size]), size
    assert ledger.verify().root is None
    assert ledger.verify(root_at=71).root is None  # the chain ends before the size


def test_sizes_and_positions_outside_the_tree_are_refused(ledger: Ledger) -> None:
    ledger.append([make_event("health_reported") for _ in range(3)])
    with pytest.raises(InvalidInput, match="no tree of size 4: the ledger holds 3 events"):
        ledger.tree_head(4)
    with pytest.raises(InvalidInput, match="no tree of size -1"):
        ledger.tree_head(-1)
    with pytest.raises(InvalidInput, match="position 0 is not in the tree of size 3"):
        ledger.inclusion_proof(0)
    with pytest.raises(InvalidInput, match="position 3 is not in the tree of size 2"):
        ledger.inclusion_proof(3, 2)
    with pytest.raises(InvalidInput, match="from size 0 to size 3"):
        ledger.consistency_proof(0)
    with pytest.raises(InvalidInput, match="from size 3 to size 2"):
        ledger.consistency_proof(3, 2)


def test_concurrent_appenders_keep_the_tree_right(ledger_url: str) -> None:
    Ledger(locate(ledger_url), create=True).close()

    def write(i: int) -> None:
        app = Ledger(locate(ledger_url))
        try:
            rng = random.Random(i)
            for round_ in range(6):
                app.append(
                    [
                        make_event("health_reported", host=f"w{i}-{round_}-{n}")
                        for n in range(rng.randint(1, 5))
                    ]
                )
        finally:
            app.close()

    _concurrently(5, write)
    check = Ledger(locate(ledger_url))
    try:
        assert check.count() >= 30
        assert_tree_matches_chain(check)
        assert check.verify(check_tree=True).intact
    finally:
        check.close()


def test_a_ledger_made_before_the_tree_gets_it_from_init(ledger: Ledger, ledger_url: str) -> None:
    append_random_batches(ledger, 45, seed=3)
    expected = ledger.tree_head()
    raw = RawSQL(ledger)
    raw.run(f"DROP TABLE {nodes_table(raw)}")
    ledger.close()

    old = Ledger(locate(ledger_url))  # what a ledger of the previous version looks like
    try:
        with pytest.raises(StoreNotInitialised, match="run `ledger init` once"):
            old.append([make_event("health_reported")])
        with pytest.raises(StoreNotInitialised, match="before the ledger kept a Merkle tree"):
            old.tree_head()
        result = old.verify(check_tree=True)
        assert (result.intact, result.tree_checked) == (True, False)
    finally:
        old.close()

    for _ in range(2):  # safe to run again
        outcome = CliRunner().invoke(root, ["--ledger", ledger_url, "init"])
        assert outcome.exit_code == 0, outcome.output
    rebuilt = Ledger(locate(ledger_url))
    try:
        assert rebuilt.tree_head() == expected
        assert rebuilt.build_tree() == 0, "the tree is complete: nothing to add"
        append_random_batches(rebuilt, 20, seed=4)
        assert_tree_matches_chain(rebuilt)
        assert rebuilt.verify(check_tree=True).intact
    finally:
        rebuilt.close()


def test_a_consistently_rewritten_history_has_another_root(ledger: Ledger) -> None:
    """An intruder rewrites position 5 and re-chains every later row and the index: the
    chain alone verifies, but its root is not the tree's, nor any checkpoint's."""
    width = 1 << ledger.lowest_stored_level  # positions under one stored node
    append_random_batches(ledger, 3 * width + 4, seed=5)
    before = ledger.tree_head()
    raw = RawSQL(ledger)
    facts = list(ledger.facts())
    prev_hash = facts[3].hash
    for fact in facts[4:]:
        event = dict(fact.event)
        if fact.position == 5:
            event["host"] = "web-666"
        new_hash = entry_hash(fact.position, prev_hash, event)
        replacements = [
            (fact.prev_hash.encode(), prev_hash.encode()),
            (fact.event["host"].encode(), event["host"].encode()),
            (fact.hash.encode(), new_hash.encode()),
        ]
        _rewrite(raw, fact.position, partial(_replace_all, replacements=replacements))
        if fact.position == 5:
            raw.run(
                f"UPDATE {raw.index} SET digest = ? WHERE position = ?",
                content_digest(event),
                5,
            )
        prev_hash = new_hash
    assert ledger.verify().intact, "the chain alone is consistent"
    leaves = chain_leaves(ledger)
    assert root_of(leaves) != before.root
    result = ledger.verify(check_tree=True)
    # The first stored node over position 5: written when the last position under it was.
    first, last = (4 // width) * width + 1, (4 // width + 1) * width
    assert result.bad_position == last
    assert f"node over positions {first}-{last} does not match the chain" in result.reason
    stored = ledger.inclusion_proof(5)
    with pytest.raises(ProofError):
        verify_inclusion(4, len(leaves), leaves[4], stored.hashes, before.root)


def _replace_all(state: bytes, replacements: list[tuple[bytes, bytes]]) -> bytes:
    for old, new in replacements:
        state = state.replace(old, new)
    return state


def test_a_changed_tree_node_is_caught(ledger: Ledger) -> None:
    level = ledger.lowest_stored_level
    width = 1 << level
    append_random_batches(ledger, 4 * width + 1, seed=6)
    before = ledger.tree_head()
    raw = RawSQL(ledger)
    raw.run(
        f"UPDATE {nodes_table(raw)} SET hash = ? WHERE level = ? AND idx = 1",
        b"\x00" * 32,
        level,
    )
    # The head is made of other nodes; the proofs through this one are wrong.
    assert ledger.tree_head() == before
    result = ledger.verify(check_tree=True)
    assert result.bad_position == 2 * width
    assert f"positions {width + 1}-{2 * width} does not match the chain" in result.reason
    leaves = chain_leaves(ledger)
    proof = ledger.inclusion_proof(1)
    with pytest.raises(ProofError):
        verify_inclusion(0, len(leaves), leaves[0], proof.hashes, root_of(leaves))


def test_rows_cut_off_the_end_of_chain_and_index_leave_the_tree_behind(ledger: Ledger) -> None:
    width = 1 << ledger.lowest_stored_level
    append_random_batches(ledger, 3 * width, seed=8)
    cut = 3 * width - 2
    raw = RawSQL(ledger)
    raw.run(f"DELETE FROM {raw.table} WHERE originator_version > ?", cut)
    raw.run(f"DELETE FROM {raw.index} WHERE position > ?", cut)
    assert ledger.verify().intact, "consistent from inside the database"
    result = ledger.verify(check_tree=True)
    assert result.bad_position == cut + 1
    assert f"chain ends at position {cut}: rows after it were deleted" in result.reason


def test_the_tree_is_append_only(ledger: Ledger) -> None:
    ledger.append([make_event("health_reported") for _ in range(2 << ledger.lowest_stored_level)])
    raw = RawSQL(ledger)
    for statement in (
        f"UPDATE {nodes_table(raw)} SET hash = hash",
        f"DELETE FROM {nodes_table(raw)}",
    ):
        with (
            raw.cursor(bypass_triggers=False) as conn,
            pytest.raises(Exception, match="append-only"),  # sqlite3 or psycopg
        ):
            conn.execute(statement)
