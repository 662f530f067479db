"""The Merkle tree's stored nodes: the perfect-subtree hashes in ``tree_nodes``
(``custody.ledger.tree.NodeStore`` over a connection the caller holds)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import Connection, TextClause, text

from custody.ledger.tables import tree_nodes
from custody.ledger.tree import StoredNode


@functools.lru_cache(maxsize=128)
def _nodes_by_key(count: int) -> TextClause:
    """A lookup of ``count`` nodes: one indexed equality per key, OR-ed together (a row-value
    IN makes SQLite scan the whole table). Parameters ``l0, i0, l1, i1, ...``."""
    terms = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(count))
    return text(f"SELECT level, idx, hash FROM tree_nodes WHERE {terms}")


class SqlNodeStore:
    """The Merkle tree's perfect-subtree hashes, in the ``tree_nodes`` table (custody.ledger.tree.NodeStore).

    With ``cache``, nodes read or written through this object are remembered, so a transaction
    that appends many events reads the tree's right edge from the database only once."""

    def __init__(self, conn: Connection, cache: bool = False) -> None:
        self.conn = conn
        self._cache: dict[tuple[int, int], bytes] | None = {} if cache else None

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        missing = list(keys)
        if self._cache is not None:
            missing = []
            for key in keys:
                if key in self._cache:
                    found[key] = self._cache[key]
                else:
                    missing.append(key)
        if missing:
            params: dict[str, int] = {}
            for n, (level, index) in enumerate(missing):
                params[f"l{n}"] = level
                params[f"i{n}"] = index
            rows = self.conn.execute(_nodes_by_key(len(missing)), params).all()
            for row in rows:
                found[(row.level, row.idx)] = bytes.fromhex(row.hash)
                if self._cache is not None:
                    self._cache[(row.level, row.idx)] = found[(row.level, row.idx)]
        return found

    def add_nodes(self, nodes: Sequence[StoredNode]) -> None:
        if nodes:
            self.conn.execute(tree_nodes.insert(), [{"level": lv, "idx": ix, "hash": h.hex()} for lv, ix, h in nodes])
            if self._cache is not None:
                for level, index, digest in nodes:
                    self._cache[(level, index)] = digest
