"""RFC 6962 / RFC 9162 Merkle tree over SHA-256.

Hashing follows RFC 9162 section 2.1.1: a leaf hash is SHA-256(0x00 || data),
an interior node is SHA-256(0x01 || left || right), and the hash of the empty
tree is SHA-256 of the empty string.

Storage model: a :class:`NodeStore` holds the hashes of *perfect aligned
subtrees*, addressed by ``(level, index)``.  Level 0 holds leaf hashes; node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
A node is stored only once every leaf it covers has been appended, so stored
hashes never change.  Every other hash the log needs (roots at any size,
inclusion and consistency proofs, the right edge of the tree) is computed from
at most O(log n) stored nodes, fetched with a single ``get_nodes`` call.

Verification contract: :func:`verify_inclusion` and :func:`verify_consistency`
never raise for bad input values.  They return ``False`` for every proof that
does not verify, including any hash (leaf hash, root, or proof element) that is
not exactly 32 bytes, any negative index or size, any index or size that does
not fit an unsigned 64-bit integer, and any index outside the tree.

Proof-generation functions (:func:`inclusion_proof`, :func:`consistency_proof`,
:func:`subtree_hash`, :func:`root`, :func:`append_leaf`) raise ``ValueError``
for out-of-range arguments and :class:`MissingNodeError` when the store lacks a
node the computation needs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "MemoryNodeStore",
    "MissingNodeError",
    "NodeKey",
    "NodeStore",
    "RootBuilder",
    "StoredNode",
    "append_leaf",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaves",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
MAX_TREE_SIZE: Final = (1 << 64) - 1
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_MAX_PROOF_LEN: Final = 64

NodeKey = tuple[int, int]
StoredNode = tuple[int, int, bytes]


class MissingNodeError(LookupError):
    """A node required for a computation is absent from the store.

    ``keys`` lists the missing ``(level, index)`` addresses.
    """

    def __init__(self, keys: Sequence[NodeKey]) -> None:
        self.keys: tuple[NodeKey, ...] = tuple(sorted(keys))
        super().__init__(f"missing tree nodes (level, index): {list(self.keys)}")


class NodeStore(Protocol):
    """Persistent storage of perfect aligned subtree hashes.

    Implementations store immutable 32-byte hashes keyed by ``(level, index)``.
    """

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the stored hashes for ``keys``; absent keys are omitted."""
        ...

    def add_nodes(self, nodes: Sequence[StoredNode]) -> None:
        """Store ``(level, index, hash)`` triples."""
        ...


