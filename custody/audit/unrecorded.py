"""Objects in the store that the ledger does not account for, told apart from objects that an
ingest running at the same time has stored and not yet recorded.

Ingest stores an object (and its attachments) first and appends its event afterwards, so a store
listed while an ingest runs holds objects that no event names *yet*. An audit must not call them
``unrecorded``: the finding goes into the ledger, and a finding written there must be true.

How an object in flight is told apart from an orphan: by its age in the store. An unrecorded
key whose version the store received less than ``grace`` before the listing began (by the
store's own clock: ``ObjectInfo.stored_at`` against ``ObjectStore.now``) is *in flight*: the
report lists it, its event records the count and the keys, and no finding is made; the next
audit judges it again. Older ones are findings. Just before the findings are recorded, every
would-be ``unrecorded`` object is looked up in the ledger once more, so that an ingest that
recorded it while the audit ran (however long it took) does not leave a false finding.

Why an age and no marker: an age is kept by every backend without any extra write (S3's
LastModified, the local store's lock record), holds across the many ingest stations of one
bucket, and cannot go stale. A marker ("ingest in progress") would have to be written to the
store, where Object Lock may make it undeletable, or to the ledger as an event that is not a
custody fact; and a marker left by an ingest that was killed would hide its orphan from every
later audit, which is the failure audits exist to catch. The cost of the age is a delay: an
orphan is reported by the first audit after it is ``grace`` old. The default grace (one hour)
is far longer than the time between storing and recording an object (the media probe of the
file and one transaction); on S3 a multipart upload's LastModified is the start of the upload,
so a grace must also cover the longest upload. An object whose backend gives no time is judged
at once, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from custody import times
from custody.audit.recorded import LedgerState
from custody.audit.report import DEFAULT_IN_FLIGHT_GRACE, InFlight
from custody.audit.shards import HEX64, Shard, key_digest
from custody.errors import Finding, FindingKind
from storage.base import ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

CANARY_PREFIX = "canary/"
"""The canaries of the lock self-test; with ``custody.ledger.seal.CHECKPOINT_PREFIX``, the tool's own
objects, which are not evidence (checkpoints are checked by the ledger verification)."""


@dataclass
class StoreListing:
    """What listing the store found: ``unrecorded`` objects, recorded keys holding a ``newer``
    version the ledger does not know, objects ``in_flight``, and how many keys were listed."""

    unrecorded: list[Finding] = field(default_factory=list)
    newer: list[Finding] = field(default_factory=list)
    in_flight: list[InFlight] = field(default_factory=list)
    listed: int = 0

    @property
    def findings(self) -> list[Finding]:
        return self.newer + self.unrecorded

    def recheck(self, ledger: Ledger, through_seq: int) -> None:
        """Move every unrecorded object that an ingest has recorded since the audit began into
        ``in_flight`` (``recorded_during_audit``)."""
        kept: list[Finding] = []
        for finding in self.unrecorded:
            if _recorded_since(ledger, finding.subject, through_seq):
                extra = finding.extra
                self.in_flight.append(InFlight(finding.subject, extra.get("version"), int(extra.get("size") or 0),
                                               None, recorded_during_audit=True))
            else:
                kept.append(finding)
        self.unrecorded = kept


def _recorded_since(ledger: Ledger, key: str, through_seq: int) -> bool:
    """Whether the object ``key`` belongs to (by its digest name) was recorded at or after
    ``through_seq``, i.e. by an ingest that ran during the audit."""
    digest = key_digest(key)
    if not HEX64.match(digest):
        return False
    row = ledger.evidence_row(digest)
    return row is not None and int(row["first_seq"]) >= through_seq


def _in_flight(info: ObjectInfo, since: datetime) -> bool:
    """Stored after ``since``, compared to the whole second: an S3 server's time (its Date
    header) is known only to the second while its listing gives milliseconds, so an object
    stored a moment ago would otherwise look younger than ``--in-flight-grace 0``."""
    return info.stored_at is not None and info.stored_at.replace(microsecond=0) > since


def list_unrecorded(
    store: ObjectStore, state: LedgerState, shard: Shard, ledger: Ledger, grace: timedelta = DEFAULT_IN_FLIGHT_GRACE
) -> StoreListing:
    """List the whole store: a finding for every key of this shard the ledger does not account
    for and that is older than ``grace`` (younger ones are ``in_flight``), and for every recorded
    evidence key of this shard whose current version is not the recorded one."""
    from custody.anchors.records import ANCHOR_PREFIX
    from custody.ledger.seal import CHECKPOINT_PREFIX

    own = (CHECKPOINT_PREFIX, CANARY_PREFIX, ANCHOR_PREFIX)
    recorded = state.recorded_keys
    since = store.now() - grace
    result = StoreListing()
    for info in store.list(""):
        result.listed += 1
        if info.key.startswith(own):
            continue
        owner = recorded.get(info.key)
        if owner is not None:
            obj = state.objects[owner]
            if info.key == obj.key and info.version and obj.version and info.version != obj.version \
                    and shard.contains(owner) and not obj.disposed:
                result.newer.append(Finding(
                    FindingKind.UNRECORDED, info.key,
                    f"{info.key} has a newer version {info.version} that the ledger does not know; the recorded "
                    f"version is {obj.version} (a plain read of the key returns the unrecorded bytes)",
                    extra={"key": info.key, "version": info.version, "size": info.size}))
            continue
        if not shard.contains(key_digest(info.key)) or _recorded_since(ledger, info.key, state.through_seq):
            continue
        if _in_flight(info, since):
            result.in_flight.append(InFlight(info.key, info.version or None, info.size, info.stored_at))
            continue
        result.unrecorded.append(Finding(
            FindingKind.UNRECORDED, info.key,
            f"{info.key} is in the store but not in the ledger (a crash before its ingest was recorded, or "
            "put there by something other than this tool); run 'custody ingest' on the original to record it",
            extra={"key": info.key, "version": info.version or None, "size": info.size,
                   **({"stored_at": times.format_utc(info.stored_at)} if info.stored_at else {})}))
    return result
