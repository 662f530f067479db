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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from custody.evidence.collect import Candidate, IngestResult, Inspection
from custody.evidence.hashing import Digests
from storage.base import ObjectStore, StagedCopy, Staging, UploadPlan


class Reader(Protocol):
    """What ``ReadAhead`` needs of an ``Ingestor``."""

    store: ObjectStore

    def read(self, candidate: Candidate, likely_new: bool) -> Prepared | IngestResult: ...

    def likely_new(self, size: int) -> bool: ...

    def abandon(self, read: Prepared) -> None: ...

AHEAD = 6
READERS = 2
SMALL = 64 << 20  # files up to this size are read ahead
INSPECTORS = 2


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
        enabled = isinstance(ingestor.store, Staging) and len(self._queue) > 1
        self._pool = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="read") if enabled else None
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
            likely_new = self._ingestor.likely_new(candidate.stat.st_size)
            self._submitted[self._next] = self._pool.submit(self._ingestor.read, candidate, likely_new)
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
