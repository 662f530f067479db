"""Queries over the ledger's tables for the wings above it (audit, anchors, publish, package),
so that no SQL runs outside the ledger wing. Each runs through the boundary of
``custody.ledger.transaction``: database errors become ``LedgerUnavailable`` as in ``Ledger``.

The two scans over every row of a large table (a level of the Merkle tree for the public log's
tiles, the incident events for the published data) read through the database driver's own
cursor: SQLAlchemy's row objects would cost more than the reading."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from custody.errors import Finding, FindingKind, LedgerCorrupt
from custody.ledger.database import Ledger
from custody.ledger.signatures import StoredSignature
from custody.ledger.tables import checkpoint_anchors, event_signatures, events, tree_nodes
from custody.ledger.transaction import reading, translated, writing


@dataclass(frozen=True)
class LedgerEventSummary:
    """The parts of an event a scan over many events needs (not its hashes or canonical bytes);
    ``details`` is ``{}`` when the stored details are not a JSON object."""

    seq: int
    time: str
    action: str
    evidence: str | None
    details: dict[str, Any]


def _details(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def events_with_actions(
    ledger: Ledger, actions: Sequence[str], before: int, batch: int = 5000
) -> Iterator[LedgerEventSummary]:
    """Events with one of ``actions`` and a sequence number below ``before``, in order (one
    indexed query per batch; the details of other events are never decoded)."""
    t = events
    position = 0
    query = (
        select(t.c.seq, t.c.time, t.c.action, t.c.subject_evidence, t.c.details)
        .where(t.c.action.in_(list(actions)))
        .order_by(t.c.seq)
        .limit(batch)
    )
    with reading(ledger) as conn:
        while position < before:
            rows = conn.execute(query.where(t.c.seq >= position, t.c.seq < before)).all()
            if not rows:
                return
            for row in rows:
                yield LedgerEventSummary(row.seq, row.time, row.action, row.subject_evidence, _details(row.details))
            position = rows[-1].seq + 1


def signatures_for(ledger: Ledger, seqs: Sequence[int], batch: int = 500) -> dict[int, StoredSignature]:
    """The stored SSH signatures of the events ``seqs`` (those that have one), by event."""
    found: dict[int, StoredSignature] = {}
    wanted = sorted(set(seqs))
    t = event_signatures
    with reading(ledger) as conn:
        for at in range(0, len(wanted), batch):
            rows = conn.execute(select(t).where(t.c.seq.in_(wanted[at:at + batch]))).all()
            for row in rows:
                found[row.seq] = StoredSignature(row.seq, row.signer, row.key_fingerprint, row.signature)
    return found


def record_anchor_row(ledger: Ledger, *, size: int, kind: str, issuer: str, body: str, time: str, store_key: str) -> None:
    """Record what an outsider gave for checkpoint ``size`` (once per size, kind and issuer; a
    repeat is ignored), in a write transaction."""
    t = checkpoint_anchors
    with writing(ledger) as conn:
        exists = conn.execute(
            select(t.c.size).where(t.c.size == size, t.c.kind == kind, t.c.issuer == issuer)
        ).first()
        if exists is None:
            conn.execute(t.insert().values(size=size, kind=kind, issuer=issuer, body=body, time=time, store_key=store_key))


def anchor_rows(ledger: Ledger, *, size: int | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Recorded anchors (every column), by size then kind then issuer."""
    t = checkpoint_anchors
    query = select(t).order_by(t.c.size, t.c.kind, t.c.issuer)
    if size is not None:
        query = query.where(t.c.size == size)
    if kind is not None:
        query = query.where(t.c.kind == kind)
    with reading(ledger) as conn:
        rows = conn.execute(query).all()
    return [dict(row._mapping) for row in rows]


def largest_anchored_sizes(ledger: Ledger, kind: str) -> dict[str, int]:
    """For each issuer of anchors of ``kind``, the largest checkpoint size it gave one for."""
    t = checkpoint_anchors
    with reading(ledger) as conn:
        rows = conn.execute(select(t.c.issuer, func.max(t.c.size)).where(t.c.kind == kind).group_by(t.c.issuer)).all()
    return {str(issuer): int(size) for issuer, size in rows}


def _mark(conn: Connection) -> str:
    """The driver's parameter marker: ``?`` for SQLite, ``%s`` for psycopg (pyformat)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _level_hashes(ledger: Ledger, conn: Connection, level: int, start: int, end: int, batch: int) -> Iterator[list[str]]:
    expected = start
    with translated(ledger):
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        mark = _mark(conn)
        cursor.execute(
            f"SELECT idx, hash FROM {tree_nodes.name} WHERE level = {mark} AND idx >= {mark} AND idx < {mark} ORDER BY idx",
            (level, start, end),
        )
        while rows := cursor.fetchmany(batch):
            if rows[0][0] != expected or rows[-1][0] != expected + len(rows) - 1:
                break
            yield [row[1] for row in rows]
            expected += len(rows)
        cursor.close()
    if expected != end:
        raise LedgerCorrupt([Finding(FindingKind.LEDGER_CORRUPT, "merkle tree", f"tree nodes of level {level} are missing from {expected}")])


def node_hash_runs(
    ledger: Ledger, runs: Sequence[tuple[int, int, int]], batch: int
) -> Iterator[Iterator[list[str]]]:
    """For each run ``(level, start, end)``, in order, the stored nodes of that level with
    indexes ``start .. end-1`` as hex, in batches of up to ``batch``, on one connection; a run
    must be read to its end before the next is given. A gap is a ``LedgerCorrupt``."""
    with reading(ledger) as conn:
        for level, start, end in runs:
            yield _level_hashes(ledger, conn, level, start, end, batch)


def events_by_action_rows(
    ledger: Ledger, actions: Sequence[str], before: int, batch: int = 10000
) -> Iterator[tuple[int, str, str, str | None, str]]:
    """(seq, time, action, incident, details as stored JSON text) of the events below
    ``before`` with one of ``actions``: every event of the first action, then of the second,
    and so on, each in ledger order (one indexed scan each)."""
    with reading(ledger) as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        mark = _mark(conn)
        query = f"SELECT seq, time, subject_incident, details FROM {events.name} WHERE action = {mark} AND seq < {mark} ORDER BY seq"
        for action in actions:
            cursor.execute(query, (action, before))
            while rows := cursor.fetchmany(batch):
                for seq, time, incident, details in rows:
                    yield seq, time, action, incident, details
        cursor.close()
