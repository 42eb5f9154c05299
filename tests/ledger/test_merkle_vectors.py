"""The published RFC 6962 vectors in ../shared/merkle-vectors.json, every one of them, no database."""
from __future__ import annotations

import json
import os

import pytest

from app.ledger import merkle

_HERE = os.path.dirname(__file__)
# A copy vendored next to this file wins; otherwise the shared one beside the repository.
VECTORS_PATH = os.environ.get("MERKLE_VECTORS") or next(
    (p for p in (os.path.join(_HERE, "merkle-vectors.json"),
                 os.path.join(_HERE, "..", "..", "..", "shared", "merkle-vectors.json"))
     if os.path.exists(p)), os.path.join(_HERE, "merkle-vectors.json"))

with open(VECTORS_PATH, encoding="utf-8") as fh:
    VECTORS = json.load(fh)

LEAVES = [bytes.fromhex(x) for x in VECTORS["leaves_hex"]]
INCLUSION = VECTORS["inclusion_proofs"]
CONSISTENCY = VECTORS["consistency_proofs"]
# Vectors that come from a real tree over LEAVES: our generator must reproduce their proofs exactly.
GENERATED_KINDS = {"published", "derived"}


def _h(xs):
    return [bytes.fromhex(x) for x in xs]


def _id(v):
    size = f"{v['leaf_index']}@{v['tree_size']}" if "leaf_index" in v else f"{v['size1']}->{v['size2']}"
    return f"{v['kind']}:{size}:{v.get('desc', 'ok' if v['expect_valid'] else 'bad')}"


@pytest.fixture(scope="module")
def tree():
    t = merkle.MemoryTree()
    for leaf in LEAVES:
        t.append(leaf)
    return t


def test_vector_file_has_every_kind_of_probe():
    # Guards against a truncated or swapped vector file silently shrinking the parametrised tests.
    assert len(INCLUSION) == 135 and len(CONSISTENCY) == 126
    assert sum(not v["expect_valid"] for v in INCLUSION) == 92
    assert sum(not v["expect_valid"] for v in CONSISTENCY) == 92


@pytest.mark.parametrize("op", VECTORS["hasher_vectors"], ids=lambda v: f"{v['op']}:{v['expect'][:8]}")
def test_hasher_vector(op):
    if op["op"] == "empty_root":
        got = merkle.empty_root()
    elif op["op"] == "leaf_hash":
        got = merkle.leaf_hash(bytes.fromhex(op["input_hex"]))
    else:
        got = merkle.node_hash(bytes.fromhex(op["left_hex"]), bytes.fromhex(op["right_hex"]))
    assert got.hex() == op["expect"]


@pytest.mark.parametrize("size", sorted(int(n) for n in VECTORS["roots_by_size"]))
def test_root_of_first_n_leaves_matches_vector(size, tree):
    expected = VECTORS["roots_by_size"][str(size)]
    assert merkle.root([merkle.leaf_hash(x) for x in LEAVES[:size]]).hex() == expected
    assert tree.root(size).hex() == expected


def test_stored_perfect_subtrees_match_node_hashes_by_level(tree):
    levels = VECTORS["node_hashes_by_level"]["levels"]
    assert [len(level) for level in levels] == [8, 4, 2, 1]
    for level, hashes in enumerate(levels):
        assert [tree.get_node(level, i).hex() for i in range(len(hashes))] == hashes
    with pytest.raises(LookupError):
        tree.get_node(len(levels), 0)


@pytest.mark.parametrize("v", INCLUSION, ids=_id)
def test_inclusion_vector_verifies_exactly_when_expected(v):
    args = (bytes.fromhex(v["leaf_hash"]), v["leaf_index"], v["tree_size"], _h(v["proof"]),
            bytes.fromhex(v["root"]))
    assert merkle.verify_inclusion(*args) is v["expect_valid"]
    if "leaf_input_hex" in v:
        assert merkle.leaf_hash(bytes.fromhex(v["leaf_input_hex"])).hex() == v["leaf_hash"]


@pytest.mark.parametrize("v", [v for v in INCLUSION if v["kind"] in GENERATED_KINDS], ids=_id)
def test_generated_inclusion_proof_equals_vector(v, tree):
    assert [p.hex() for p in tree.inclusion_proof(v["leaf_index"], v["tree_size"])] == v["proof"]


@pytest.mark.parametrize("v", CONSISTENCY, ids=_id)
def test_consistency_vector_verifies_exactly_when_expected(v):
    args = (v["size1"], v["size2"], bytes.fromhex(v["root1"]), bytes.fromhex(v["root2"]), _h(v["proof"]))
    assert merkle.verify_consistency(*args) is v["expect_valid"]


@pytest.mark.parametrize("v", [v for v in CONSISTENCY if v["kind"] in GENERATED_KINDS], ids=_id)
def test_generated_consistency_proof_equals_vector(v, tree):
    assert [p.hex() for p in tree.consistency_proof(v["size1"], v["size2"])] == v["proof"]
    assert tree.root(v["size1"]).hex() == v["root1"] and tree.root(v["size2"]).hex() == v["root2"]


def test_failed_check_names_the_reason():
    one = merkle.leaf_hash(b"")
    with pytest.raises(merkle.ProofError, match="not below tree size"):
        merkle.check_inclusion(one, 1, 1, [], one)
    with pytest.raises(merkle.ProofError, match="larger than second"):
        merkle.check_consistency(2, 1, one, one, [])
