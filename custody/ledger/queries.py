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
from custody.ledger.tables import events


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
