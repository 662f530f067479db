"""Custody events: their form, their hash, and how they are stored in and read from ``events``.

Each event's canonical bytes (``custody.ledger.canonical``) include the previous event's hash; the
event's hash is SHA-256(0x00 || canonical bytes), which is also its Merkle leaf hash (RFC 6962).
The functions here work on a connection that the caller holds (``custody.ledger.database.Ledger``
opens it through ``custody.ledger.transaction``, which turns database errors into the project's).

A stored text that is not UTF-8 (only an edit outside custody puts it there) is read with its bad
bytes as lone surrogates (``custody.ledger.engine``); ``row_event`` refuses such a row with
``LedgerCorrupt`` naming the event, and ``verify_chain`` finds its hash wrong.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from custody.errors import Finding, FindingKind, LedgerCorrupt
from custody.ledger.canonical import canonical_bytes
from custody.ledger.tables import events

GENESIS = "0" * 64


@dataclass(frozen=True)
class CustodyEvent:
    seq: int
    time: str
    actor: str
    role: str
    action: str
    subject: dict[str, str]
    details: dict[str, Any]
    tool: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The fields that the canonical bytes commit to (everything but ``hash``)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "subject": self.subject,
            "details": self.details,
            "tool": self.tool,
            "prev_hash": self.prev_hash,
        }

    def canonical(self) -> bytes:
        return canonical_bytes(self.body())

    def as_dict(self) -> dict[str, Any]:
        record = self.body()
        record["hash"] = self.hash
        record["leaf"] = self.canonical().decode("utf-8")
        return record


def event_hash(canonical: bytes) -> str:
    """SHA-256(0x00 || canonical bytes): the event's chain hash and its Merkle leaf hash."""
    return hashlib.sha256(b"\x00" + canonical).hexdigest()


