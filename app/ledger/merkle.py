"""RFC 6962 / RFC 9162 Merkle tree hashing (SHA-256): roots, proofs from stored subtrees, verifiers.

Storage model: a "perfect subtree" node(level, index) covers leaves [index * 2**level,
(index + 1) * 2**level). Level 0 holds the leaf hashes. A node is written once, when its last leaf is
appended, and never changes afterwards — so a proof for any older tree size can be answered from the
same store. A proof (or a root) is a short list of *elements*; each element is the hash of one range
of leaves, which is either one perfect node or, on the right edge of the tree, a fold of O(log n)
perfect nodes. `inclusion_plan`/`consistency_plan` name the nodes needed (a database layer can fetch
them in one query); `assemble` turns a plan into hashes through `get_node(level, index) -> bytes`.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Protocol, Sequence

HASH_SIZE = 32
Address = tuple[int, int]          # (level, index) of a perfect subtree
Element = tuple[Address, ...]      # perfect subtrees covering one range, largest (leftmost) first
Plan = list[Element]


class NodeReader(Protocol):
    """The storage interface: the hash of the complete perfect subtree at (level, index)."""

    def __call__(self, level: int, index: int) -> bytes: ...


class ProofError(ValueError):
    """A proof did not verify; the message says which check failed."""


def empty_root() -> bytes:
    return hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2), as RFC 6962 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes: the plain RFC 6962 recursion (the reference, no store)."""
    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaf_hashes[lo]
        k = _split(hi - lo)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    return mth(0, len(leaf_hashes)) if leaf_hashes else empty_root()


# ---- addressing -------------------------------------------------------------------------------

def perfect_cover(start: int, end: int) -> Element:
    """The perfect subtrees that make up leaves [start, end), left to right.

    Callers only pass ranges that arise in the RFC 6962 recursion, where `start` is a multiple of a
    power of two >= end - start, so each piece is aligned.
    """
    out = []
    while start < end:
        size = 1 << ((end - start).bit_length() - 1)
        level = size.bit_length() - 1
        assert start % size == 0, "range is not aligned to perfect subtrees"
        out.append((level, start >> level))
        start += size
    return tuple(out)


def completed_by(leaf_index: int) -> list[Address]:
    """The perfect subtrees (level >= 1) whose last leaf is `leaf_index`, lowest first."""
    out, level, n = [], 1, leaf_index + 1
    while n % (1 << level) == 0:
        out.append((level, (n >> level) - 1))
        level += 1
    return out


def root_plan(size: int) -> Element:
    return perfect_cover(0, size)


def inclusion_plan(index: int, size: int) -> Plan:
    """PATH(index, D[0:size]) of RFC 6962 2.1.1, as ranges of perfect subtrees, bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    plan: Plan = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            plan.append(perfect_cover(start + k, end))
            end = start + k
        else:
            plan.append(perfect_cover(start, start + k))
            start += k
    plan.reverse()
    return plan


def consistency_plan(first: int, second: int) -> Plan:
    """PROOF(first, D[0:second]) of RFC 6962 2.1.2 (SUBPROOF), bottom-up. Needs 0 < first <= second."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    plan: Plan = []
    start, end, complete = 0, second, True   # `complete` is SUBPROOF's b flag
    while first != end:
        k = _split(end - start)
        if first - start <= k:
            plan.append(perfect_cover(start + k, end))
            end = start + k
        else:
            plan.append(perfect_cover(start, start + k))
            start += k
            complete = False
    if not complete:
        plan.append(perfect_cover(start, end))
    plan.reverse()
    return plan


def _fold(hashes: list[bytes]) -> bytes:
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def assemble(plan: Iterable[Element], get_node: NodeReader) -> list[bytes]:
    """Turn a plan into its hashes, reading each named node once per element."""
    return [_fold([get_node(level, i) for level, i in element]) for element in plan]


def root_from_nodes(size: int, get_node: NodeReader) -> bytes:
    """The root of the first `size` leaves, from O(log size) stored nodes."""
    return _fold([get_node(lv, i) for lv, i in root_plan(size)]) if size else empty_root()


def inclusion_proof(index: int, size: int, get_node: NodeReader) -> list[bytes]:
    return assemble(inclusion_plan(index, size), get_node)


def consistency_proof(first: int, second: int, get_node: NodeReader) -> list[bytes]:
    return assemble(consistency_plan(first, second), get_node)


# ---- verification (RFC 9162 2.1.3.2 and 2.1.4.2, step by step) --------------------------------

def check_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree `root_hash`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    if len(leaf) != HASH_SIZE:
        # Without this, an empty "leaf hash" and an empty "root" would match a one-leaf tree.
        raise ProofError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree requires")
    if r != root_hash:
        raise ProofError("inclusion proof does not lead to the given root")


def check_consistency(first: int, second: int, root1: bytes, root2: bytes,
                      proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows tree (first, root1) is a prefix of (second, root2)."""
    if first > second:
        raise ProofError(f"first size {first} is larger than second size {second}")
    if first == 0:
        # Every tree extends the empty tree; such a "proof" proves nothing, so it is refused.
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if first == second:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:       # first is a power of two: its root is a node of the path
        path.insert(0, root1)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees require")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the second root")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    try:
        check_inclusion(leaf, index, size, proof, root_hash)
    except ProofError:
        return False
    return True


def verify_consistency(first: int, second: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> bool:
    try:
        check_consistency(first, second, root1, root2, proof)
    except ProofError:
        return False
    return True


# ---- in-memory store ----------------------------------------------------------------------------

class MemoryTree:
    """Append-only tree keeping every completed perfect subtree; the reference for a database store.

    Each level is one bytearray of 32-byte hashes, so a million leaves take ~64 MB, not ~150.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    def __len__(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def append(self, data: bytes) -> int:
        return self.append_hash(leaf_hash(data))

    def append_hash(self, leaf: bytes) -> int:
        """Add one leaf hash; store every perfect subtree it completes. Returns the leaf index."""
        index = len(self)
        self._levels[0] += leaf
        for level, i in completed_by(index):
            if len(self._levels) == level:
                self._levels.append(bytearray())
            below = self._levels[level - 1]
            at = 2 * i * HASH_SIZE
            self._levels[level] += node_hash(bytes(below[at:at + HASH_SIZE]),
                                             bytes(below[at + HASH_SIZE:at + 2 * HASH_SIZE]))
        return index

    def get_node(self, level: int, index: int) -> bytes:
        if level >= len(self._levels) or not 0 <= index < len(self._levels[level]) // HASH_SIZE:
            raise LookupError(f"no complete subtree at level {level}, index {index}")
        at = index * HASH_SIZE
        return bytes(self._levels[level][at:at + HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        return root_from_nodes(self._size(size), self.get_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size(size), self.get_node)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        return consistency_proof(first, self._size(second), self.get_node)

    def _size(self, size: int | None) -> int:
        if size is None:
            return len(self)
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} is beyond the log ({len(self)} leaves)")
        return size

