"""The object-store protocol every backend implements, and the values it exchanges.

A store keeps immutable objects under string keys. Every verb's docstring is its contract; the
contract suite in ``tests/contract/`` runs the same tests against every backend.
"""

from __future__ import annotations

import builtins

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal, Protocol, runtime_checkable

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
