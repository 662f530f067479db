"""Integrity audits: every preserved object still there, unaltered, locked and accounted for,
and the ledger itself intact. An audit states exactly what it checked and records itself in the
ledger as an ``audited`` event.

Levels
    ``quick``: the ledger verifies (hash chain, Merkle tree, checkpoint signatures, every WORM
    checkpoint; ``custody.ledger.seal.verify_ledger``) and its derived evidence table agrees with the
    ingest events; every recorded object (and every retained attachment recorded with it) exists
    at its recorded version, with its recorded size and, in the store's metadata, its recorded
    SHA-256 (and BLAKE3); its retention is COMPLIANCE and lasts at least until the latest date
    the ledger records for it; its legal hold is on exactly when the ledger says it is held;
    no object in the store is unrecorded; the canary lock self-test passes. Quick never reads
    an object's bytes, so a changed byte that kept the size and the metadata is invisible to it.

    ``full``: quick, plus every object's bytes re-read and hashed, ``workers`` objects at a time:
    BLAKE3 for evidence, SHA-256 for attachments (their recorded digest).

Shards (``--shard K/N``)
    An evidence object belongs to shard ``int(blake3[:16], 16) % N + 1``; its attachments go
    with it. An unrecorded key belongs to the shard of its name when the name after the prefix
    is a 64-hex digest, else of SHA-256(key). So shards 1..N together check every object
    exactly once. The ledger verification and the canary are store-wide and run in every shard.

Rotation (``--rotation N``)
    Each run re-hashes the objects of one slot: an object's slot is ``int(blake3[16:32], 16) % N``
    (other digest bits than the shard's, so slots stay even within a shard, and an object keeps
    its slot as objects are added). The slot of a run is one after the slot of the latest
    ``audited`` event with the same shard and the same N (slot 0 when there is none), so every
    N consecutive runs of a shard cover all N slots and every object is re-hashed at least once
    in them. A run that ends without recording its event (store or database unreachable) is
    not a run: the next one repeats its slot.

How the schedule is persisted (no table of its own)
    The ledger is the schedule. Each ``audited`` event records ``level``, ``shard``
    (``index``/``count``), ``rotation`` (``n``/``slot``, or null), ``through_seq`` (the ledger's
    size when the audit began: the objects in scope are those whose ingest event comes before it)
    and ``not_rehashed`` (objects in scope whose bytes could not be read). The objects an event
    fully re-hashed are therefore exactly those ingested before ``through_seq``, in its shard, in
    its slot (every one at level ``full``), minus ``not_rehashed``; ``rehashed`` records their
    count and the SHA-256 of their sorted digests (one per line) so that the derivation can be
    checked. The next slot and each object's last full check are recomputed from these events
    on every run.

Errors
    A store or database that cannot be reached (``StorageUnavailable``, ``LedgerUnavailable``)
    ends the audit without recording it (exit 5). Everything about one object is a finding,
    and every finding is collected. Local objects are hashed memory-mapped (as ``custody
    verify`` does): a disk error inside a mapped read stops the process (SIGBUS) instead of
    becoming a finding.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import blake3 as blake3_mod

from custody.cases.holds import active_hold_names
from custody.errors import BadInput, ConfigError, Finding, LedgerUnavailable
from custody.evidence.hashing import sha256_file
from storage.base import LockProbe, ObjectInfo, ObjectStore
from storage.errors import ObjectNotFound, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from custody.ledger.database import Ledger
    from custody.ledger.seal import LedgerReport

Level = Literal["quick", "full"]
LEVELS: tuple[Level, ...] = ("quick", "full")
FINDING_KINDS = (
    "missing",
    "unreadable",
    "mismatch",
    "weak-retention",
    "hold-mismatch",
    "unrecorded",
    "ledger-corrupt",
    "store-not-enforcing",
)
CANARY_PREFIX = "canary/"
"""The canaries of the lock self-test; with ``custody.ledger.seal.CHECKPOINT_PREFIX``, the tool's own
objects, which are not evidence (checkpoints are checked by the ledger verification)."""
DEFAULT_WORKERS = 8
READ_CHUNK = 8 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LOCAL_HASHING = threading.Lock()
"""Local objects are hashed on all cores each, so one at a time: concurrent memory-mapped
hashes only compete for the same cores and page-fault paths."""
_SCANNED = ("ingested", "retention-extended", "hold-placed", "hold-released", "disposed", "audited")


# ---- shards and slots -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based); ``Shard(1, 1)`` is everything."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise BadInput(f"shard {self.index}/{self.count}: K must be between 1 and N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 1 <= K <= N; ``BadInput`` otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise BadInput(f"shard {text!r}: write it as K/N, e.g. 2/8")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def contains(self, digest: str) -> bool:
        """Whether the object with this hex digest (BLAKE3, or a key's SHA-256) is in this shard."""
        return shard_of(digest, self.count) == self.index


def shard_of(digest: str, count: int) -> int:
    """The shard (1..count) of an object: ``int(digest[:16], 16) % count + 1``."""
    return int(digest[:16], 16) % count + 1


def slot_of(digest: str, rotation: int) -> int:
    """The rotation slot (0..rotation-1) of an object: ``int(digest[16:32], 16) % rotation``."""
    return int(digest[16:32], 16) % rotation


def key_digest(key: str) -> str:
    """The digest that places a stored key in a shard: its name when that is a 64-hex digest
    (``evidence/<blake3>``, ``packets/<blake3>``), else SHA-256 of the key."""
    name = key.rsplit("/", 1)[-1]
    return name if _HEX64.match(name) else hashlib.sha256(key.encode("utf-8")).hexdigest()


# ---- what the ledger records ----------------------------------------------------------------


def ledger_hold_state(hold_events: Iterable[tuple[str, Mapping[str, Any]]]) -> bool:
    """Whether the ledger says an object is under legal hold, from its ``hold-placed`` and
    ``hold-released`` events (action, details) in sequence order (``custody.cases.holds``' rule)."""
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
    parsed = [_parse_time(value) for value in dates if isinstance(value, str)]
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


@dataclass(frozen=True)
class AuditRecord:
    """What an earlier ``audited`` event says it covered."""

    seq: int
    time: str
    level: str
    shard: Shard
    rotation: int | None
    slot: int | None
    through_seq: int
    not_rehashed: frozenset[str]
    findings: int

    def rehashed(self, blake3: str, first_seq: int) -> bool:
        """Whether this audit fully re-hashed that object (see the module docstring)."""
        if first_seq >= self.through_seq or blake3 in self.not_rehashed:
            return False
        if not self.shard.contains(blake3):
            return False
        if self.level == "full":
            return True
        return self.rotation is not None and self.slot is not None and slot_of(blake3, self.rotation) == self.slot

    @classmethod
    def from_details(cls, seq: int, time_: str, details: Mapping[str, Any]) -> AuditRecord | None:
        """None for an event whose details do not have this module's shape."""
        try:
            shard = details["shard"]
            rotation = details.get("rotation")
            counts = details.get("counts", {})
            return cls(
                seq,
                time_,
                str(details["level"]),
                Shard(int(shard["index"]), int(shard["count"])),
                int(rotation["n"]) if rotation else None,
                int(rotation["slot"]) if rotation else None,
                int(details["through_seq"]),
                frozenset(str(d) for d in details.get("not_rehashed", [])),
                int(counts.get("findings", 0)),
            )
        except (KeyError, TypeError, ValueError, BadInput):
            return None


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


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _details(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _events(ledger: Ledger, actions: Sequence[str], before: int, batch: int = 5000) -> Iterator[_Event]:
    """Events with one of ``actions`` and a sequence number below ``before``, in order (one
    indexed query per batch; the details of other events are never decoded)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from custody.ledger.database import events as t

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
                    yield _Event(row.seq, row.time, row.action, row.subject_evidence, _details(row.details))
                position = rows[-1].seq + 1
    except SQLAlchemyError as exc:
        raise LedgerUnavailable(f"cannot read the ledger database {ledger.where}: {exc}") from exc


def _corrupt(subject: str, message: str, **extra: Any) -> Finding:
    return Finding("ledger-corrupt", subject, message, extra=extra)


def load_ledger_state(ledger: Ledger, through_seq: int) -> LedgerState:
    """Every object ingested before ``through_seq`` with its recorded retention, hold state,
    attachments and disposal, every earlier audit, and a ``ledger-corrupt`` finding wherever the
    derived evidence table disagrees with the ingest events."""
    rows = [row for row in ledger.all_evidence() if int(row["first_seq"]) < through_seq]
    ingests: dict[int, _Event] = {}
    extensions: dict[str, list[dict[str, Any]]] = {}
    holds: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    disposed: set[str] = set()
    audits: list[AuditRecord] = []
    for event in _events(ledger, _SCANNED, through_seq):
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


def next_slot(audits: Sequence[AuditRecord], shard: Shard, rotation: int) -> int:
    """The slot the next rotation run of ``shard`` covers: one after the latest recorded run
    with the same shard and the same N, else 0."""
    for record in reversed(audits):
        if record.shard == shard and record.rotation == rotation and record.slot is not None:
            return (record.slot + 1) % rotation
    return 0


def last_full_checks(audits: Sequence[AuditRecord], objects: Iterable[RecordedObject]) -> dict[str, AuditRecord]:
    """For each object, the latest recorded audit that fully re-hashed it (absent: never)."""
    classes: dict[tuple[int, int, int, int], list[AuditRecord]] = {}
    for record in audits:
        if record.level == "full":
            key = (record.shard.index, record.shard.count, 0, -1)
        elif record.rotation is not None and record.slot is not None:
            key = (record.shard.index, record.shard.count, record.rotation, record.slot)
        else:
            continue
        classes.setdefault(key, []).append(record)
    for records in classes.values():
        records.sort(key=lambda r: r.seq, reverse=True)
    latest: dict[str, AuditRecord] = {}
    for obj in objects:
        best: AuditRecord | None = None
        for records in classes.values():
            for record in records:
                if best is not None and record.seq <= best.seq:
                    break
                if record.rehashed(obj.blake3, obj.first_seq):
                    best = record
                    break
        if best is not None:
            latest[obj.blake3] = best
    return latest


# ---- the audit -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRequest:
    level: Level = "quick"
    shard: Shard = Shard()
    rotation: int | None = None
    workers: int = DEFAULT_WORKERS

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise BadInput(f"audit level {self.level!r}: use quick or full")
        if self.rotation is not None and self.rotation < 1:
            raise BadInput("--rotation N needs N >= 1")
        if self.rotation is not None and self.level == "full":
            raise BadInput("--rotation re-hashes a part of the objects in each run, --level full all of them: choose one")
        if self.workers < 1:
            raise BadInput("--workers needs at least 1")


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
        counts = dict.fromkeys(FINDING_KINDS, 0)
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def counts(self) -> dict[str, int]:
        return {
            "objects": len(self.checked),
            "attachments": self.attachments_checked,
            "rehashed": len(self.rehashed),
            "bytes_hashed": self.bytes_hashed,
            "disposed": sum(1 for o in self.objects if o.disposed),
            "listed": self.listed,
            "unrecorded": sum(1 for f in self.findings if f.kind == "unrecorded"),
            "findings": len(self.findings),
        }

    def rotation_dict(self) -> dict[str, int] | None:
        if self.rotation is None or self.slot is None:
            return None
        return {"n": self.rotation, "slot": self.slot}

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
            "full_checks": {"never": len(never), "oldest": oldest},
            "objects": [o.as_dict() for o in self.objects],
            "seq": self.seq,
            "checkpoint": self.checkpoint,
            "seal_error": self.seal_error,
            "last_success": self.last_success,
        }


_Hasher = Any
"""A ``blake3.blake3`` or ``hashlib`` hash object (they share update/hexdigest)."""


def local_blake3(path: str | os.PathLike[str]) -> str:
    """BLAKE3 of a local file, memory-mapped and hashed by the ``blake3`` library itself on all
    cores (``update_mmap``: the way ``b3sum`` reads). Read errors propagate as ``OSError``."""
    hasher = blake3_mod.blake3(max_threads=blake3_mod.blake3.AUTO)
    hasher.update_mmap(path)
    return str(hasher.hexdigest())


class LocalPrehash:
    """BLAKE3 of a local store's evidence objects, computed on a background thread from the
    moment a full audit is asked for, so that reading the bytes overlaps the start-up of the
    ledger (importing the database layer and connecting take a noticeable fraction of a second
    on every run).

    ``take(path)`` gives the result for exactly that file, waiting for it while it is still
    queued, and only if the file is still the one that was read (same device, inode, size and
    modification time); None for any other file, which the caller then reads itself. A read
    error is kept and raised by ``take`` as the caller's own read would have raised it."""

    def __init__(self, files: Sequence[Path]) -> None:
        self._order = list(files)
        self._done = {str(path): threading.Event() for path in self._order}
        self._results: dict[str, tuple[tuple[int, int, int, int], str] | OSError] = {}
        self._thread = threading.Thread(target=self._run, name="audit-prehash", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, store: ObjectStore, request: AuditRequest) -> LocalPrehash | None:
        """Start hashing the evidence objects of ``request``'s shard when ``store`` is local and
        the audit is full; None otherwise. Touches no database."""
        local_path = getattr(store, "local_path", None)
        if local_path is None or request.level != "full":
            return None
        files = []
        for info in store.list("evidence/"):
            name = info.key.rsplit("/", 1)[-1]
            if _HEX64.match(name) and request.shard.contains(name):
                try:
                    files.append(Path(local_path(info.key)))
                except StorageError:
                    continue
        files.sort(key=lambda path: _size(path), reverse=True)
        return cls(files)

    @staticmethod
    def _identity(path: Path) -> tuple[int, int, int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def _run(self) -> None:
        for path in self._order:
            key = str(path)
            try:
                before = self._identity(path)
                with _LOCAL_HASHING:
                    digest = local_blake3(path)
                self._results[key] = (before, digest)
            except OSError as exc:
                self._results[key] = exc
            finally:
                self._done[key].set()

    def take(self, path: Path | str) -> str | None:
        done = self._done.get(str(path))
        if done is None:
            return None
        done.wait()
        result = self._results.pop(str(path), None)
        if isinstance(result, OSError):
            raise result
        if result is None:
            return None
        identity, digest = result
        try:
            return digest if self._identity(Path(path)) == identity else None
        except OSError:
            return None


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def content_digest(
    store: ObjectStore,
    key: str,
    version: str | None,
    algorithm: str,
    progress: Callable[[int], None],
    prehash: LocalPrehash | None = None,
) -> tuple[str, int]:
    """(hex digest, bytes read) of a stored object's bytes, re-read from the store: memory-mapped
    with all cores for the local store (one object at a time, like ``b3sum``), streamed
    otherwise. Read errors propagate; they are never turned into a digest."""
    local_path = getattr(store, "local_path", None)
    if local_path is not None:
        path = local_path(key, version)
        size = os.stat(path).st_size
        early = prehash.take(path) if prehash is not None and algorithm == "blake3" else None
        if early is not None:
            progress(size)
            return early, size
        with _LOCAL_HASHING:
            digest = local_blake3(path) if algorithm == "blake3" else sha256_file(path)
        progress(size)
        return digest, size
    hasher: _Hasher = blake3_mod.blake3() if algorithm == "blake3" else hashlib.sha256()
    total = 0
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    with store.open(key, version) as stream:
        readinto = getattr(stream, "readinto", None)
        while True:
            if readinto is not None:
                count = readinto(view) or 0
                chunk: bytes | memoryview = view[:count]
            else:
                chunk = stream.read(READ_CHUNK)
                count = len(chunk)
            if not count:
                break
            hasher.update(chunk)
            total += count
            progress(count)
    return str(hasher.hexdigest()), total


class _ObjectAuditor:
    """Checks one object at a time (called from worker threads)."""

    def __init__(
        self, store: ObjectStore, report: AuditReport, progress: ProgressSink, prehash: LocalPrehash | None
    ) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.prehash = prehash

    def __call__(self, obj: RecordedObject) -> ObjectResult:
        result = ObjectResult(obj.blake3, obj.key, obj.version, obj.size, disposed=obj.disposed)
        if obj.disposed:
            return result
        info = self._stat(obj, obj.key, obj.version, result)
        if info is not None:
            self._metadata(obj, info, result)
            self._locks(obj, info, result)
        for attachment in obj.attachments:
            self._attachment(obj, attachment, result)
        if info is not None and self.report.due(obj.blake3):
            self._rehash(obj, result)
        self.progress.checked(obj.blake3)
        return result

    def _finding(self, obj: RecordedObject, kind: str, message: str, key: str, version: str | None,
                 algorithm: str | None = None, expected: str | None = None, found: str | None = None,
                 **extra: Any) -> Finding:
        return Finding(kind, obj.blake3, message, algorithm, expected, found,
                       extra={"key": key, "version": version or None, **extra})

    def _stat(self, obj: RecordedObject, key: str, version: str | None, result: ObjectResult) -> ObjectInfo | None:
        try:
            return self.store.stat(key, version or None)
        except ObjectNotFound:
            message = f"{key} (version {version}) is not in the store" if version else f"{key} is not in the store"
            try:
                latest = self.store.stat(key)
            except ObjectNotFound:
                pass
            except StorageUnavailable:
                raise
            except StorageError:
                pass
            else:
                if version and latest.version != version:
                    message += f"; the key now holds another version ({latest.version})"
            result.findings.append(self._finding(obj, "missing", message, key, version))
        except StorageUnavailable:
            raise
        except (StorageError, OSError) as exc:
            result.findings.append(self._finding(obj, "unreadable", f"cannot stat {key}: {exc}", key, version))
        return None

    def _metadata(self, obj: RecordedObject, info: ObjectInfo, result: ObjectResult) -> None:
        where = f"{obj.key} (version {obj.version})"
        if info.size != obj.size:
            result.findings.append(self._finding(
                obj, "mismatch", f"the store reports another size for {where}", obj.key, obj.version,
                "size", str(obj.size), str(info.size), source="store"))
        if info.sha256 != obj.sha256:
            result.findings.append(self._finding(
                obj, "mismatch", f"the SHA-256 in the store's metadata of {where} is not the recorded one",
                obj.key, obj.version, "sha256", obj.sha256, info.sha256 or "none", source="metadata"))
        stored_blake3 = info.metadata.get("blake3")
        if stored_blake3 != obj.blake3:
            result.findings.append(self._finding(
                obj, "mismatch", f"the BLAKE3 in the store's metadata of {where} is not the recorded one",
                obj.key, obj.version, "blake3", obj.blake3, stored_blake3 or "none", source="metadata"))

    def _weak(self, info: ObjectInfo, until: datetime | None) -> tuple[str, str] | None:
        """(expected, found) when the stored lock is weaker than COMPLIANCE until ``until``."""
        wanted = f"COMPLIANCE until {_iso(until)}" if until else "COMPLIANCE"
        if info.retention is None:
            return wanted, "no retention"
        found = f"{info.retention.mode} until {_iso(info.retention.until)}"
        if info.retention.mode != "COMPLIANCE" or (until is not None and info.retention.until < until):
            return wanted, found
        return None

    def _locks(self, obj: RecordedObject, info: ObjectInfo, result: ObjectResult) -> None:
        where = f"{obj.key} (version {obj.version})"
        weak = self._weak(info, obj.retained_until)
        if weak is not None:
            result.findings.append(self._finding(
                obj, "weak-retention", f"the store's retention of {where} is weaker than the ledger records",
                obj.key, obj.version, None, weak[0], weak[1]))
        if info.legal_hold != obj.held:
            state = "records a legal hold on it" if obj.held else "records no legal hold on it"
            result.findings.append(self._finding(
                obj, "hold-mismatch",
                f"the ledger {state}, but the store's legal hold on {where} is {'on' if info.legal_hold else 'off'}",
                obj.key, obj.version, None, "on" if obj.held else "off", "on" if info.legal_hold else "off"))

    def _attachment(self, obj: RecordedObject, attachment: RecordedAttachment, result: ObjectResult) -> None:
        key = attachment.key
        info = self._stat(obj, key, None, result)
        if info is None:
            return
        if info.size != attachment.size:
            result.findings.append(self._finding(
                obj, "mismatch", f"the store reports another size for the {attachment.kind} attachment {key}",
                key, info.version, "size", str(attachment.size), str(info.size), source="store"))
        if info.sha256 != attachment.sha256:
            result.findings.append(self._finding(
                obj, "mismatch", f"the SHA-256 in the store's metadata of the attachment {key} is not the recorded one",
                key, info.version, "sha256", attachment.sha256, info.sha256 or "none", source="metadata"))
        weak = self._weak(info, obj.attachment_until)
        if weak is not None:
            result.findings.append(self._finding(
                obj, "weak-retention", f"the store's retention of the attachment {key} is weaker than the ledger records",
                key, info.version, None, weak[0], weak[1]))
        if self.report.due(obj.blake3):
            digest = self._read(obj, key, info.version, "sha256", result)
            if digest is not None and digest != attachment.sha256:
                result.findings.append(self._finding(
                    obj, "mismatch", f"the bytes of the attachment {key} no longer have the recorded SHA-256",
                    key, info.version, "sha256", attachment.sha256, digest, source="content"))

    def _read(self, obj: RecordedObject, key: str, version: str | None, algorithm: str, result: ObjectResult) -> str | None:
        for attempt in (1, 2):
            try:
                digest, count = content_digest(
                    self.store, key, version or None, algorithm, self.progress.hashed, self.prehash
                )
            except ObjectNotFound:
                result.findings.append(self._finding(obj, "missing", f"{key} vanished while it was read", key, version))
                return None
            except StorageUnavailable:
                if attempt == 2:
                    raise
                continue
            except (StorageError, OSError) as exc:
                result.findings.append(self._finding(obj, "unreadable", f"cannot read {key}: {exc}", key, version))
                return None
            result.bytes_hashed += count
            return digest
        return None

    def _rehash(self, obj: RecordedObject, result: ObjectResult) -> None:
        digest = self._read(obj, obj.key, obj.version, "blake3", result)
        if digest is None:
            return
        result.hashed = True
        if digest != obj.blake3:
            result.findings.append(self._finding(
                obj, "mismatch", f"the bytes of {obj.key} (version {obj.version}) no longer have the recorded BLAKE3",
                obj.key, obj.version, "blake3", obj.blake3, digest, source="content"))


_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel(items: Iterable[_T], work: Callable[[_T], _R], workers: int) -> Iterator[_R]:
    """``work(item)`` for every item on ``workers`` threads, results as they finish; at most
    ``4 * workers`` items are in flight. The first exception cancels what has not started."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audit")
    pending: set[Future[_R]] = set()
    try:
        for item in items:
            pending.add(pool.submit(work, item))
            if len(pending) >= 4 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def unrecorded_findings(store: ObjectStore, state: LedgerState, shard: Shard, ledger: Ledger) -> tuple[list[Finding], int]:
    """List the whole store; a finding for every key of this shard the ledger does not account
    for, and for every recorded evidence key of this shard whose current version is not the
    recorded one. Returns (findings, number of keys listed)."""
    from custody.ledger.seal import CHECKPOINT_PREFIX

    own = (CHECKPOINT_PREFIX, CANARY_PREFIX)
    recorded = state.recorded_keys
    findings: list[Finding] = []
    listed = 0
    for info in store.list(""):
        listed += 1
        if info.key.startswith(own):
            continue
        owner = recorded.get(info.key)
        if owner is not None:
            obj = state.objects[owner]
            if info.key == obj.key and info.version and obj.version and info.version != obj.version \
                    and shard.contains(owner) and not obj.disposed:
                findings.append(Finding(
                    "unrecorded", info.key,
                    f"{info.key} has a newer version {info.version} that the ledger does not know; the recorded "
                    f"version is {obj.version} (a plain read of the key returns the unrecorded bytes)",
                    extra={"key": info.key, "version": info.version, "size": info.size}))
            continue
        digest = key_digest(info.key)
        if not shard.contains(digest):
            continue
        if _HEX64.match(digest):
            row = ledger.evidence_row(digest)
            if row is not None and int(row["first_seq"]) >= state.through_seq:
                continue
        findings.append(Finding(
            "unrecorded", info.key,
            f"{info.key} is in the store but not in the ledger (a crash before its ingest was recorded, or "
            "put there by something other than this tool); run 'custody ingest' on the original to record it",
            extra={"key": info.key, "version": info.version or None, "size": info.size}))
    return findings, listed


@dataclass
class _StoreWide:
    """The checks that are about the store and the ledger as a whole."""

    ledger: LedgerReport
    unrecorded: list[Finding]
    listed: int
    probes: list[LockProbe]


def _store_wide(workspace: Any, state: LedgerState, shard: Shard) -> _StoreWide:
    from custody.ledger.seal import verify_ledger

    ledger: Ledger = workspace.ledger
    store: ObjectStore = workspace.store
    report = verify_ledger(ledger, store, workspace.verifier())
    unrecorded, listed = unrecorded_findings(store, state, shard, ledger)
    return _StoreWide(report, unrecorded, listed, store.lock_self_test())


def run_audit(
    workspace: Any,
    request: AuditRequest,
    progress: ProgressSink | None = None,
    prehash: LocalPrehash | None = None,
) -> AuditReport:
    """Audit the store and the ledger as ``request`` asks, append an ``audited`` event with the
    result, then sign a checkpoint (``workspace`` is a ``custody.home.Workspace``; ``prehash``,
    if given, was started on the same store for the same request).

    The store-wide checks (ledger verification, listing for unrecorded objects, canary) run on
    a thread of their own while the objects are checked. Findings are returned in the report,
    never raised. ``StorageUnavailable`` and ``LedgerUnavailable`` propagate, and then nothing
    is recorded."""
    progress = progress or AuditProgress()
    ledger: Ledger = workspace.ledger
    store: ObjectStore = workspace.store
    clock = time.monotonic()
    started = datetime.now(timezone.utc)
    through_seq, _ = ledger.head()
    state = load_ledger_state(ledger, through_seq)
    slot = next_slot(state.audits, request.shard, request.rotation) if request.rotation else None
    report = AuditReport(
        request.level, request.shard, request.rotation, slot, through_seq,
        store.describe(), store.capabilities.worm, _iso(started),
    )
    mine = [obj for obj in state.objects.values() if request.shard.contains(obj.blake3)]
    due = [o for o in mine if not o.disposed and report.due(o.blake3)]
    progress.start(len(mine), sum(o.size for o in due))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-store") as side:
        store_wide = side.submit(_store_wide, workspace, state, request.shard)
        auditor = _ObjectAuditor(store, report, progress, prehash)
        ordered = sorted(mine, key=lambda o: -o.size)
        results = {result.blake3: result for result in _parallel(ordered, auditor, request.workers)}
        whole = store_wide.result()
    report.ledger = whole.ledger
    report.listed = whole.listed
    report.probes = whole.probes
    report.objects = [results[o.blake3] for o in sorted(mine, key=lambda o: o.blake3)]
    report.attachments_checked = sum(len(o.attachments) for o in mine if not o.disposed)
    report.findings.extend(whole.ledger.findings)
    report.findings.extend(state.findings)
    for result in report.objects:
        report.findings.extend(result.findings)
    report.findings.extend(whole.unrecorded)
    if not report.canary_enforced:
        allowed = [p for p in report.probes if not p.refused]
        report.findings.append(Finding(
            "store-not-enforcing", report.store,
            "the store let a locked canary be weakened: "
            + "; ".join(f"{p.action}: {p.detail}" for p in allowed)
            + ". Retention locks on this store cannot be relied on",
            extra={"probes": [p.action for p in allowed]}))

    previous = last_full_checks(state.audits, mine)
    report.duration = time.monotonic() - clock
    event = ledger.append(
        "audited",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        details=report.event_details(),
    )
    report.seq = event.seq
    report.finished = event.time
    this_run = {"seq": event.seq, "time": event.time, "level": request.level}
    for result in report.objects:
        if result.hashed:
            result.last_full_check = this_run
        elif result.blake3 in previous:
            record = previous[result.blake3]
            result.last_full_check = {"seq": record.seq, "time": record.time, "level": record.level}
    successes = [r.time for r in state.audits if r.shard == request.shard and r.level == request.level and r.findings == 0]
    if report.ok:
        successes.append(event.time)
    report.last_success = max(successes) if successes else None
    try:
        sealed = workspace.seal()
    except StorageError as exc:
        if report.ok:
            raise
        report.seal_error = str(exc)
    else:
        report.checkpoint = sealed.size if sealed is not None else None
    return report


# ---- Prometheus metrics ----------------------------------------------------------------------


_METRICS = (
    ("custody_audit_success", "1 if the last audit found nothing, else 0."),
    ("custody_audit_objects_checked", "Objects whose presence, metadata and locks the last audit checked."),
    ("custody_audit_objects_rehashed", "Objects whose bytes the last audit re-read and hashed."),
    ("custody_audit_bytes_hashed", "Bytes the last audit re-read and hashed."),
    ("custody_audit_findings", "Findings of the last audit, by kind."),
    ("custody_audit_objects_never_fully_checked", "Objects never re-hashed by any recorded audit of this shard."),
    ("custody_audit_duration_seconds", "Wall time of the last audit."),
    ("custody_audit_last_run_timestamp_seconds", "When the last audit finished (Unix time)."),
    ("custody_audit_last_success_timestamp_seconds",
     "When the latest audit of this shard and level without findings finished (Unix time; 0: never)."),
)


def _labels(shard: str, level: str, **more: str) -> str:
    pairs = {"shard": shard, "level": level, **more}
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unix(stamp: str | None) -> float:
    moment = _parse_time(stamp) if stamp else None
    return moment.timestamp() if moment else 0.0


def _render(values: Mapping[str, list[tuple[str, float]]]) -> str:
    lines: list[str] = []
    for name, help_text in _METRICS:
        samples = values.get(name)
        if not samples:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:.17g}")
    return "\n".join(lines) + "\n"


def prometheus_metrics(report: AuditReport) -> str:
    """The report in the Prometheus text exposition format (for a node exporter's textfile
    collector), labelled with the shard and the level."""
    shard, level = report.shard.label, report.level
    plain = _labels(shard, level)
    values: dict[str, list[tuple[str, float]]] = {
        "custody_audit_success": [(plain, 1.0 if report.ok else 0.0)],
        "custody_audit_objects_checked": [(plain, float(len(report.checked)))],
        "custody_audit_objects_rehashed": [(plain, float(len(report.rehashed)))],
        "custody_audit_bytes_hashed": [(plain, float(report.bytes_hashed))],
        "custody_audit_findings": [(_labels(shard, level, kind=k), float(n)) for k, n in report.by_kind().items()],
        "custody_audit_objects_never_fully_checked": [
            (plain, float(sum(1 for o in report.checked if o.last_full_check is None)))
        ],
        "custody_audit_duration_seconds": [(plain, report.duration)],
        "custody_audit_last_run_timestamp_seconds": [(plain, _unix(report.finished))],
        "custody_audit_last_success_timestamp_seconds": [(plain, _unix(report.last_success))],
    }
    return _render(values)


def failure_metrics(previous: str | None, shard: Shard, level: str, now: datetime) -> str:
    """Metrics for an audit that could not run (store or database unreachable): success 0,
    the time of the attempt, and the last success time carried over from ``previous`` (the
    file's earlier contents), so that an alert on its age keeps firing."""
    plain = _labels(shard.label, level)
    last_success = 0.0
    prefix = "custody_audit_last_success_timestamp_seconds" + plain + " "
    for line in (previous or "").splitlines():
        if line.startswith(prefix):
            try:
                last_success = float(line[len(prefix):])
            except ValueError:
                pass
    return _render({
        "custody_audit_success": [(plain, 0.0)],
        "custody_audit_last_run_timestamp_seconds": [(plain, now.timestamp())],
        "custody_audit_last_success_timestamp_seconds": [(plain, last_success)],
    })


def write_metrics(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temporary file in the same directory, then rename), as the
    textfile collector requires. ``ConfigError`` when it cannot be written."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the metrics file {path}: {exc.strerror or exc}") from exc
