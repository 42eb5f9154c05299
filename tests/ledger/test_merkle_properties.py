"""Properties of proofs built from stored perfect subtrees, checked against the plain RFC 6962 root."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ledger import merkle

MAX_SIZE = 300
LEAF_DATA = [f"entry {i}".encode() * (i % 5) for i in range(MAX_SIZE)]
LEAF_HASHES = [merkle.leaf_hash(d) for d in LEAF_DATA]

TREE = merkle.MemoryTree()
for _data in LEAF_DATA:
    TREE.append(_data)


def reference_root(size: int) -> bytes:
    # Independent of the store: the recursive MTH over the leaf hash list.
    return merkle.root(LEAF_HASHES[:size])


def flip(data: bytes, position: int, mask: int) -> bytes:
    position %= len(data)
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1:]


@st.composite
def inclusion_case(draw):
    size = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def consistency_case(draw):
    second = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, second)), second


byte_flip = st.tuples(st.integers(0, 10_000), st.integers(1, 255))


def test_root_from_stored_nodes_equals_reference_root_at_every_size():
    assert merkle.root_from_nodes(0, TREE.get_node) == merkle.empty_root()
    for size in range(1, MAX_SIZE + 1):
        assert TREE.root(size) == reference_root(size), size


@settings(max_examples=300, deadline=None)
@given(inclusion_case())
def test_every_generated_inclusion_proof_verifies(case):
    index, size = case
    proof = TREE.inclusion_proof(index, size)
    assert merkle.verify_inclusion(LEAF_HASHES[index], index, size, proof, reference_root(size))


@settings(max_examples=300, deadline=None)
@given(inclusion_case(), byte_flip, st.sampled_from(["proof", "leaf", "root"]), st.integers(0, 64))
def test_any_changed_byte_breaks_an_inclusion_proof(case, change, target, which):
    index, size = case
    leaf, proof, root = LEAF_HASHES[index], TREE.inclusion_proof(index, size), reference_root(size)
    if target == "proof" and not proof:
        target = "root"
    if target == "proof":
        k = which % len(proof)
        proof[k] = flip(proof[k], *change)
    elif target == "leaf":
        leaf = flip(leaf, *change)
    else:
        root = flip(root, *change)
    assert not merkle.verify_inclusion(leaf, index, size, proof, root)


# Only a missing or an extra component is changed here, never a size: RFC 6962 proofs bind the tree
# size only through their length, so a proof for size 3 can honestly fit the shape of size 4 with the
# same root (the signed checkpoint is what binds size and root together).
@settings(max_examples=200, deadline=None)
@given(inclusion_case(), st.booleans())
def test_inclusion_proof_with_a_component_missing_or_added_fails(case, drop):
    index, size = case
    proof, root = TREE.inclusion_proof(index, size), reference_root(size)
    proof = proof[:-1] if drop and proof else proof + [root]
    assert not merkle.verify_inclusion(LEAF_HASHES[index], index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(consistency_case())
def test_every_generated_consistency_proof_verifies(case):
    first, second = case
    proof = TREE.consistency_proof(first, second)
    assert merkle.verify_consistency(first, second, reference_root(first), reference_root(second), proof)


@settings(max_examples=300, deadline=None)
@given(consistency_case(), byte_flip, st.sampled_from(["proof", "root1", "root2"]), st.integers(0, 64))
def test_any_changed_byte_breaks_a_consistency_proof(case, change, target, which):
    first, second = case
    proof = TREE.consistency_proof(first, second)
    root1, root2 = reference_root(first), reference_root(second)
    if target == "proof" and not proof:
        target = "root2"
    if target == "proof":
        k = which % len(proof)
        proof[k] = flip(proof[k], *change)
    elif target == "root1":
        root1 = flip(root1, *change)
    else:
        root2 = flip(root2, *change)
    assert not merkle.verify_consistency(first, second, root1, root2, proof)


@settings(max_examples=200, deadline=None)
@given(consistency_case(), st.booleans())
def test_consistency_proof_with_a_component_missing_or_added_fails(case, drop):
    first, second = case
    proof = TREE.consistency_proof(first, second)
    root1, root2 = reference_root(first), reference_root(second)
    proof = proof[:-1] if drop and proof else proof + [root2]
    assert not merkle.verify_consistency(first, second, root1, root2, proof)


@pytest.mark.parametrize("call", [
    lambda: TREE.inclusion_proof(5, 5),
    lambda: TREE.inclusion_proof(-1, 5),
    lambda: TREE.inclusion_proof(0, MAX_SIZE + 1),
    lambda: TREE.consistency_proof(6, 5),
    lambda: TREE.consistency_proof(0, 5),
    lambda: TREE.consistency_proof(5, MAX_SIZE + 1),
], ids=["index=size", "negative index", "size beyond log", "first>second", "first=0", "second beyond log"])
def test_impossible_proof_request_is_refused(call):
    with pytest.raises(ValueError):
        call()


def test_appending_stores_exactly_the_completed_subtrees():
    assert merkle.completed_by(0) == []
    assert merkle.completed_by(1) == [(1, 0)]
    assert merkle.completed_by(7) == [(1, 3), (2, 1), (3, 0)]
    assert merkle.completed_by(10) == []
    assert TREE.get_node(8, 0) == merkle.root(LEAF_HASHES[:256])
    with pytest.raises(LookupError):
        TREE.get_node(1, MAX_SIZE // 2)    # would cover leaves 300 and 301, which do not exist


# ---- a million leaves: proofs read O(log n) stored nodes ---------------------------------------

BIG = 1_000_003


@pytest.fixture(scope="module")
def big_tree():
    tree = merkle.MemoryTree()
    for i in range(BIG):
        tree.append(i.to_bytes(8, "big"))
    return tree


class CountingReader:
    def __init__(self, tree):
        self.tree, self.calls = tree, 0

    def __call__(self, level, index):
        self.calls += 1
        return self.tree.get_node(level, index)


def test_proofs_at_a_million_leaves_read_logarithmically_many_nodes(big_tree):
    limit = 2 * BIG.bit_length()        # 40 reads; the log has a million leaves
    reader = CountingReader(big_tree)
    root = merkle.root_from_nodes(BIG, reader)
    assert reader.calls <= BIG.bit_length()
    for index in (0, 1, 524_287, 524_288, 999_999, BIG - 2, BIG - 1):
        reader.calls = 0
        proof = merkle.inclusion_proof(index, BIG, reader)
        assert reader.calls <= limit, (index, reader.calls)
        assert merkle.verify_inclusion(merkle.leaf_hash(index.to_bytes(8, "big")), index, BIG, proof, root)
    for first in (1, 3, 524_288, 524_289, 777_777, BIG - 1):
        reader.calls = 0
        proof = merkle.consistency_proof(first, BIG, reader)
        assert reader.calls <= limit, (first, reader.calls)
        assert merkle.verify_consistency(first, BIG, big_tree.root(first), root, proof)
