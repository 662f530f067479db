"""Read-only queries over the ledger's tables for the wings above it (audit), so that no SQL
runs outside the ledger wing. Database errors become ``LedgerUnavailable`` as in ``Ledger``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from custody.ledger.database import Ledger
from custody.ledger.signatures import StoredSignature
from custody.ledger.tables import event_signatures, events


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
    try:
        with ledger.engine.connect() as conn:
            while position < before:
                rows = conn.execute(query.where(t.c.seq >= position, t.c.seq < before)).all()
                if not rows:
                    return
                for row in rows:
                    yield LedgerEventSummary(row.seq, row.time, row.action, row.subject_evidence, _details(row.details))
                position = rows[-1].seq + 1
    except SQLAlchemyError as exc:
        raise ledger._unavailable(exc) from exc


def signatures_for(ledger: Ledger, seqs: Sequence[int], batch: int = 500) -> dict[int, StoredSignature]:
    """The stored SSH signatures of the events ``seqs`` (those that have one), by event."""
    found: dict[int, StoredSignature] = {}
    wanted = sorted(set(seqs))
    t = event_signatures
    try:
        with ledger.engine.connect() as conn:
            for at in range(0, len(wanted), batch):
                rows = conn.execute(select(t).where(t.c.seq.in_(wanted[at:at + batch]))).all()
                for row in rows:
                    found[row.seq] = StoredSignature(row.seq, row.signer, row.key_fingerprint, row.signature)
    except SQLAlchemyError as exc:
        raise ledger._unavailable(exc) from exc
    return found
