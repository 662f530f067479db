"""Bulk ingest: reading the next files while the current one is stored and recorded.

An ingest handles each file in two stages (``custody.evidence.ingest.Ingestor``):

- ``read``: open, hash (BLAKE3 + SHA-256) into the store's staging area, probe, check that the
  file did not change. It touches neither the ledger nor any object under a key, so it can run
  ahead, on other threads, while earlier files are finished;
- ``finish``: in the order the files were given, one at a time on the calling thread: commit
  the staged copy under its key, confirm it with ``stat``, store the attachments, then append
  the event. The crash-safe order of DESIGN.md holds for every file.

``ReadAhead`` runs the reads of up to ``AHEAD`` small files in a pool of ``READERS`` threads,
on stores with a staging area (the local store). Large files, and every file on other stores,
are read when their turn comes, as before: a large file keeps the whole machine for itself.
A small file read ahead is always staged and probed, even when bytes of its size are already
preserved (its copy is discarded if it proves a repeat).
A crash leaves staged copies of files read ahead but not finished; they are under no key and
are swept from the staging area like any other left-over staging file.

Inspections (ffprobe or in-process demuxing) run in an ``InspectionPool`` while the file is
hashed. An inspection's result is used only if the file's identity, size, mtime and ctime were
the same before and after it as during the read (``EarlyInspection.valid_for``); otherwise the
file is inspected again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from custody.evidence.collect import Candidate, IngestResult, Inspection
from custody.evidence.hashing import Digests
from custody.ledger.events import CustodyEvent
from custody.ledger.database import Ledger
from custody.ledger.transaction import WriteTransaction
from custody.settings import crash_point
from storage.base import ObjectStore, StagedCopy, Staging, UploadPlan


class Appender(Protocol):
    """What finishing a file needs of the ledger inside a batch (``WriteTransaction`` has it)."""

    def evidence_row(self, blake3: str) -> Mapping[str, Any] | None: ...

    def append(
        self,
        action: str,
        *,
        actor: str,
        role: str = ...,
        subject: Mapping[str, str] | None = ...,
        details: Mapping[str, Any] | None = ...,
    ) -> CustodyEvent: ...

    def add_evidence(self, *, blake3: str, sha256: str, size: int, store_key: str, version: str, seq: int) -> None: ...


class Reader(Protocol):
    """What ``ReadAhead`` and ``Batch`` need of an ``Ingestor``."""

    store: ObjectStore
    batch: Appender | None

    @property
    def ledger(self) -> Ledger: ...

    def read(self, candidate: Candidate, likely_new: bool) -> Prepared | IngestResult: ...

    def likely_new(self, size: int) -> bool: ...

    def abandon(self, read: Prepared) -> None: ...

    def finish(self, read: Prepared) -> IngestResult: ...

    def transaction(self) -> WriteTransaction: ...


@runtime_checkable
class DeferredSync(Protocol):
    """A store that can collect the directory fsyncs of many puts (``storage.local.LocalStore``)."""

    def directory_syncs_deferred(self) -> AbstractContextManager[Callable[[], None]]: ...

AHEAD = 6
READERS = 2
SMALL = 64 << 20  # files up to this size are read ahead
INSPECTORS = 2
BATCH_FILES = 32
BATCH_SECONDS = 0.5


@dataclass
class Prepared:
    """A file read once and found unchanged: what ``Ingestor.finish`` stores and records. It
    holds the open file (closed by ``finish`` or ``ReadAhead``) and possibly a staged copy."""

    candidate: Candidate
    handle: Any
    fd: int
    before: os.stat_result
    digests: Digests
    staged: StagedCopy | None
    upload_plan: UploadPlan | None
    early: Future[EarlyInspection] | None


def _identity(st: os.stat_result | None) -> tuple[int, ...] | None:
    if st is None:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class EarlyInspection:
    inspection: Inspection
    before: os.stat_result | None
    after: os.stat_result | None

    def valid_for(self, read: os.stat_result) -> Inspection | None:
        """The inspection, if the file was the same (identity, size, mtime, ctime) before and
        after it as when it was read; None if it may have seen other bytes."""
        expected = _identity(read)
        if _identity(self.before) == expected and _identity(self.after) == expected:
            return self.inspection
        return None


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def inspect_unchanged(inspector: Callable[[str], Inspection], path: str) -> EarlyInspection:
    before = _stat(path)
    inspection = inspector(path)
    return EarlyInspection(inspection, before, _stat(path))


class InspectionPool:
    """Threads that run inspections while files are hashed; made on first use. An inspection
    whose file turns out to be preserved already is left to end on its own; its result is
    not used."""

    def __init__(self, workers: int = INSPECTORS) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, function: Callable[..., EarlyInspection], *args: Any) -> Future[EarlyInspection]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="inspect")
            return self._pool.submit(function, *args)


class ReadAhead:
    """Reads files for ``Ingestor.run`` ahead of the one being finished (see the module
    docstring). ``take(candidate)`` returns the candidate's read, from the pool or done now.
    Leaving the ``with`` block closes and discards every read not taken."""

    def __init__(self, ingestor: Reader, items: Sequence[Candidate | IngestResult]) -> None:
        self._ingestor = ingestor
        self._queue = [item for item in items if isinstance(item, Candidate)]
        self._next = 0  # index in _queue of the next candidate to submit
        self._submitted: dict[int, Future[Prepared | IngestResult]] = {}
        self.enabled = isinstance(ingestor.store, Staging) and len(self._queue) > 1
        self._pool = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="read") if self.enabled else None
        self._taken = 0

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is None:
            return
        for future in self._submitted.values():
            future.cancel()
        self._pool.shutdown(wait=True)
        for future in self._submitted.values():
            if future.cancelled() or future.exception() is not None:
                continue
            read = future.result()
            if isinstance(read, Prepared):
                self._ingestor.abandon(read)
        self._submitted.clear()

    def _top_up(self) -> None:
        assert self._pool is not None
        while self._next < len(self._queue) and self._next < self._taken + AHEAD:
            candidate = self._queue[self._next]
            if candidate.stat.st_size > SMALL:
                break  # read when its turn comes, after everything before it is finished
            # staged and probed while read even when bytes of its size are preserved already: for
            # a small file a discarded staging copy costs less than reading and probing it again
            # after the fact, and clips of a dock often share sizes
            self._submitted[self._next] = self._pool.submit(self._ingestor.read, candidate, True)
            self._next += 1

    def take(self, candidate: Candidate) -> Prepared | IngestResult:
        index = self._taken
        assert self._queue[index] is candidate, "candidates are taken in the order they were planned"
        self._taken += 1
        if self._pool is None:
            return self._ingestor.read(candidate, self._ingestor.likely_new(candidate.stat.st_size))
        self._top_up()
        future = self._submitted.pop(index, None)
        if future is not None:
            return future.result()
        # a large file: read now, alone; the files after it are read ahead while it is finished
        read = self._ingestor.read(candidate, self._ingestor.likely_new(candidate.stat.st_size))
        self._next = max(self._next, index + 1)
        self._top_up()
        return read


class Batch:
    """Files finished (stored, confirmed, recorded) together: their events are appended in one
    ledger transaction, committed after ``BATCH_FILES`` files or ``BATCH_SECONDS``, and on a
    store that can (``DeferredSync``) the directory fsyncs that make their objects durable are
    done once for the batch, just before that commit. So every object is durable and confirmed
    before its event is committed, as DESIGN.md's crash-safe order asks; a crash before the
    commit leaves the batch's objects stored and unrecorded, which the next ingest of the same
    files records (and audit reports meanwhile). Used only where files are read ahead.

    The ledger's write lock is taken only when the batch appends its first event, so that files
    are stored while another writer holds it (a foreign writer never stops this one's storing);
    a large file is finished after the open batch is committed, so that its store does not hold
    the lock either."""

    def __init__(self, ingestor: Reader) -> None:
        self._ingestor = ingestor
        self._sync: AbstractContextManager[Callable[[], None]] | None = None
        self._flush: Callable[[], None] | None = None
        self._transaction: WriteTransaction | None = None
        self._pending: list[IngestResult] = []
        self._started = 0.0

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self._close(kind, value, trace)

    def finish(self, read: Prepared) -> IngestResult:
        if self._transaction is not None and read.digests.size > SMALL:
            self.commit()
        if self._ingestor.batch is None:
            self._open()
        result = self._ingestor.finish(read)
        self._pending.append(result)
        if len(self._pending) >= BATCH_FILES or time.monotonic() - self._started >= BATCH_SECONDS:
            self.commit()
        return result

    def _open(self) -> None:
        store = self._ingestor.store
        if isinstance(store, DeferredSync):
            self._sync = store.directory_syncs_deferred()
            self._flush = self._sync.__enter__()
        self._ingestor.batch = _Deferred(self)
        self._started = time.monotonic()

    def transaction(self) -> WriteTransaction:
        """The batch's write transaction, begun (the ledger's write lock taken) on first use."""
        if self._transaction is None:
            transaction = self._ingestor.transaction()
            self._transaction = transaction.__enter__()
        return self._transaction

    def reading(self) -> WriteTransaction | None:
        return self._transaction

    def ledger_evidence_row(self, blake3: str) -> Mapping[str, Any] | None:
        return self._ingestor.ledger.evidence_row(blake3)

    def commit(self) -> None:
        """Make the batch's objects durable, then commit its events."""
        if self._ingestor.batch is None:
            return
        try:
            if self._flush is not None:
                self._flush()
        except BaseException as exc:
            self._close(type(exc), exc, exc.__traceback__)
            raise
        transaction, self._transaction = self._transaction, None
        self._ingestor.batch = None
        if transaction is not None:
            transaction.__exit__(None, None, None)
        if self._sync is not None:
            sync, self._sync, self._flush = self._sync, None, None
            sync.__exit__(None, None, None)
        for result in self._pending:
            if result.status == "recorded" and result.seq is not None:
                crash_point("recorded")
        self._pending = []

    def _close(self, kind: Any, value: Any, trace: Any) -> None:
        transaction, self._transaction = self._transaction, None
        self._ingestor.batch = None
        self._pending = []
        try:
            if transaction is not None:
                transaction.__exit__(kind, value, trace)
        finally:
            if self._sync is not None:
                sync, self._sync, self._flush = self._sync, None, None
                sync.__exit__(kind, value, trace)


class _Deferred:
    """The batch as ``Ingestor.batch``: reads go to the batch's transaction once it is begun
    (they must see its own uncommitted rows) and to the ledger before; writes begin it."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch

    def evidence_row(self, blake3: str) -> Mapping[str, Any] | None:
        transaction = self._batch.reading()
        if transaction is None:
            return self._batch.ledger_evidence_row(blake3)
        return transaction.evidence_row(blake3)

    def append(
        self,
        action: str,
        *,
        actor: str,
        role: str = "technician",
        subject: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> CustodyEvent:
        return self._batch.transaction().append(action, actor=actor, role=role, subject=subject, details=details)

    def add_evidence(self, *, blake3: str, sha256: str, size: int, store_key: str, version: str, seq: int) -> None:
        self._batch.transaction().add_evidence(blake3=blake3, sha256=sha256, size=size, store_key=store_key,
                                               version=version, seq=seq)
