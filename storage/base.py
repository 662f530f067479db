"""The object-store protocol every backend implements, the optional capabilities some offer,
and the values they exchange.

A store keeps immutable objects under string keys. ``ObjectStore`` holds the verbs every backend
has; each optional capability is a small protocol of its own (``Staging``, ``UploadPlanning``,
``LocalPaths``, ``BucketSetup``), which the core asks for with ``isinstance`` instead of testing
a backend's class. Every verb's docstring is its contract; the contract suite in
``tests/contract/`` runs the same tests against every backend, and each capability's tests
against every backend that offers it. ``confirm_stored`` is the one check that a stored version
is what was asked for.
"""

from __future__ import annotations

import builtins

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from storage.errors import StoredObjectMismatch, StoreMisconfigured

RetentionMode = Literal["COMPLIANCE", "GOVERNANCE"]
ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just transferred; never with a running total."""


@dataclass(frozen=True)
class Retention:
    """A retention lock: the object version cannot be deleted or overwritten before ``until``."""

    mode: RetentionMode
    until: datetime

    def __post_init__(self) -> None:
        if self.until.tzinfo is None:
            raise ValueError("retention dates must be timezone-aware (UTC)")


@dataclass(frozen=True)
class ObjectInfo:
    """What the store says about one stored object version."""

    key: str
    version: str
    size: int
    sha256: str | None
    retention: Retention | None
    legal_hold: bool
    metadata: Mapping[str, str] = field(default_factory=dict)
    stored_at: datetime | None = None
    """About when the store received this version, by the store's clock (``now``): the local
    store's lock record, S3's LastModified (for a multipart upload, when the upload began);
    None when the backend does not say."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend guarantees, stated honestly."""

    worm: Literal["server", "program"]
    """``server``: the storage server enforces retention itself; ``program``: only this
    program does, and an operator with enough privileges can still delete objects."""
    description: str


@dataclass(frozen=True)
class LockProbe:
    """One attempt of the lock self-test to weaken a locked canary, and what the store did."""

    action: str
    """``delete-version``, ``shorten-retention`` or ``switch-to-governance``."""
    refused: bool
    detail: str


