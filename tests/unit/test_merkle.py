"""The Merkle tree's hashing and proofs, checked against RFC 9162's recursive definitions
written out again here (§2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF) and against
transparency-dev/merkle's test vectors (tests/fixtures/merkle)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    ProofError,
    compact_range,
    consistency_proof_of,
    consistency_ranges,
    fold_right,
    inclusion_proof_of,
    inclusion_ranges,
    leaf_hash,
    new_nodes,
    node_hash,
    range_hash,
    root_of,
    subtree_lookup,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent.parent / "fixtures" / "merkle"
EVERY_SIZE = 300


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Reference:
    """RFC 9162 §2.1 taken literally: recursion over D[a:b] (memoised MTH only, so that
    every size up to 300 and every leaf stays quick)."""

    def __init__(self, inputs: Sequence[bytes]) -> None:
        self.inputs = list(inputs)
        self.mth: Callable[[int, int], bytes] = lru_cache(maxsize=None)(self._mth)

    @staticmethod
    def k(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def _mth(self, a: int, b: int) -> bytes:
        n = b - a
        if n == 0:
            return sha(b"")
        if n == 1:
            return sha(b"\x00" + self.inputs[a])
        k = self.k(n)
        return sha(b"\x01" + self.mth(a, a + k) + self.mth(a + k, b))

    def path(self, m: int, a: int, b: int) -> list[bytes]:
        n = b - a
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, a, a + k), self.mth(a + k, b)]
        return [*self.path(m - k, a + k, b), self.mth(a, a + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, a: int, b: int, complete: bool) -> list[bytes]:
        n = b - a
        if m == n:
            return [] if complete else [self.mth(a, b)]
        k = self.k(n)
        if m <= k:
            return [*self.subproof(m, a, a + k, complete), self.mth(a + k, b)]
        return [*self.subproof(m - k, a + k, b, False), self.mth(a, a + k)]


def inputs(count: int, seed: int = 19) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(HASH_SIZE) for _ in range(count)]


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference(inputs(EVERY_SIZE))


@pytest.fixture(scope="module")
def leaves(reference: Reference) -> list[bytes]:
    return [leaf_hash(i) for i in reference.inputs]


def test_hashes_are_domain_separated() -> None:
    assert sha(b"") == EMPTY_ROOT
    assert leaf_hash(b"x") == sha(b"\x00x")
    assert node_hash(b"l", b"r") == sha(b"\x01lr")
    assert root_of([]) == EMPTY_ROOT


def test_root_of_every_size(reference: Reference, leaves: list[bytes]) -> None:
    for size in range(EVERY_SIZE + 1):
        assert root_of(leaves[:size]) == reference.mth(0, size), size


def test_inclusion_every_leaf_of_every_size(reference: Reference, leaves: list[bytes]) -> None:
    lookup = subtree_lookup(leaves)
    for size in range(1, EVERY_SIZE + 1):
        root = reference.mth(0, size)
        for index in range(size):
            proof = reference.path(index, 0, size)
            verify_inclusion(index, size, leaves[index], proof, root)
            if index % 7 == 0 or size < 70:  # generation is the slower part; sample it
                assert _inclusion(lookup, index, size) == proof, (index, size)
        if size > 1:
            with pytest.raises(ProofError):
                verify_inclusion(size - 1, size, leaves[0], reference.path(size - 1, 0, size), root)


def test_consistency_every_old_size_of_every_size(
    reference: Reference, leaves: list[bytes]
) -> None:
    lookup = subtree_lookup(leaves)
    for new in range(1, EVERY_SIZE + 1):
        new_root = reference.mth(0, new)
        for old in range(1, new + 1):
            proof = reference.proof(old, new)
            old_root = reference.mth(0, old)
            verify_consistency(old, new, old_root, new_root, proof)
            if old % 7 == 0 or new < 70:
                assert _consistency(lookup, old, new) == proof, (old, new)
            if old < new:
                with pytest.raises(ProofError):
                    verify_consistency(old, new, new_root, new_root, proof)


def _inclusion(lookup: Callable[[int, int], bytes], index: int, size: int) -> list[bytes]:
    return [range_hash(s, e, lookup) for s, e in inclusion_ranges(index, size)]


def _consistency(lookup: Callable[[int, int], bytes], old: int, new: int) -> list[bytes]:
    return [range_hash(s, e, lookup) for s, e in consistency_ranges(old, new)]


@settings(max_examples=40, deadline=None)
@given(st.integers(301, 5000), st.data())
def test_random_larger_trees(size: int, data: st.DataObject) -> None:
    ref = Reference(inputs(size, seed=size))
    leaves = [leaf_hash(i) for i in ref.inputs]
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    root = ref.mth(0, size)
    assert root_of(leaves) == root
    proof = inclusion_proof_of(leaves, index, size)
    assert proof == ref.path(index, 0, size)
    verify_inclusion(index, size, leaves[index], proof, root)
    consistency = consistency_proof_of(leaves, old, size)
    assert consistency == ref.proof(old, size)
    verify_consistency(old, size, ref.mth(0, old), root, consistency)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 600), st.data())
def test_every_single_byte_change_is_refused(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i) for i in inputs(size, seed=size)]
    index = data.draw(st.integers(0, size - 1))
    root = root_of(leaves)
    proof = inclusion_proof_of(leaves, index, size)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1))
        changed = list(proof)
        changed[at] = _flip(changed[at], bit)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaves[index], changed, root)
        with pytest.raises(ProofError, match=r"too (many|few)"):
            verify_inclusion(index, size, leaves[index], proof[:-1], root)
    with pytest.raises(ProofError, match="too many"):
        verify_inclusion(index, size, leaves[index], [*proof, root], root)
    old = data.draw(st.integers(1, size))
    consistency = consistency_proof_of(leaves, old, size)
    if consistency:
        changed = list(consistency)
        changed[-1] = _flip(changed[-1], 0)
        with pytest.raises(ProofError):
            verify_consistency(old, size, root_of(leaves[:old]), root, changed)


def _flip(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def test_new_nodes_grow_the_compact_range(leaves: list[bytes]) -> None:
    """Appending in batches of any size from a stored frontier gives every perfect
    subtree, as computing them all at once does."""
    everything = {(lv, ix): h for lv, ix, h in new_nodes(0, [], leaves)}
    rng = random.Random(5)
    grown: dict[tuple[int, int], bytes] = {}
    size = 0
    while size < len(leaves):
        batch = leaves[size : size + rng.randint(1, 40)]
        frontier = [grown[node] for node in compact_range(size)]
        grown.update({(lv, ix): h for lv, ix, h in new_nodes(size, frontier, batch)})
        size += len(batch)
        heads = [grown[node] for node in compact_range(size)]
        assert root_of(leaves[:size]) == _fold(heads)
    assert grown == everything


def _fold(heads: list[bytes]) -> bytes:
    return fold_right(heads)


def test_errors_are_invalid_input_and_say_why(leaves: list[bytes]) -> None:
    assert issubclass(ProofError, InvalidInput)
    with pytest.raises(ProofError, match="not in a tree of size 4"):
        verify_inclusion(4, 4, leaves[0], [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="empty tree proves nothing"):
        verify_consistency(0, 3, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="larger than the new size"):
        verify_consistency(3, 2, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="33 bytes"):
        verify_inclusion(0, 2, leaves[0], [b"x" * 33], EMPTY_ROOT)


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict[str, object]) -> list[bytes]:
    return [_b64(str(p)) for p in case.get("proof") or []]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_transparency_dev_inclusion_vectors(path: Path) -> None:
    case = json.loads(path.read_text())

    def check() -> None:
        verify_inclusion(
            case["leafIdx"],
            case["treeSize"],
            _b64(case["leafHash"]),
            _proof(case),
            _b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("path", _vectors("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_transparency_dev_consistency_vectors(path: Path) -> None:
    case = json.loads(path.read_text())

    def check() -> None:
        verify_consistency(
            case["size1"],
            case["size2"],
            _b64(case["root1"]),
            _b64(case["root2"]),
            _proof(case),
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def test_the_vectors_are_all_there() -> None:
    """Both kinds have happy paths and tampered cases: a lost fixture folder would
    otherwise pass by testing nothing."""
    for kind in ("inclusion", "consistency"):
        cases = [json.loads(p.read_text()) for p in _vectors(kind)]
        assert sum(not c["wantErr"] for c in cases) >= 5
        assert sum(bool(c["wantErr"]) for c in cases) >= 50
