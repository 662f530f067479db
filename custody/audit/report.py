"""What an audit is asked to do (``AuditRequest``), what it found about each object
(``ObjectResult``) and as a whole (``AuditReport``: its ledger event, its JSON), and the progress
callback it reports to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from custody import times
from custody.audit.shards import Shard, slot_of
from custody.errors import BadInput, Finding, FindingKind
from storage.base import LockProbe

if TYPE_CHECKING:
    from custody.ledger.seal import LedgerReport

Level = Literal["quick", "full"]
LEVELS: tuple[Level, ...] = ("quick", "full")
FINDING_KINDS: tuple[FindingKind, ...] = (
    FindingKind.MISSING,
    FindingKind.UNREADABLE,
    FindingKind.MISMATCH,
    FindingKind.WEAK_RETENTION,
    FindingKind.HOLD_MISMATCH,
    FindingKind.UNRECORDED,
    FindingKind.LEDGER_CORRUPT,
    FindingKind.STORE_NOT_ENFORCING,
    FindingKind.STAGING_LEFTOVER,
)
"""The kinds an audit reports; each has a count (0 included) in the report and the metrics."""
DEFAULT_WORKERS = 8
DEFAULT_IN_FLIGHT_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class AuditRequest:
    level: Level = "quick"
    shard: Shard = Shard()
    rotation: int | None = None
    workers: int = DEFAULT_WORKERS
    in_flight_grace: timedelta = DEFAULT_IN_FLIGHT_GRACE
    """Unrecorded objects stored more recently than this are in flight, not findings
    (``custody.audit.unrecorded``)."""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise BadInput(f"audit level {self.level!r}: use quick or full")
        if self.rotation is not None and self.rotation < 1:
            raise BadInput("--rotation N needs N >= 1")
        if self.rotation is not None and self.level == "full":
            raise BadInput("--rotation re-hashes a part of the objects in each run, --level full all of them: choose one")
        if self.workers < 1:
            raise BadInput("--workers needs at least 1")
        if self.in_flight_grace < timedelta(0):
            raise BadInput("--in-flight-grace cannot be negative")


class ProgressSink(Protocol):
    """What an audit reports progress to, from its worker threads."""

    def start(self, objects: int, bytes_to_hash: int) -> None: ...

    def hashed(self, nbytes: int) -> None: ...

    def checked(self, blake3: str) -> None: ...


class AuditProgress:
    """A ``ProgressSink`` that does nothing (the default)."""

    def start(self, objects: int, bytes_to_hash: int) -> None:
        pass

    def hashed(self, nbytes: int) -> None:
        pass

    def checked(self, blake3: str) -> None:
        pass


@dataclass
class ObjectResult:
    """What the audit found about one object of its shard."""

    blake3: str
    key: str
    version: str
    size: int
    hashed: bool = False
    disposed: bool = False
    findings: list[Finding] = field(default_factory=list)
    bytes_hashed: int = 0
    last_full_check: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "blake3": self.blake3,
            "key": self.key,
            "version": self.version,
            "size": self.size,
            "hashed": self.hashed,
            "disposed": self.disposed,
            "findings": sorted({f.kind for f in self.findings}),
            "last_full_check": self.last_full_check,
        }


@dataclass(frozen=True)
class InFlight:
    """An unrecorded object too recent to judge (see the module docstring)."""

    key: str
    version: str | None
    size: int
    stored_at: datetime | None
    recorded_during_audit: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "version": self.version,
            "size": self.size,
            "stored_at": times.format_utc(self.stored_at) if self.stored_at else None,
            "recorded_during_audit": self.recorded_during_audit,
        }


@dataclass
class AuditReport:
    """The whole result of one audit; ``event_details()`` is what the ledger records."""

    level: Level
    shard: Shard
    rotation: int | None
    slot: int | None
    through_seq: int
    store: str
    worm: str
    started: str
    duration: float = 0.0
    ledger: LedgerReport | None = None
    probes: list[LockProbe] = field(default_factory=list)
    objects: list[ObjectResult] = field(default_factory=list)
    attachments_checked: int = 0
    listed: int = 0
    findings: list[Finding] = field(default_factory=list)
    in_flight: list[InFlight] = field(default_factory=list)
    """Unrecorded objects too recent to judge, or recorded while the audit ran: no findings."""
    in_flight_grace: timedelta = DEFAULT_IN_FLIGHT_GRACE
    seq: int | None = None
    finished: str | None = None
    checkpoint: int | None = None
    seal_error: str | None = None
    last_success: str | None = None
    """The time of the latest audit of this shard and level without findings (this one if ok)."""

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def canary_enforced(self) -> bool:
        return bool(self.probes) and all(p.refused for p in self.probes)

    @property
    def checked(self) -> list[ObjectResult]:
        return [o for o in self.objects if not o.disposed]

    @property
    def rehashed(self) -> list[str]:
        return sorted(o.blake3 for o in self.objects if o.hashed)

    @property
    def not_rehashed(self) -> list[str]:
        """Objects this run was to re-hash whose bytes could not be read completely."""
        return sorted(o.blake3 for o in self.objects if not o.disposed and self.due(o.blake3) and not o.hashed)

    def due(self, blake3: str) -> bool:
        """Whether this run re-hashes the object's bytes (every one at ``full``, its slot's
        with a rotation, none otherwise)."""
        if self.level == "full":
            return True
        return self.rotation is not None and slot_of(blake3, self.rotation) == self.slot

    @property
    def bytes_hashed(self) -> int:
        return sum(o.bytes_hashed for o in self.objects)

    def by_kind(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in FINDING_KINDS}
        for finding in self.findings:
            counts[finding.kind.value] = counts.get(finding.kind.value, 0) + 1
        return counts

    def counts(self) -> dict[str, int]:
        return {
            "objects": len(self.checked),
            "attachments": self.attachments_checked,
            "rehashed": len(self.rehashed),
            "bytes_hashed": self.bytes_hashed,
            "disposed": sum(1 for o in self.objects if o.disposed),
            "listed": self.listed,
            "unrecorded": sum(1 for f in self.findings if f.kind == FindingKind.UNRECORDED),
            "in_flight": len(self.in_flight),
            "findings": len(self.findings),
        }

    def rotation_dict(self) -> dict[str, int] | None:
        if self.rotation is None or self.slot is None:
            return None
        return {"n": self.rotation, "slot": self.slot}

    def in_flight_dict(self) -> dict[str, Any]:
        return {
            "grace_seconds": int(self.in_flight_grace.total_seconds()),
            "objects": [o.as_dict() for o in sorted(self.in_flight, key=lambda o: o.key)],
        }

    def event_details(self) -> dict[str, Any]:
        """The ``audited`` event's details (integers only: canonical JSON)."""
        rehashed = self.rehashed
        ledger = self.ledger
        return {
            "level": self.level,
            "shard": {"index": self.shard.index, "count": self.shard.count},
            "rotation": self.rotation_dict(),
            "through_seq": self.through_seq,
            "store": self.store,
            "worm": self.worm,
            "started": self.started,
            "duration_ms": int(self.duration * 1000),
            "ledger": {
                "events": ledger.events if ledger else 0,
                "root": ledger.root if ledger else None,
                "checkpoints_in_store": ledger.checkpoints_in_store if ledger else 0,
            },
            "canary": {
                "enforced": self.canary_enforced,
                "probes": [{"action": p.action, "refused": p.refused, "detail": p.detail} for p in self.probes],
            },
            "counts": self.counts(),
            "findings_by_kind": self.by_kind(),
            "rehashed": {
                "count": len(rehashed),
                "sha256": hashlib.sha256("".join(d + "\n" for d in rehashed).encode()).hexdigest(),
            },
            "not_rehashed": self.not_rehashed,
            "findings": [f.as_dict() for f in self.findings],
            "in_flight": self.in_flight_dict(),
        }

    def as_dict(self) -> dict[str, Any]:
        checked = self.checked
        never = [o.blake3 for o in checked if o.last_full_check is None]
        oldest = min((o.last_full_check["time"] for o in checked if o.last_full_check), default=None)
        return {
            "ok": self.ok,
            "level": self.level,
            "shard": self.shard.label,
            "rotation": self.rotation_dict(),
            "through_seq": self.through_seq,
            "store": self.store,
            "worm": self.worm,
            "started": self.started,
            "finished": self.finished,
            "duration_seconds": round(self.duration, 3),
            "ledger": self.ledger.as_dict() if self.ledger else None,
            "canary": {
                "enforced": self.canary_enforced,
                "probes": [{"action": p.action, "refused": p.refused, "detail": p.detail} for p in self.probes],
            },
            "counts": self.counts(),
            "findings_by_kind": self.by_kind(),
            "findings": [f.as_dict() for f in self.findings],
            "in_flight": self.in_flight_dict(),
            "full_checks": {"never": len(never), "oldest": oldest},
            "objects": [o.as_dict() for o in self.objects],
            "seq": self.seq,
            "checkpoint": self.checkpoint,
            "seal_error": self.seal_error,
            "last_success": self.last_success,
        }
