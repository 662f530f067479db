"""Tests for custody.ledger.tree: RFC 6962 / RFC 9162 vectors and Merkle properties."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.ledger.tree import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    MemoryNodeStore,
    MissingNodeError,
    NodeKey,
    RootBuilder,
    StoredNode,
    append_leaf,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_leaves,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

DATA = Path(__file__).resolve().parent.parent / "data"
VECTORS: dict[str, Any] = json.loads((DATA / "merkle_rfc6962_sha256.json").read_text())
SUMDB: dict[str, Any] = json.loads((DATA / "sumdb_tlog.json").read_text())
TESSERA: dict[str, Any] = json.loads((DATA / "tessera_tiled_log_testdata.json").read_text())

H = bytes.fromhex
LEAVES = [H(x) for x in VECTORS["leaf_hashes"]]


def build_store(leaves: Sequence[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for i, h in enumerate(leaves):
        store.add_nodes(append_leaf(store, i, h))
    return store


def flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[pos] ^= mask
    return bytes(b)


def synthetic_leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


VECTOR_STORE = build_store(LEAVES)
FIXED = synthetic_leaves(300, b"fixed")
FIXED_STORE = build_store(FIXED)
FIXED_PREFIX_ROOTS = [root_from_leaves(FIXED[:n]) for n in range(len(FIXED) + 1)]


# --- upstream vectors -------------------------------------------------------


def test_hash_primitives_match_vectors() -> None:
    assert EMPTY_ROOT == H(VECTORS["empty_tree_root"])
    assert EMPTY_ROOT == H(SUMDB["empty_tree_hash_hex"])
    assert [leaf_hash(H(x)) for x in VECTORS["leaf_inputs_hex"]] == LEAVES
    levels = VECTORS["node_hashes_by_level"]
    for level in range(1, len(levels)):
        for i, expected in enumerate(levels[level]):
            below = levels[level - 1]
            assert node_hash(H(below[2 * i]), H(below[2 * i + 1])) == H(expected)


def test_sumdb_record_hash() -> None:
    rec = SUMDB["record_hash"]
    assert leaf_hash(rec["data_utf8"].encode()).hex() == rec["sha256_0x00_prefixed_hex"]


def test_append_builds_exactly_the_upstream_perfect_subtrees() -> None:
    levels = VECTORS["node_hashes_by_level"]
    expected = {
        (level, i): H(h) for level, row in enumerate(levels) for i, h in enumerate(row)
    }
    assert len(VECTOR_STORE) == len(expected) == 15
    assert VECTOR_STORE.get_nodes(list(expected)) == expected


@pytest.mark.parametrize("size", sorted(int(k) for k in VECTORS["root_by_tree_size"]))
def test_root_by_size(size: int) -> None:
    expected = H(VECTORS["root_by_tree_size"][str(size)])
    assert root(VECTOR_STORE, size) == expected
    assert root_from_leaves(LEAVES[:size]) == expected
    builder = RootBuilder()
    builder.extend(LEAVES[:size])
    assert builder.root() == expected
    assert builder.size == size


@pytest.mark.parametrize("case", VECTORS["inclusion_proofs"], ids=lambda c: f"{c['leaf_index']}/{c['tree_size']}")
def test_upstream_inclusion_proofs(case: dict[str, Any]) -> None:
    proof = inclusion_proof(VECTOR_STORE, case["leaf_index"], case["tree_size"])
    assert [p.hex() for p in proof] == case["path"]
    assert LEAVES[case["leaf_index"]] == H(case["leaf_hash"])
    assert verify_inclusion(
        H(case["leaf_hash"]), case["leaf_index"], case["tree_size"], proof, H(case["root"])
    )


@pytest.mark.parametrize("case", VECTORS["consistency_proofs"], ids=lambda c: f"{c['size1']}-{c['size2']}")
def test_upstream_consistency_proofs(case: dict[str, Any]) -> None:
    proof = consistency_proof(VECTOR_STORE, case["size1"], case["size2"])
    assert [p.hex() for p in proof] == case["proof"]
    assert root(VECTOR_STORE, case["size1"]) == H(case["root1"])
    assert root(VECTOR_STORE, case["size2"]) == H(case["root2"])
    assert verify_consistency(case["size1"], case["size2"], H(case["root1"]), H(case["root2"]), proof)


STRICT_OVERRIDES = {
    c["file"]: c["our_rfc9162_verifier_accepts"]
    for c in VECTORS["edge_cases_where_our_strict_verifier_differs_from_upstream_expectation"]["cases"]
}


def test_probe_case_count() -> None:
    assert len(VECTORS["probe_cases"]["inclusion"]) == 98
    assert len(VECTORS["probe_cases"]["consistency"]) == 98
    assert STRICT_OVERRIDES == {
        "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": False
    }


@pytest.mark.parametrize("case", VECTORS["probe_cases"]["inclusion"], ids=lambda c: c["file"])
def test_inclusion_probe(case: dict[str, Any]) -> None:
    expected = STRICT_OVERRIDES.get(case["file"], not case["want_err"])
    got = verify_inclusion(
        H(case["leaf_hash"]),
        case["leaf_index"],
        case["tree_size"],
        [H(p) for p in case["proof"]],
        H(case["root"]),
    )
    assert got is expected


@pytest.mark.parametrize("case", VECTORS["probe_cases"]["consistency"], ids=lambda c: c["file"])
def test_consistency_probe(case: dict[str, Any]) -> None:
    expected = STRICT_OVERRIDES.get(case["file"], not case["want_err"])
    got = verify_consistency(
        case["size1"],
        case["size2"],
        H(case["root1"]),
        H(case["root2"]),
        [H(p) for p in case["proof"]],
    )
    assert got is expected


def tessera_leaves() -> list[bytes]:
    return [leaf_hash(w.encode()) for w in TESSERA["entries_utf8"]]


def test_tessera_level0_tiles_are_leaf_hashes() -> None:
    leaves = tessera_leaves()
    tiles = TESSERA["level0_partial_tiles_hex"]
    assert len(tiles) == 15
    for width in range(1, 16):
        assert H(tiles[f"tile/0/000.p/{width}"]) == b"".join(leaves[:width])


def test_tessera_roots_and_derived_proofs() -> None:
    leaves = tessera_leaves()
    store = build_store(leaves)
    for cp in TESSERA["checkpoints"]:
        assert root(store, cp["tree_size"]).hex() == cp["root_hex"]
    proofs = TESSERA["derived_proofs_checked_against_signed_roots"]["proofs"]
    assert proofs
    roots = {cp["tree_size"]: H(cp["root_hex"]) for cp in TESSERA["checkpoints"]}
    for p in proofs:
        if p["type"] == "inclusion":
            got = inclusion_proof(store, p["leaf_index"], p["tree_size"])
            assert [x.hex() for x in got] == p["path"]
            assert verify_inclusion(
                H(p["leaf_hash_hex"]), p["leaf_index"], p["tree_size"], got, roots[p["tree_size"]]
            ) is p["valid"]
        else:
            got = consistency_proof(store, p["size1"], p["size2"])
            assert [x.hex() for x in got] == p["path"]
            assert verify_consistency(
                p["size1"], p["size2"], roots[p["size1"]], roots[p["size2"]], got
            ) is p["valid"]


# --- strictness of the verifiers --------------------------------------------

GOOD_INC = VECTORS["inclusion_proofs"][2]


def _inc_args() -> tuple[bytes, int, int, list[bytes], bytes]:
    c = GOOD_INC
    return H(c["leaf_hash"]), c["leaf_index"], c["tree_size"], [H(p) for p in c["path"]], H(c["root"])


def test_good_inclusion_baseline() -> None:
    assert verify_inclusion(*_inc_args())


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_inclusion_rejects_non_32_byte_hashes(length: int) -> None:
    leaf, index, size, proof, rt = _inc_args()
    odd = b"\x00" * length
    assert not verify_inclusion(odd, index, size, proof, rt)
    assert not verify_inclusion(leaf, index, size, proof, odd)
    assert not verify_inclusion(leaf, index, size, [proof[0], odd, proof[2]], rt)
    assert not verify_inclusion(leaf, index, size, proof + [odd], rt)


def test_inclusion_rejects_extended_hash_with_valid_prefix() -> None:
    leaf, index, size, proof, rt = _inc_args()
    assert not verify_inclusion(leaf + b"\x00", index, size, proof, rt)
    assert not verify_inclusion(leaf, index, size, proof, rt + b"\x00")
    assert not verify_inclusion(leaf[:31], index, size, proof, rt)


@pytest.mark.parametrize(
    "index,size", [(-1, 8), (5, -8), (8, 8), (5, MAX_TREE_SIZE + 1), (MAX_TREE_SIZE + 6, 8), (True, 8)]
)
def test_inclusion_rejects_out_of_range(index: int, size: int) -> None:
    leaf, _, _, proof, rt = _inc_args()
    assert not verify_inclusion(leaf, index, size, proof, rt)


def test_inclusion_accepts_largest_tree_size_bounds() -> None:
    leaf = leaf_hash(b"x")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 0, [], leaf)


def test_consistency_strictness() -> None:
    r8 = root(VECTOR_STORE, 8)
    r6 = root(VECTOR_STORE, 6)
    proof = consistency_proof(VECTOR_STORE, 6, 8)
    assert verify_consistency(6, 8, r6, r8, proof)
    for length in (0, 12, 31, 33):
        odd = b"\x01" * length
        assert not verify_consistency(6, 8, odd, r8, proof)
        assert not verify_consistency(6, 8, r6, odd, proof)
        assert not verify_consistency(6, 8, r6, r8, [proof[0], odd, proof[2]])
        assert not verify_consistency(3, 3, odd, odd, [])
    assert not verify_consistency(8, 6, r8, r6, proof)
    assert not verify_consistency(-1, 8, r6, r8, proof)
    assert not verify_consistency(6, MAX_TREE_SIZE + 1, r6, r8, proof)
    assert not verify_consistency(6, 8, r6, r8, proof * 30)


def test_consistency_trivial_cases() -> None:
    r5 = root(VECTOR_STORE, 5)
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, root(VECTOR_STORE, 4), [])
    assert not verify_consistency(5, 5, r5, r5, [r5])
    assert verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    assert not verify_consistency(0, 5, r5, r5, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, r5, [])
    assert consistency_proof(VECTOR_STORE, 0, 5) == []
    assert consistency_proof(VECTOR_STORE, 5, 5) == []


# --- generation-side contracts ------------------------------------------------


def test_append_leaf_returns_nodes_without_storing() -> None:
    store = build_store(LEAVES[:7])
    before = len(store)
    created = append_leaf(store, 7, LEAVES[7])
    assert len(store) == before
    levels = VECTORS["node_hashes_by_level"]
    assert created == [
        (0, 7, LEAVES[7]),
        (1, 3, H(levels[1][3])),
        (2, 1, H(levels[2][1])),
        (3, 0, H(levels[3][0])),
    ]
    assert append_leaf(store, 6, LEAVES[6]) == [(0, 6, LEAVES[6])]


def test_append_leaf_missing_sibling_raises() -> None:
    store = build_store(LEAVES[:3])
    with pytest.raises(MissingNodeError) as info:
        append_leaf(MemoryNodeStore(), 3, LEAVES[3])
    assert info.value.keys == ((0, 2), (1, 0))
    with pytest.raises(ValueError):
        append_leaf(store, 3, b"short")
    with pytest.raises(ValueError):
        append_leaf(store, -1, LEAVES[0])


def test_proofs_beyond_stored_size_raise_missing_node() -> None:
    store = build_store(LEAVES[:5])
    with pytest.raises(MissingNodeError):
        root(store, 6)
    with pytest.raises(MissingNodeError):
        inclusion_proof(store, 0, 6)
    with pytest.raises(ValueError):
        inclusion_proof(store, 5, 5)
    with pytest.raises(ValueError):
        consistency_proof(store, 5, 4)


def test_memory_store_refuses_to_overwrite() -> None:
    store = MemoryNodeStore()
    store.add_nodes([(0, 0, LEAVES[0])])
    store.add_nodes([(0, 0, LEAVES[0])])
    with pytest.raises(ValueError):
        store.add_nodes([(0, 0, LEAVES[1])])
    with pytest.raises(ValueError):
        store.add_nodes([(0, 1, b"short")])
    assert store.get_nodes([(0, 0), (0, 1)]) == {(0, 0): LEAVES[0]}


def test_subtree_hash_ranges() -> None:
    for start, end in [(0, 1), (0, 300), (256, 300), (288, 300), (64, 128), (96, 100), (299, 300)]:
        assert subtree_hash(FIXED_STORE, start, end) == root_from_leaves(FIXED[start:end])
    for start, end in [(1, 3), (3, 7), (0, 0), (5, 4), (-1, 0), (96, 130)]:
        with pytest.raises(ValueError):
            subtree_hash(FIXED_STORE, start, end)


class CountingStore:
    """Answers every lookup with a synthetic hash and records the calls."""

    def __init__(self) -> None:
        self.calls: list[list[NodeKey]] = []

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        self.calls.append(list(keys))
        return {k: hashlib.sha256(repr(k).encode()).digest() for k in keys}

    def add_nodes(self, nodes: Sequence[StoredNode]) -> None:
        raise AssertionError("read-only")


@pytest.mark.parametrize("size", [2**40 + 12345, 2**63 - 1, 10**6 + 1])
def test_lookups_are_one_batch_of_logarithmic_size(size: int) -> None:
    bound = 2 * size.bit_length()
    for action in (
        lambda s: root(s, size),
        lambda s: inclusion_proof(s, size // 3, size),
        lambda s: inclusion_proof(s, size - 1, size),
        lambda s: consistency_proof(s, size // 2 + 1, size),
        lambda s: consistency_proof(s, 1000, size),
        lambda s: append_leaf(s, (1 << (size.bit_length() - 1)) - 1, b"\x07" * 32),
    ):
        store = CountingStore()
        action(store)
        assert len(store.calls) == 1
        assert len(store.calls[0]) <= bound
        assert len(set(store.calls[0])) == len(store.calls[0])


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return rfc_path(m, leaves[:k]) + [root_from_leaves(leaves[k:])]
    return rfc_path(m - k, leaves[k:]) + [root_from_leaves(leaves[:k])]


def rfc_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [root_from_leaves(leaves)]
    k = _k(n)
    if m <= k:
        return rfc_subproof(m, leaves[:k], b) + [root_from_leaves(leaves[k:])]
    return rfc_subproof(m - k, leaves[k:], False) + [root_from_leaves(leaves[:k])]


def test_proofs_equal_rfc_recursive_definitions() -> None:
    for n in list(range(1, 70)) + [255, 256, 257, 300]:
        prefix = FIXED[:n]
        for i in range(0, n, max(1, n // 40)):
            assert inclusion_proof(FIXED_STORE, i, n) == rfc_path(i, prefix)
        for m in range(1, n, max(1, n // 40)):
            assert consistency_proof(FIXED_STORE, m, n) == rfc_subproof(m, prefix, True)
    assert len(inclusion_proof(FIXED_STORE, 299, 300)) == 5
    assert consistency_proof(FIXED_STORE, 256, 300) == [root_from_leaves(FIXED[256:300])]


# --- exhaustive small-tree checks ----------------------------------------------


def test_every_inclusion_and_consistency_proof_up_to_64() -> None:
    for n in range(1, 65):
        rn = FIXED_PREFIX_ROOTS[n]
        assert root(FIXED_STORE, n) == rn
        for i in range(n):
            proof = inclusion_proof(FIXED_STORE, i, n)
            assert verify_inclusion(FIXED[i], i, n, proof, rn)
            assert not verify_inclusion(FIXED[(i + 1) % 300], i, n, proof, rn)
        for m in range(0, n + 1):
            proof = consistency_proof(FIXED_STORE, m, n)
            assert verify_consistency(m, n, FIXED_PREFIX_ROOTS[m], rn, proof)


def test_every_byte_flip_breaks_small_proofs() -> None:
    for n in range(1, 21):
        rn = FIXED_PREFIX_ROOTS[n]
        for i in range(n):
            proof = inclusion_proof(FIXED_STORE, i, n)
            for pos in range(32):
                assert not verify_inclusion(FIXED[i], i, n, proof, flip(rn, pos))
                assert not verify_inclusion(flip(FIXED[i], pos), i, n, proof, rn)
                for j in range(len(proof)):
                    bad = list(proof)
                    bad[j] = flip(bad[j], pos, 0x80)
                    assert not verify_inclusion(FIXED[i], i, n, bad, rn)
        for m in range(1, n):
            rm = FIXED_PREFIX_ROOTS[m]
            proof = consistency_proof(FIXED_STORE, m, n)
            for pos in range(32):
                assert not verify_consistency(m, n, flip(rm, pos), rn, proof)
                assert not verify_consistency(m, n, rm, flip(rn, pos), proof)
                for j in range(len(proof)):
                    bad = list(proof)
                    bad[j] = flip(bad[j], pos, 0x80)
                    assert not verify_consistency(m, n, rm, rn, bad)


def test_root_builder_matches_every_prefix() -> None:
    builder = RootBuilder()
    assert builder.root() == EMPTY_ROOT
    for n, leaf in enumerate(FIXED, start=1):
        builder.add(leaf)
        assert builder.root() == FIXED_PREFIX_ROOTS[n]
        assert root(FIXED_STORE, n) == FIXED_PREFIX_ROOTS[n]
    with pytest.raises(ValueError):
        builder.add(b"\x00" * 31)
    with pytest.raises(ValueError):
        root_from_leaves([b"\x00" * 33])


# --- Hypothesis properties -------------------------------------------------------

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[bytes], MemoryNodeStore]:
    size = draw(st.integers(min_value=1, max_value=300))
    salt = draw(st.binary(min_size=1, max_size=8))
    leaves = synthetic_leaves(size, salt)
    return leaves, build_store(leaves)


@SETTINGS
@given(trees())
def test_prop_store_root_equals_reference(tree: tuple[list[bytes], MemoryNodeStore]) -> None:
    leaves, store = tree
    builder = RootBuilder()
    builder.extend(leaves)
    expected = root_from_leaves(leaves)
    assert root(store, len(leaves)) == expected
    assert builder.root() == expected


@SETTINGS
@given(trees(), st.data())
def test_prop_every_inclusion_proof_verifies(
    tree: tuple[list[bytes], MemoryNodeStore], data: st.DataObject
) -> None:
    leaves, store = tree
    size = data.draw(st.integers(min_value=1, max_value=len(leaves)), label="size")
    rt = root(store, size)
    assert rt == root_from_leaves(leaves[:size])
    for i in range(size):
        proof = inclusion_proof(store, i, size)
        assert verify_inclusion(leaves[i], i, size, proof, rt)
    i = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(store, i, size)
    pos = data.draw(st.integers(min_value=0, max_value=31), label="pos")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    assert not verify_inclusion(leaves[i], i, size, proof, flip(rt, pos, mask))
    if proof:
        j = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="elem")
        bad = list(proof)
        bad[j] = flip(bad[j], pos, mask)
        assert not verify_inclusion(leaves[i], i, size, bad, rt)
        assert not verify_inclusion(leaves[i], i, size, proof[:-1], rt)
    assert not verify_inclusion(leaves[i], i, size, proof + [rt], rt)


@SETTINGS
@given(trees(), st.data())
def test_prop_every_consistency_proof_verifies(
    tree: tuple[list[bytes], MemoryNodeStore], data: st.DataObject
) -> None:
    leaves, store = tree
    new = data.draw(st.integers(min_value=1, max_value=len(leaves)), label="new")
    new_root = root(store, new)
    roots = [root(store, m) for m in range(new + 1)]
    for m in range(new + 1):
        proof = consistency_proof(store, m, new)
        assert verify_consistency(m, new, roots[m], new_root, proof)
    if new < 2:
        return
    m = data.draw(st.integers(min_value=1, max_value=new - 1), label="old")
    proof = consistency_proof(store, m, new)
    pos = data.draw(st.integers(min_value=0, max_value=31), label="pos")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    assert not verify_consistency(m, new, flip(roots[m], pos, mask), new_root, proof)
    assert not verify_consistency(m, new, roots[m], flip(new_root, pos, mask), proof)
    j = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="elem")
    bad = list(proof)
    bad[j] = flip(bad[j], pos, mask)
    assert not verify_consistency(m, new, roots[m], new_root, bad)
    assert not verify_consistency(m, new, roots[m], new_root, proof[:-1])
    assert not verify_consistency(m, new, roots[m], new_root, proof + [new_root])


@SETTINGS
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=300))
def test_prop_root_builder_equals_reference(leaves: list[bytes]) -> None:
    builder = RootBuilder()
    builder.extend(leaves)
    assert builder.root() == root_from_leaves(leaves)
    assert builder.size == len(leaves)
