"""The Merkle tree over the hash chain, hashed as RFC 9162 §2.1 says: pure functions.

The leaf input of ledger position ``n`` is the 32 bytes of that entry's chain hash
(``bytes.fromhex(entry.hash)``), at leaf index ``n - 1``. Leaves and interior nodes are
domain-separated (0x00 and 0x01 prefixes), so a leaf can never pass for a node.

Proofs are planned as lists of leaf ranges ``[start, end)`` (``inclusion_ranges``,
``consistency_ranges``) whose Merkle tree hashes make up the proof; ``range_hash``
turns a range into its hash from the perfect subtrees that cover it. The store keeps
those perfect subtrees (``ledger.application``), the tests and small trees compute them
from a list of leaf hashes (``inclusion_proof_of``, ``consistency_proof_of``): both
answer with the same code. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 and
never trusts a size or a root it was not given by its caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ledger.errors import InvalidInput

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeLookup = Callable[[int, int], bytes]
"""``(level, index)`` → the hash of the perfect subtree over leaves
``[index·2^level, (index+1)·2^level)``."""


class ProofError(InvalidInput):
    """A Merkle proof does not verify; the message says which check failed."""


class TreeHead(NamedTuple):
    size: int
    root: bytes


class InclusionProof(NamedTuple):
    position: int
    leaf_index: int
    tree_size: int
    chain_hash: bytes
    leaf_hash: bytes
    hashes: list[bytes]
    root: bytes


class ConsistencyProof(NamedTuple):
    old_size: int
    new_size: int
    hashes: list[bytes]
    old_root: bytes
    new_root: bytes


def leaf_hash(leaf_input: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162's MTH over leaf hashes (not leaf inputs), in O(n)."""
    builder = RootBuilder()
    for leaf in leaf_hashes:
        builder.add(leaf)
    return builder.root()