@runtime_checkable
class ObjectStore(Protocol):
    """An append-only object store with retention locks and legal holds."""

    capabilities: Capabilities

    def describe(self) -> str:
        """A human-readable location of the store (never contains credentials)."""
        ...

    def put(
        self,
        key: str,
        source: BinaryIO,
        size: int,
        *,
        sha256: str,
        retention: Retention,
        legal_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Store exactly ``size`` bytes read from ``source`` under ``key``.

        The backend has the bytes it received validated (by the server, or by itself for the
        local store) against ``sha256`` (lowercase hex) and ``size``; on mismatch it raises
        ``IntegrityRejected`` and leaves nothing readable under ``key``. An existing object under
        ``key`` is never overwritten: ``ObjectExists``. The object carries ``retention`` and,
        when asked, a legal hold before this returns. Returns the stored version's info as a
        fresh ``stat`` reports it.
        """
        ...

    def stat(self, key: str, version: str | None = None) -> ObjectInfo:
        """Size, version, SHA-256, retention and legal hold of a stored version (latest when
        ``version`` is None). ``ObjectNotFound`` when it does not exist."""
        ...

    def open(self, key: str, version: str | None = None) -> BinaryIO:
        """A readable binary stream of exactly the stored bytes. ``ObjectNotFound`` if absent."""
        ...

    def extend_retention(self, key: str, version: str, until: datetime) -> ObjectInfo:
        """Move the retain-until date later. A date earlier than the current one raises
        ``RetentionViolation`` and changes nothing; an equal date is a no-op."""
        ...

    def set_legal_hold(self, key: str, version: str, on: bool) -> ObjectInfo:
        """Place (``on``) or release a legal hold on one object version."""
        ...

    def delete(self, key: str, version: str) -> None:
        """Delete one object version. Raises ``RetentionViolation`` while it is retained or
        held; callers only ask for versions whose retention has expired."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every current object version whose key starts with ``prefix``, each exactly once,
        in key order. Retention and hold fields may be None/False when the backend cannot
        list them cheaply; ``stat`` is authoritative. ``stored_at`` is given wherever the
        backend knows it."""
        ...

    def now(self) -> datetime:
        """The store's notion of the current UTC time (retention dates are computed from it)."""
        ...

    def lock_self_test(self) -> builtins.list[LockProbe]:
        """Write a small canary under ``canary/`` with a short COMPLIANCE retention, then ask
        the storage itself, bypassing this program's own refusals, to delete that version, to
        shorten its retention and to switch it to GOVERNANCE. One probe per attempt; the store
        enforces locks only if every probe was refused. Raises ``StorageUnavailable`` when the
        canary cannot be written at all."""
        ...


class StagingFile(Protocol):
    """A file being written in a store's staging area (see ``Staging.open_staging``)."""

    @property
    def size(self) -> int:
        """The number of bytes the caller declared it will write."""
        ...

    def write(self, chunk: memoryview) -> None:
        """Append ``chunk``; chunks arrive in order. Raises ``StorageUnavailable`` when the
        store cannot write, and every later ``write`` raises it again."""
        ...

    def finish(self) -> StagedCopy:
        """Make the written bytes durable and return them as a staged copy. Raises
        ``IntegrityRejected`` (and leaves nothing behind) unless exactly ``size`` bytes were
        written."""
        ...

    def abort(self) -> None:
        """Remove everything written so far; idempotent."""
        ...


class StagedCopy(Protocol):
    """Bytes made durable in a store's staging area, not yet under any key."""

    @property
    def size(self) -> int:
        """The number of bytes staged."""
        ...


@runtime_checkable
class Staging(Protocol):
    """A store that can receive an object's bytes while the caller hashes them, before the key
    (which is made from the hash) is known: one read of the source both hashes and stores.

    A staging file is never readable under any key, never a link to a stored object once its
    writer is done, and never outlives its writer: ``commit_staged`` and ``discard_staged``
    remove it, and files left by a writer that died are removed by ``sweep_staging``.
    """

    def open_staging(self, size: int) -> StagingFile:
        """A new, empty staging file for ``size`` bytes."""
        ...

    def commit_staged(
        self,
        staged: StagedCopy,
        key: str,
        *,
        sha256: str,
        retention: Retention,
        legal_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Make ``staged`` the object under ``key``, as ``ObjectStore.put`` would with the same
        bytes: never overwriting (``ObjectExists``), locked before this returns, and the info a
        fresh ``stat`` reports. The staged copy is gone afterwards, whatever happened. The
        caller vouches that the staged bytes have ``sha256`` (it hashed the very chunks it
        wrote); a staged copy whose size changed raises ``IntegrityRejected``."""
        ...

    def discard_staged(self, staged: StagedCopy) -> None:
        """Remove a staged copy that will not be committed; idempotent (a committed or already
        discarded copy is a no-op)."""
        ...


class UploadPlan(Protocol):
    """Per-part digests of one upload, computed from the bytes of the caller's hash pass."""

    def write(self, chunk: bytes | memoryview) -> None:
        """Take the next chunk of the object, in order (``hash_stream``'s sink)."""
        ...


@runtime_checkable
class UploadPlanning(ObjectStore, Protocol):
    """A store that sends large objects in parts and can check each part against digests the
    caller computed in its own hash pass, so the source is read once to hash and once to send,
    and nothing is hashed while sending."""

    def plan_upload(self, size: int) -> UploadPlan | None:
        """A plan for an object of ``size`` bytes, or None when ``put`` needs none for it. The
        caller gives the plan every byte whose SHA-256 it will declare, in order, then passes
        it to ``put``."""
        ...

    def put(
        self,
        key: str,
        source: BinaryIO,
        size: int,
        *,
        sha256: str,
        retention: Retention,
        legal_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        plan: UploadPlan | None = None,
    ) -> ObjectInfo:
        """``ObjectStore.put``, with the ``plan`` made by ``plan_upload(size)`` and fed exactly
        the ``size`` bytes whose SHA-256 is ``sha256``; ``source`` must yield the same bytes
        again. The store refuses any part that is not the planned bytes (nothing is stored),
        and a plan that does not cover ``size`` bytes before anything is sent
        (``IntegrityRejected``)."""
        ...


@runtime_checkable
class LocalPaths(Protocol):
    """A store whose objects are files on this machine."""

    def local_path(self, key: str, version: str | None = None) -> Path:
        """The read-only file holding exactly the stored bytes of ``key`` (for memory-mapped
        verification); ``ObjectNotFound`` if absent. The caller never writes it."""
        ...


@runtime_checkable
class BucketSetup(Protocol):
    """A store whose container (a bucket, a directory) is set up and checked before use."""

    def ensure_bucket(self, create: bool = False, default_retention_days: int = 90) -> None:
        """Check that the container exists and can lock objects. With ``create`` a missing one
        is made, with a default retention of ``default_retention_days`` days where the backend
        has such a default (0: none); an existing one's settings are never changed. Raises
        ``StoreMisconfigured`` when it cannot lock objects and ``StorageUnavailable`` when it
        is missing (without ``create``) or cannot be reached."""
        ...


def whole_second_ceiling(moment: datetime) -> datetime:
    """``moment`` in UTC, rounded up to a whole second."""
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def format_utc(moment: datetime) -> str:
    """``moment`` as RFC 3339 in UTC, whole seconds, with ``Z``: how stores write times (the same
    form as ``custody.times.format_utc``, which storage does not import)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """A time a store wrote with ``format_utc``, in UTC (``ValueError`` if it is not one)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def confirm_stored(
    info: ObjectInfo,
    *,
    retention: Retention,
    legal_hold: bool,
    size: int | None = None,
    sha256: str | None = None,
) -> None:
    """Check that a stored version is what was asked for, as a fresh ``stat`` reports it.

    A different ``size``, or a SHA-256 that is not ``sha256`` (including none at all), raises
    ``StoredObjectMismatch`` (an integrity failure: the version exists and is not the bytes
    that were sent; it stays as stored and an audit lists it). A version id must be present; the
    retention must be in ``retention.mode`` and last at least until ``retention.until`` (to the
    whole second: stores keep retain-until dates in whole seconds; later is fine, e.g. a bucket
    default); a legal hold must be on when asked. A missing version id or a weaker lock raises
    ``StoreMisconfigured``: the store accepted the request without keeping the promise.
    """
    where = f"{info.key} (version {info.version or 'none'})"
    if size is not None and info.size != size:
        raise StoredObjectMismatch(
            f"the store reports {info.size} bytes for {where} but {size} were sent; the version "
            "stays as stored (an audit will list it); check the store before ingesting more"
        )
    if sha256 is not None and info.sha256 != sha256.lower():
        raise StoredObjectMismatch(
            f"the store reports SHA-256 {info.sha256 or '(none)'} for {where} but "
            f"{sha256.lower()} was sent; the version stays as stored (an audit will list it); "
            "check the store before ingesting more"
        )
    if not info.version:
        raise StoreMisconfigured(
            f"the store returned no version id for {where}: bucket versioning is off, so Object "
            "Lock cannot protect it; use a bucket created with Object Lock enabled"
        )
    wanted = retention.until.astimezone(timezone.utc).replace(microsecond=0)
    problems: builtins.list[str] = []
    if info.retention is None:
        problems.append("it has no retention at all")
    else:
        if info.retention.mode != retention.mode:
            problems.append(f"its retention mode is {info.retention.mode}, not {retention.mode}")
        if info.retention.until < wanted:
            problems.append(
                f"it is retained until {format_utc(info.retention.until)}, earlier than {format_utc(wanted)}"
            )
    if legal_hold and not info.legal_hold:
        problems.append("the legal hold is not on")
    if problems:
        raise StoreMisconfigured(
            f"the store accepted {where} but its lock is weaker than asked: "
            + "; ".join(problems)
            + ". The store does not enforce Object Lock as requested: do not use it for "
            "evidence; check it with 'custody store check'"
        )
