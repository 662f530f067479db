"""What the ledger records of every preserved object before an audit began: size, digests,
key and version, the retention it must have, its hold state, its attachments, its disposal,
and every earlier audit, gathered in one pass over the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from custody import times
from custody.actors.verify import counted
from custody.audit.schedule import AuditRecord
from custody.cases.holds import HOLD_ACTIONS, active_hold_names
from custody.errors import Finding, FindingKind
from custody.ledger.queries import LedgerEventSummary, events_with_actions

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

_SCANNED = ("ingested", "retention-extended", *HOLD_ACTIONS, "disposed", "audited")


def ledger_hold_state(hold_events: Iterable[tuple[str, Mapping[str, Any]]]) -> bool:
    """Whether the ledger says an object is under legal hold, from its ``hold-placed``,
    ``hold-inherited`` and ``hold-released`` events (action, details) in sequence order
    (``custody.cases.holds``' rule)."""
    return bool(active_hold_names(hold_events))


def recorded_retention(ingest_details: Mapping[str, Any], extensions: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The latest retain-until date the ledger records for an object: its ingest event's
    ``details.retention.until`` and every later ``retention-extended`` event's ``details.until``
    (None when none is readable). The same dates ``custody.cases.retention.object_retention`` folds,
    taken from events the audit has already gathered in one pass over the ledger."""
    dates = []
    retention = ingest_details.get("retention")
    if isinstance(retention, Mapping):
        dates.append(retention.get("until"))
    dates.extend(extension.get("until") for extension in extensions)
    parsed = [parse_time(value) for value in dates if isinstance(value, str)]
    found = [moment for moment in parsed if moment is not None]
    return max(found) if found else None


@dataclass(frozen=True)
class RecordedAttachment:
    kind: str
    key: str
    sha256: str
    size: int


@dataclass
class RecordedObject:
    """One preserved object as the ledger records it."""

    blake3: str
    sha256: str
    size: int
    key: str
    version: str
    first_seq: int
    retained_until: datetime | None = None
    attachment_until: datetime | None = None
    held: bool = False
    disposed: bool = False
    attachments: list[RecordedAttachment] = field(default_factory=list)


@dataclass
class LedgerState:
    """What the ledger recorded before the audit began (events ``0 .. through_seq - 1``)."""

    through_seq: int
    objects: dict[str, RecordedObject]
    audits: list[AuditRecord]
    findings: list[Finding]

    @property
    def recorded_keys(self) -> dict[str, str]:
        """Every recorded key (evidence and attachments) -> its object's BLAKE3."""
        keys: dict[str, str] = {}
        for obj in self.objects.values():
            keys[obj.key] = obj.blake3
            for attachment in obj.attachments:
                keys[attachment.key] = obj.blake3
        return keys


@dataclass(frozen=True)
class _Event:
    seq: int
    time: str
    action: str
    evidence: str | None
    details: dict[str, Any]


def parse_time(text: str) -> datetime | None:
    try:
        return times.parse_utc(text)
    except ValueError:
        return None


def _corrupt(subject: str, message: str, **extra: Any) -> Finding:
    return Finding(FindingKind.LEDGER_CORRUPT, subject, message, extra=extra)


def load_ledger_state(ledger: Ledger, through_seq: int, config: Mapping[str, Any]) -> LedgerState:
    """Every object ingested before ``through_seq`` with its recorded retention, hold state,
    attachments and disposal, every earlier audit that counts (once anyone is enrolled, only
    those signed by a person whose role may audit: ``custody.actors.verify.counted``), and a
    ``ledger-corrupt`` finding wherever the derived evidence table disagrees with the ingest
    events."""
    rows = [row for row in ledger.all_evidence() if int(row["first_seq"]) < through_seq]
    ingests: dict[int, LedgerEventSummary] = {}
    extensions: dict[str, list[dict[str, Any]]] = {}
    holds: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    disposed: set[str] = set()
    audits: list[AuditRecord] = []
    for event in events_with_actions(ledger, _SCANNED, through_seq):
        if event.action == "ingested":
            ingests[event.seq] = event
        elif event.action == "audited":
            record = AuditRecord.from_details(event.seq, event.time, event.details)
            if record is not None:
                audits.append(record)
        elif event.evidence is None:
            continue
        elif event.action == "retention-extended":
            extensions.setdefault(event.evidence, []).append(event.details)
        elif event.action == "disposed":
            disposed.add(event.evidence)
        else:
            holds.setdefault(event.evidence, []).append((event.action, event.details))
    if audits:
        counting = counted(ledger, "audited", through_seq, config)
        audits = [record for record in audits if record.seq in counting]
    findings: list[Finding] = []
    objects: dict[str, RecordedObject] = {}
    for row in rows:
        blake3 = str(row["blake3"])
        obj = RecordedObject(
            blake3, str(row["sha256"]), int(row["size"]), str(row["store_key"]), str(row["version"]), int(row["first_seq"])
        )
        objects[blake3] = obj
        ingest = ingests.pop(obj.first_seq, None)
        if ingest is None or ingest.evidence != blake3:
            findings.append(
                _corrupt(blake3, f"the evidence table names event {obj.first_seq} as this object's ingest, "
                         "but that event is not its ingest event")
            )
            continue
        details = ingest.details
        store = details.get("store") if isinstance(details.get("store"), dict) else {}
        assert isinstance(store, dict)
        recorded = {"blake3": details.get("blake3"), "sha256": details.get("sha256"), "size": details.get("size"),
                    "key": store.get("key"), "version": store.get("version")}
        derived = {"blake3": obj.blake3, "sha256": obj.sha256, "size": obj.size, "key": obj.key, "version": obj.version}
        for name in derived:
            if recorded[name] != derived[name]:
                findings.append(
                    _corrupt(blake3, f"the evidence table's {name} differs from ingest event {ingest.seq}",
                             expected=str(recorded[name]), found=str(derived[name]))
                )
        obj.retained_until = recorded_retention(details, extensions.get(blake3, []))
        obj.attachment_until = recorded_retention(details, [])
        obj.held = ledger_hold_state(holds.get(blake3, []))
        obj.disposed = blake3 in disposed
        attachments = details.get("attachments")
        if isinstance(attachments, dict):
            for kind, spec in sorted(attachments.items()):
                if isinstance(spec, dict) and "key" in spec:
                    obj.attachments.append(
                        RecordedAttachment(str(kind), str(spec["key"]), str(spec.get("sha256")), int(spec.get("size", -1)))
                    )
    for event in ingests.values():
        findings.append(
            _corrupt(event.evidence or f"event {event.seq}",
                     f"ingest event {event.seq} has no row in the evidence table (the derived state lost it)")
        )
    return LedgerState(through_seq, objects, audits, findings)