_EVENT_ROWS = (
    select(
        events.c.seq,
        events.c.time,
        events.c.actor,
        events.c.role,
        events.c.action,
        events.c.subject_evidence,
        events.c.subject_incident,
        events.c.details,
        events.c.tool,
        events.c.prev_hash,
        events.c.hash,
    )
    .where(events.c.seq >= bindparam("start"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)

_quote: Callable[[str], str] = json.encoder.encode_basestring
"""JSON string encoding exactly as ``json.dumps(..., ensure_ascii=False)`` does it (C speed)."""


def stored_leaf(row: Sequence[Any]) -> str:
    """The canonical text of an event as stored: the columns of ``_EVENT_ROWS`` assembled in
    the canonical key order, with the stored (canonical) details text taken verbatim. For an
    intact event this equals ``CustodyEvent.canonical()``."""
    seq, time, actor, role, action, evidence_, incident, details, tool, prev_hash = row[:10]
    q = _quote
    if incident is None:
        subject = "" if evidence_ is None else f'"evidence":{q(evidence_)}'
    elif evidence_ is None:
        subject = f'"incident":{q(incident)}'
    else:
        subject = f'"evidence":{q(evidence_)},"incident":{q(incident)}'
    return (
        f'{{"action":{q(action)},"actor":{q(actor)},"details":{details},"prev_hash":{q(prev_hash)},'
        f'"role":{q(role)},"seq":{int(seq)},"subject":{{{subject}}},"time":{q(time)},"tool":{q(tool)}}}'
    )


def not_utf8(seq: int) -> LedgerCorrupt:
    return LedgerCorrupt([Finding(
        FindingKind.LEDGER_CORRUPT, f"event {seq}",
        "its stored text is not valid UTF-8: the event was altered outside custody; "
        "run 'custody ledger verify' for every finding",
    )])


def append_conflict(seq: int) -> LedgerCorrupt:
    """An append that collides with stored rows: appends are serialized, so rows already there
    for the next event mean events were removed or the ledger was otherwise altered."""
    return LedgerCorrupt([Finding(
        FindingKind.LEDGER_CORRUPT, f"event {seq}",
        f"cannot append event {seq}: the ledger already holds tree data for it, so events were removed "
        "or the ledger was altered after they were sealed; nothing was appended. Run 'custody ledger "
        "verify' for every finding",
    )])


def _has_surrogates(text: str | None) -> bool:
    return text is not None and any("\udc80" <= char <= "\udcff" for char in text)


def _details(stored: str) -> dict[str, Any]:
    """Stored details; text that is no longer JSON is kept as-is so that verification reports
    the event instead of failing."""
    try:
        value = json.loads(stored)
    except ValueError:
        return {"unparseable": stored}
    return value if isinstance(value, dict) else {"unparseable": stored}


def row_event(row: Row[Any]) -> CustodyEvent:
    """The event of a stored row; ``LedgerCorrupt`` naming it when its text is not UTF-8."""
    if any(_has_surrogates(value) for value in (row.time, row.actor, row.role, row.action, row.subject_evidence,
                                                row.subject_incident, row.details, row.tool, row.prev_hash, row.hash)):
        raise not_utf8(row.seq)
    subject: dict[str, str] = {}
    if row.subject_evidence is not None:
        subject["evidence"] = row.subject_evidence
    if row.subject_incident is not None:
        subject["incident"] = row.subject_incident
    return CustodyEvent(
        seq=row.seq,
        time=row.time,
        actor=row.actor,
        role=row.role,
        action=row.action,
        subject=subject,
        details=_details(row.details),
        tool=row.tool,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def head(conn: Connection) -> tuple[int, str]:
    """(number of events, hash of the last event or the genesis hash)."""
    row = conn.execute(select(events.c.seq, events.c.hash).order_by(events.c.seq.desc()).limit(1)).first()
    return (0, GENESIS) if row is None else (row.seq + 1, row.hash)


def insert_event(conn: Connection, event: CustodyEvent) -> None:
    """Store ``event`` (its hash already computed), with its details in canonical form."""
    conn.execute(
        events.insert(),
        {
            "seq": event.seq,
            "time": event.time,
            "actor": event.actor,
            "role": event.role,
            "action": event.action,
            "subject_evidence": event.subject.get("evidence"),
            "subject_incident": event.subject.get("incident"),
            "details": canonical_bytes(event.details).decode("utf-8"),
            "tool": event.tool,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        },
    )


def read_events(
    conn: Connection,
    *,
    evidence: str | None = None,
    incident: str | None = None,
    actions: Sequence[str] | None = None,
    start: int = 0,
    batch: int = 5000,
) -> Iterator[CustodyEvent]:
    """Events in sequence order, optionally only those about one evidence object, one
    incident, and/or with one of ``actions``."""
    position = start
    while True:
        query = select(events).where(events.c.seq >= position).order_by(events.c.seq).limit(batch)
        if evidence is not None:
            query = query.where(events.c.subject_evidence == evidence)
        if incident is not None:
            query = query.where(events.c.subject_incident == incident)
        if actions is not None:
            query = query.where(events.c.action.in_(list(actions)))
        rows = conn.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield row_event(row)
        position = rows[-1].seq + 1


def leaf_hashes(conn: Connection, start: int = 0, batch: int = 20000) -> Iterator[tuple[int, str, str]]:
    """(seq, prev_hash, hash) of every event from ``start``, in order, without decoding details."""
    position = start
    while True:
        rows = conn.execute(
            select(events.c.seq, events.c.prev_hash, events.c.hash)
            .where(events.c.seq >= position)
            .order_by(events.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from ((r.seq, r.prev_hash, r.hash) for r in rows)
        position = rows[-1].seq + 1


def verify_chain(
    conn: Connection, on_leaf: Callable[[bytes], None] | None = None, batch: int = 20000
) -> tuple[int, list[Finding]]:
    """Recompute every event's hash and the links between them (``Ledger.verify_chain``)."""
    findings: list[Finding] = []
    expected_prev = GENESIS
    expected_seq = 0
    count = 0
    position = 0
    sha256 = hashlib.sha256
    while True:
        rows = conn.execute(_EVENT_ROWS, {"start": position, "limit": batch}).all()
        if not rows:
            break
        for row in rows:
            seq, prev_hash, stored_hash = row[0], row[9], row[10]
            count += 1
            if seq != expected_seq:
                findings.append(Finding(FindingKind.LEDGER_CORRUPT, f"event {seq}", f"sequence gap: expected event {expected_seq}"))
            if prev_hash != expected_prev:
                findings.append(
                    Finding(
                        FindingKind.LEDGER_CORRUPT,
                        f"event {seq}",
                        "previous-hash link broken (an event before it was changed, removed or inserted)",
                        "sha256",
                        expected_prev,
                        prev_hash,
                    )
                )
            leaf = sha256(b"\x00" + stored_leaf(row).encode("utf-8", "surrogatepass")).digest()
            if leaf.hex() != stored_hash:
                findings.append(
                    Finding(
                        FindingKind.LEDGER_CORRUPT,
                        f"event {seq}",
                        "content does not match its hash (the event was altered)",
                        "sha256",
                        stored_hash,
                        leaf.hex(),
                    )
                )
            if on_leaf is not None:
                on_leaf(leaf)
            expected_prev = stored_hash
            expected_seq = seq + 1
        position = rows[-1][0] + 1
    return count, findings

