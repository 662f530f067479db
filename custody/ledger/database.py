"""The custody ledger: an append-only sequence of hash-chained events in a SQL database.

``Ledger`` is the face of the wing's SQL event store; the parts behind it are

    tables       the tables (SQLAlchemy Core) and nothing else; the migrations import only it
    engine       the database URL (secrets masked in messages) and the engine (SQLite, PostgreSQL)
    transaction  the one boundary: read and write connections, the append transaction, and the
                 translation of database errors into ``LedgerUnavailable``/``LedgerCorrupt``
    events       the event, its hash, and storing, reading and verifying the chain
    nodes        the Merkle tree's stored nodes
    schema       migrations: status, upgrade, readiness
    queries      the queries of the wings above (audit, anchors, publish, package)
    faults       the test-only pause in the middle of an append (CUSTODY_TEST_PAUSE)

Nothing is ever updated or deleted: triggers refuse it, and the chain (and the signed
checkpoints) make any change detectable. Current state, such as which objects are stored, is
kept in derived tables written in the same transaction as the event that implies it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from custody import times
from custody.errors import Finding, LedgerCorrupt
from custody.ledger import events as stored_events
from custody.ledger import schema
from custody.ledger.engine import APPEND_LOCK, database_url, make_engine, where
from custody.ledger.events import GENESIS, CustodyEvent, event_hash
from custody.ledger.nodes import SqlNodeStore
from custody.ledger.schema import HEAD_REVISION, SchemaStatus, SchemaUpgrade, migration_chain
from custody.ledger.tables import checkpoints, evidence, metadata
from custody.ledger.transaction import EventSigner, WriteTransaction, reading, writing

__all__ = [
    "APPEND_LOCK",
    "GENESIS",
    "HEAD_REVISION",
    "CustodyEvent",
    "Ledger",
    "SchemaStatus",
    "SchemaUpgrade",
    "event_hash",
    "metadata",
    "migration_chain",
]

T = TypeVar("T")


class Ledger:
    """Append and read custody events. One instance per database URL."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        """Raises ``ConfigError`` (exit 5) for a URL that is not SQLite or PostgreSQL."""
        self.url = url
        parsed = database_url(url)
        self.where = where(parsed)
        self.busy_timeout = busy_timeout
        self.engine: Engine = make_engine(parsed, busy_timeout)
        self.event_signer: EventSigner | None = None
        """When set, every event appended is signed with it in the same transaction (a row of
        ``event_signatures``); a signing failure appends nothing."""
        self.append_policy: Callable[[CustodyEvent], None] | None = None
        """When set, called with each event before it is stored; it refuses an event by raising."""

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        """Close the database connections this ledger holds."""
        self.engine.dispose()

    def create(self) -> None:
        """Create the schema, or bring an existing one to ``HEAD_REVISION``: ``upgrade``."""
        self.upgrade()

    def upgrade(self) -> SchemaUpgrade:
        """Bring the database to ``HEAD_REVISION`` (``custody.ledger.schema.upgrade``)."""
        return schema.upgrade(self)

    def schema_status(self) -> SchemaStatus:
        """The database's revision against this tool's (``custody db status``)."""
        return schema.schema_status(self)

    def check_ready(self) -> None:
        """Raise ``LedgerUnavailable`` (exit 5) unless the database is at ``HEAD_REVISION``,
        saying what to do (``custody.ledger.schema.check_ready``)."""
        schema.check_ready(self)

    def has_schema(self) -> bool:
        """Whether the database holds the ledger's tables; False when it cannot be reached."""
        return schema.has_schema(self)

    def transaction(self) -> WriteTransaction:
        """A write transaction that holds the append lock for its whole length."""
        return WriteTransaction(self)

    def append(
        self,
        action: str,
        *,
        actor: str,
        role: str = "technician",
        subject: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> CustodyEvent:
        """Append one event in its own transaction."""
        with self.transaction() as tx:
            return tx.append(action, actor=actor, role=role, subject=subject, details=details)

    def head(self) -> tuple[int, str]:
        """(number of events, hash of the last event or the genesis hash)."""
        with reading(self) as conn:
            return stored_events.head(conn)

    def events(
        self,
        *,
        evidence: str | None = None,
        incident: str | None = None,
        actions: Sequence[str] | None = None,
        start: int = 0,
        batch: int = 5000,
    ) -> Iterator[CustodyEvent]:
        """Events in sequence order, optionally only those about one evidence object, one
        incident, and/or with one of ``actions``."""
        with reading(self) as conn:
            yield from stored_events.read_events(
                conn, evidence=evidence, incident=incident, actions=actions, start=start, batch=batch
            )

    def evidence_row(self, blake3: str) -> Mapping[str, Any] | None:
        with reading(self) as conn:
            row = conn.execute(select(evidence).where(evidence.c.blake3 == blake3)).first()
        return None if row is None else dict(row._mapping)

    def size_known(self, size: int) -> bool:
        """Whether some preserved object has exactly ``size`` bytes (identical bytes have
        identical sizes, so only then can a file be a repeat)."""
        with reading(self) as conn:
            return conn.execute(select(evidence.c.blake3).where(evidence.c.size == size).limit(1)).first() is not None

    def find_evidence(self, prefix: str) -> list[str]:
        """Digests of stored objects whose BLAKE3 starts with ``prefix`` (at most 2 returned)."""
        with reading(self) as conn:
            rows = conn.execute(select(evidence.c.blake3).where(evidence.c.blake3.like(prefix + "%")).limit(2)).all()
        return [r.blake3 for r in rows]

    def all_evidence(self) -> list[Mapping[str, Any]]:
        with reading(self) as conn:
            rows = conn.execute(select(evidence).order_by(evidence.c.blake3)).all()
        return [dict(r._mapping) for r in rows]

    def with_nodes(self, work: Callable[[SqlNodeStore], T]) -> T:
        """Run ``work(node_store)`` in one read transaction over the tree's stored nodes."""
        with reading(self) as conn, conn.begin():
            return work(SqlNodeStore(conn))

    def checkpoint_rows(self) -> list[Mapping[str, Any]]:
        """Every checkpoint recorded in the database, smallest tree first."""
        with reading(self) as conn:
            rows = conn.execute(select(checkpoints).order_by(checkpoints.c.size)).all()
        return [dict(r._mapping) for r in rows]

    def record_checkpoint(self, *, size: int, root: str, note: str, store_key: str) -> None:
        """Record a signed checkpoint (once per tree size; a repeat is ignored)."""
        with writing(self) as conn:
            exists = conn.execute(select(checkpoints.c.size).where(checkpoints.c.size == size)).first()
            if exists is None:
                conn.execute(checkpoints.insert().values(size=size, root=root, note=note, time=times.stamp(), store_key=store_key))

    def leaf_hashes_from(self, start: int) -> Iterator[str]:
        """Stored event hashes (hex) from sequence number ``start`` on."""
        for _seq, _prev, digest in self.leaf_hashes(start=start, batch=1000):
            yield digest

    def leaf_hashes(self, start: int = 0, batch: int = 20000) -> Iterator[tuple[int, str, str]]:
        """(seq, prev_hash, hash) of every event from ``start``, in order, without decoding details."""
        with reading(self) as conn:
            yield from stored_events.leaf_hashes(conn, start, batch)

    def verify_chain(self, on_leaf: Callable[[bytes], None] | None = None, batch: int = 20000) -> tuple[int, list[Finding]]:
        """Recompute every event's hash and the links between them.

        Returns (events checked, findings). A finding names each broken event; checking goes on
        after the first so that every break is reported. ``on_leaf(recomputed)`` receives each
        event's recomputed leaf hash (32 bytes), in order, to rebuild the Merkle tree.

        The canonical bytes are assembled from the stored columns (details are stored in
        canonical form), so any change to any stored byte changes the recomputed hash."""
        with reading(self) as conn:
            return stored_events.verify_chain(conn, on_leaf, batch)

    def verify_or_raise(self) -> int:
        count, findings = self.verify_chain()
        if findings:
            raise LedgerCorrupt(findings)
        return count