class RootBuilder:
    """RFC 9162's MTH of leaf hashes fed one at a time, in O(log n) memory: the roots of
    the perfect subtrees seen so far (the compact range), merged as each completes.
    What ``ledger verify --checkpoint`` folds the chain hashes into as it reads them."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def add(self, leaf: bytes) -> None:
        self.stack.append(leaf)
        self.size += 1
        done = self.size  # a subtree completes once per trailing zero bit of the count
        while done % 2 == 0:
            right = self.stack.pop()
            self.stack.append(node_hash(self.stack.pop(), right))
            done //= 2

    def root(self) -> bytes:
        return fold_right(self.stack) if self.stack else EMPTY_ROOT


def fold_right(perfect: Sequence[bytes]) -> bytes:
    """The MTH of a range from the roots of its perfect subtrees, largest (leftmost)
    first: the right border is hashed from the right."""
    result = perfect[-1]
    for left in reversed(perfect[:-1]):
        result = node_hash(left, result)
    return result


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` of the perfect subtrees that cover ``[start, end)``, left
    to right, for a range whose start is aligned to its size's next power of two (every
    range of RFC 9162's recursion is): the set bits of ``end - start``, largest first."""
    nodes: list[tuple[int, int]] = []
    size = end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def range_hash(start: int, end: int, lookup: NodeLookup) -> bytes:
    if start >= end:
        return EMPTY_ROOT
    return fold_right([lookup(level, index) for level, index in perfect_subtrees(start, end)])


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` ≥ 2): RFC 9162's k."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are RFC 9162's PATH(index, D[0:size]), in order."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]  # the path is built from the root down, the proof leaf up


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are RFC 9162's PROOF(old_size, D[0:new_size])."""
    if not 0 < old_size <= new_size:
        raise ProofError(
            f"no consistency proof from size {old_size} to size {new_size}: "
            "the old size must be at least 1 and at most the new size"
        )
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    return ranges[::-1]


def subtree_lookup(leaf_hashes: Sequence[bytes]) -> NodeLookup:
    """Every perfect subtree of a list of leaf hashes, hashed once (O(n))."""
    nodes = {(level, index): value for level, index, value in new_nodes(0, [], leaf_hashes)}
    return lambda level, index: nodes[level, index]


def inclusion_proof_of(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) computed from leaf hashes (for tests and small trees)."""
    lookup = subtree_lookup(leaf_hashes[:size])
    return [range_hash(s, e, lookup) for s, e in inclusion_ranges(index, size)]


def consistency_proof_of(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) computed from leaf hashes (tests, small trees)."""
    lookup = subtree_lookup(leaf_hashes[:new_size])
    return [range_hash(s, e, lookup) for s, e in consistency_ranges(old_size, new_size)]


def _check_hashes(proof: Sequence[bytes]) -> None:
    for number, item in enumerate(proof, start=1):
        if len(item) != HASH_SIZE:
            raise ProofError(f"proof hash {number} has {len(item)} bytes instead of {HASH_SIZE}")


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise ``ProofError`` unless ``proof`` shows the leaf with hash
    ``leaf_hash`` at ``leaf_index`` in the tree of ``tree_size`` leaves and root ``root``."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"the leaf hash has {len(leaf_hash)} bytes instead of {HASH_SIZE}")
    _check_hashes(proof)
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(
                f"the inclusion proof has {len(proof)} hashes: too many for leaf "
                f"{leaf_index} of a tree of size {tree_size}"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(
            f"the inclusion proof has {len(proof)} hashes: too few for leaf {leaf_index} "
            f"of a tree of size {tree_size}"
        )
    if r != root:
        raise ProofError(
            f"the inclusion proof of leaf {leaf_index} leads to root {r.hex()}, not to the "
            f"tree head's root {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise ``ProofError`` unless ``proof`` shows that the tree of
    ``old_size`` leaves and root ``old_root`` is a prefix of the one of ``new_size``
    leaves and root ``new_root``. A proof from the empty tree proves nothing: refused."""
    if old_size > new_size:
        raise ProofError(f"the old size {old_size} is larger than the new size {new_size}")
    if old_size < 1:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError("the sizes are equal but the consistency proof is not empty")
        if old_root != new_root:
            raise ProofError(
                f"both trees have size {old_size} but their roots differ: "
                f"{old_root.hex()} and {new_root.hex()}"
            )
        return
    if not proof:
        raise ProofError(f"the consistency proof from {old_size} to {new_size} is empty")
    _check_hashes(proof)
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a proof node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                f"the consistency proof has {len(proof)} hashes: too many for sizes "
                f"{old_size} and {new_size}"
            )
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(
            f"the consistency proof has {len(proof)} hashes: too few for sizes "
            f"{old_size} and {new_size}"
        )
    if fr != old_root:
        raise ProofError(
            f"the consistency proof leads to old root {fr.hex()}, not to {old_root.hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"the consistency proof leads to new root {sr.hex()}, not to {new_root.hex()}"
        )


def compact_range(size: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` of the perfect subtrees covering ``[0, size)``: the right
    frontier a new leaf is hashed into, and what a tree head of ``size`` is made of."""
    return perfect_subtrees(0, size)


def extend_tree(
    size: int, frontier: Sequence[bytes], leaves: Sequence[bytes], lowest_level: int = 0
) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Append ``leaves`` (leaf hashes) to a tree of ``size`` whose compact range hashes
    are ``frontier`` (as ``compact_range(size)`` orders them): the ``(level, index,
    hash)`` of every perfect subtree completed (from ``lowest_level`` up), and the
    compact range hashes after them.

    The hot loop of every append, hence level by level: at level ``l`` the new nodes
    have indices ``size >> l`` to ``(size + len(leaves) >> l) - 1``, and when the first
    one is a right child its left sibling is the frontier's node of that level."""
    keys = compact_range(size)
    if len(keys) != len(frontier):
        raise ValueError(f"a tree of size {size} has {len(keys)} frontier nodes")
    old = {level: value for (level, _), value in zip(keys, frontier, strict=True)}
    new_size = size + len(leaves)
    sha256 = hashlib.sha256
    nodes: list[tuple[int, int, bytes]] = []
    after: dict[int, bytes] = {}
    row, level = list(leaves), 0
    while (new_size >> level) > 0:
        first = size >> level
        if level >= lowest_level:
            nodes.extend((level, first + i, value) for i, value in enumerate(row))
        if new_size >> level & 1:
            after[level] = row[-1] if row else old[level]
        full = [old[level], *row] if first & 1 else row
        pairs = iter(full)  # an odd last node waits for its right sibling
        row = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        level += 1
    return nodes, [after[level] for level, _ in compact_range(new_size)]


def new_nodes(
    size: int, frontier: Sequence[bytes], leaves: Sequence[bytes]
) -> list[tuple[int, int, bytes]]:
    """Every perfect subtree, leaves included, completed by appending ``leaves``."""
    return extend_tree(size, frontier, leaves)[0]
