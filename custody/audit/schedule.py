"""The schedule, kept in the ledger: what earlier ``audited`` events covered, the slot the next
rotation run covers, and each object's last full check (see ``custody.audit``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from custody.audit.shards import Shard, slot_of
from custody.errors import BadInput


class Scheduled(Protocol):
    """What the schedule needs of a recorded object (``custody.audit.recorded.RecordedObject``)."""

    @property
    def blake3(self) -> str: ...

    @property
    def first_seq(self) -> int: ...


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
        """Whether this audit fully re-hashed that object (see ``custody.audit``, "How the schedule is persisted")."""
        if first_seq >= self.through_seq or blake3 in self.not_rehashed:
            return False
        if not self.shard.contains(blake3):
            return False
        if self.level == "full":
            return True
        return self.rotation is not None and self.slot is not None and slot_of(blake3, self.rotation) == self.slot

    @classmethod
    def from_details(cls, seq: int, time_: str, details: Mapping[str, Any]) -> AuditRecord | None:
        """None for an event whose details do not have the shape ``AuditReport.event_details`` gives them."""
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


def next_slot(audits: Sequence[AuditRecord], shard: Shard, rotation: int) -> int:
    """The slot the next rotation run of ``shard`` covers: one after the latest recorded run
    with the same shard and the same N, else 0."""
    for record in reversed(audits):
        if record.shard == shard and record.rotation == rotation and record.slot is not None:
            return (record.slot + 1) % rotation
    return 0


def last_full_checks(audits: Sequence[AuditRecord], objects: Iterable[Scheduled]) -> dict[str, AuditRecord]:
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