class MemoryNodeStore:
    """In-memory :class:`NodeStore`.

    Re-adding an existing node with the same hash is a no-op; re-adding it with
    a different hash raises ``ValueError`` because stored nodes are immutable.
    """

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, bytes] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the stored hashes for ``keys``; absent keys are omitted."""
        nodes = self._nodes
        return {key: nodes[key] for key in keys if key in nodes}

    def add_nodes(self, nodes: Sequence[StoredNode]) -> None:
        """Store ``(level, index, hash)`` triples; see the class contract."""
        for level, index, value in nodes:
            if level < 0 or index < 0 or len(value) != HASH_SIZE:
                raise ValueError(f"invalid node ({level}, {index})")
            key = (level, index)
            existing = self._nodes.get(key)
            if existing is not None and existing != value:
                raise ValueError(f"node {key} already stored with a different hash")
            self._nodes[key] = bytes(value)


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_u64(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_TREE_SIZE
    )


def _require_size(name: str, value: int) -> None:
    if not _is_u64(value):
        raise ValueError(f"{name} must be an integer in [0, 2**64 - 1], got {value!r}")


def _require_hash(name: str, value: bytes) -> None:
    if not _is_hash(value):
        raise ValueError(f"{name} must be {HASH_SIZE} bytes")


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _check_rfc_range(start: int, end: int) -> None:
    if start < 0 or end <= start:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    span = 1 << (end - start - 1).bit_length()
    if start % span:
        raise ValueError(
            f"leaf range [{start}, {end}) is not aligned like an RFC 9162 subtree"
        )


def _decompose(start: int, end: int) -> list[NodeKey]:
    keys: list[NodeKey] = []
    pos = start
    count = end - start
    for level in range(count.bit_length() - 1, -1, -1):
        if (count >> level) & 1:
            keys.append((level, pos >> level))
            pos += 1 << level
    return keys


def _fetch(store: NodeStore, keys: Iterable[NodeKey]) -> Mapping[NodeKey, bytes]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = store.get_nodes(wanted)
    missing = [key for key in wanted if key not in found]
    if missing:
        raise MissingNodeError(missing)
    return found


def _fold(hashes: Sequence[bytes]) -> bytes:
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hash(nodes: Mapping[NodeKey, bytes], start: int, end: int) -> bytes:
    return _fold([nodes[key] for key in _decompose(start, end)])


def _ranges_hashes(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    nodes = _fetch(store, (key for s, e in ranges for key in _decompose(s, e)))
    return [_range_hash(nodes, s, e) for s, e in ranges]


def append_leaf(store: NodeStore, size: int, leaf: bytes) -> list[StoredNode]:
    """Compute the nodes created by appending leaf number ``size`` (0-based).

    ``store`` must already hold the perfect subtrees of the first ``size``
    leaves.  Returns ``[(0, size, leaf), (1, size // 2, h1), ...]``: the leaf
    itself followed by every perfect subtree it completes, lowest level first.
    The store is NOT modified; the caller persists the result with
    ``store.add_nodes(...)``, typically in the same transaction as the entry.
    Performs one ``get_nodes`` call for at most log2(size + 1) siblings.
    """
    _require_size("size", size)
    if size == MAX_TREE_SIZE:
        raise ValueError("tree is full")
    _require_hash("leaf", leaf)
    completed = ((size + 1) & ~size).bit_length() - 1
    sibling_keys = [(level, (size >> level) - 1) for level in range(completed)]
    siblings = _fetch(store, sibling_keys)
    current = bytes(leaf)
    created: list[StoredNode] = [(0, size, current)]
    for level, key in enumerate(sibling_keys):
        current = node_hash(siblings[key], current)
        created.append((level + 1, size >> (level + 1), current))
    return created


def root(store: NodeStore, size: int) -> bytes:
    """Return MTH of the first ``size`` leaves (``EMPTY_ROOT`` for size 0).

    Uses one ``get_nodes`` call for popcount(size) perfect subtrees.
    """
    _require_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    return _ranges_hashes(store, [(0, size)])[0]


def subtree_hash(store: NodeStore, start: int, end: int) -> bytes:
    """Return MTH of leaves ``[start, end)``.

    The range must have the shape RFC 9162 subtrees have: non-empty, and
    ``start`` a multiple of the smallest power of two >= ``end - start``.
    Every range used by PATH, PROOF and the tree root has this shape.
    Raises ``ValueError`` for other ranges.
    """
    _check_rfc_range(start, end)
    _require_size("end", end)
    return _ranges_hashes(store, [(start, end)])[0]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, new_size
    whole_old_tree = True
    while True:
        n, m = hi - lo, old_size - lo
        if m == n:
            if not whole_old_tree:
                ranges.append((lo, hi))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    ranges.reverse()
    return ranges


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """Return PATH(index, D[size]) per RFC 9162 section 2.1.3.1.

    Hashes are ordered from the leaf's sibling up to the root's child.
    Requires ``0 <= index < size``; one ``get_nodes`` call of O(log size) keys.
    """
    _require_size("size", size)
    if not (isinstance(index, int) and 0 <= index < size):
        raise ValueError(f"leaf index {index!r} outside tree of size {size}")
    return _ranges_hashes(store, _inclusion_ranges(index, size))


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]) per RFC 9162 section 2.1.4.1.

    Requires ``0 <= old_size <= new_size``.  Returns ``[]`` when
    ``old_size == new_size`` or ``old_size == 0`` (the cases
    :func:`verify_consistency` accepts with an empty proof).
    One ``get_nodes`` call of O(log new_size) keys.
    """
    _require_size("old_size", old_size)
    _require_size("new_size", new_size)
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} exceeds new_size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return _ranges_hashes(store, _consistency_ranges(old_size, new_size))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Verify an inclusion proof per RFC 9162 section 2.1.3.2.

    Returns ``True`` only if ``proof`` proves that ``leaf`` (a leaf hash) is
    leaf number ``index`` of the tree of ``size`` leaves with root
    ``root_hash``.  Returns ``False`` for every malformed input (see the module
    contract); never raises for bad values.
    """
    if not (_is_hash(leaf) and _is_hash(root_hash)):
        return False
    if not (_is_u64(index) and _is_u64(size)) or index >= size:
        return False
    if len(proof) > _MAX_PROOF_LEN or not all(_is_hash(p) for p in proof):
        return False
    fn, sn = index, size - 1
    acc = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            acc = node_hash(p, acc)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            acc = node_hash(acc, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(acc, root_hash)


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Verify a consistency proof per RFC 9162 section 2.1.4.2.

    Beyond the RFC algorithm (defined for ``0 < old_size < new_size``):
    equal sizes verify iff the proof is empty and the roots are equal;
    ``old_size == 0`` verifies iff the proof is empty and ``old_root`` is
    ``EMPTY_ROOT`` (and ``new_root`` is ``EMPTY_ROOT`` too when
    ``new_size == 0``).  Returns ``False`` for every malformed input (see the
    module contract); never raises for bad values.
    """
    if not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if not (_is_u64(old_size) and _is_u64(new_size)) or old_size > new_size:
        return False
    if len(proof) > _MAX_PROOF_LEN or not all(_is_hash(p) for p in proof):
        return False
    if old_size == 0:
        if proof or not hmac.compare_digest(old_root, EMPTY_ROOT):
            return False
        return new_size != 0 or hmac.compare_digest(new_root, EMPTY_ROOT)
    if old_size == new_size:
        return not proof and hmac.compare_digest(old_root, new_root)
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return (
        sn == 0
        and hmac.compare_digest(fr, old_root)
        and hmac.compare_digest(sr, new_root)
    )


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) over the given leaf hashes by the RFC 9162 recursion.

    Reference implementation: O(n) hashing, O(log n) recursion depth.
    Raises ``ValueError`` if any element is not a 32-byte hash.
    """
    for h in leaf_hashes:
        _require_hash("leaf hash", h)

    def mth(start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return leaf_hashes[start]
        k = _largest_power_of_two_below(n)
        return node_hash(mth(start, start + k), mth(start + k, end))

    if not leaf_hashes:
        return EMPTY_ROOT
    return bytes(mth(0, len(leaf_hashes)))


class RootBuilder:
    """Streaming MTH computation keeping O(log n) state (a compact range).

    ``add`` appends one leaf hash; ``root`` returns MTH of all leaves added
    so far (``EMPTY_ROOT`` if none) without changing the state.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves added."""
        return self._size

    def add(self, leaf: bytes) -> None:
        """Append one 32-byte leaf hash; raises ``ValueError`` otherwise."""
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        stack = self._stack
        acc = leaf
        n = self._size
        sha256 = hashlib.sha256
        while n & 1:
            acc = sha256(_NODE_PREFIX + stack.pop() + acc).digest()
            n >>= 1
        stack.append(acc)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append every leaf hash from ``leaves`` in order."""
        for leaf in leaves:
            self.add(leaf)

    def root(self) -> bytes:
        """Return MTH of the leaves added so far."""
        if not self._stack:
            return EMPTY_ROOT
        return _fold(self._stack)
