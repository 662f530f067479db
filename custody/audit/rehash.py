"""Re-reading a stored object's bytes to hash them: memory-mapped on all cores for the local
store, streamed otherwise, and, for a full audit of the local store, started before the ledger
is even open (``LocalPrehash``)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import blake3 as blake3_mod

from custody.audit.report import AuditRequest
from custody.audit.shards import HEX64
from custody.evidence.hashing import sha256_file
from storage.base import LocalPaths, ObjectStore
from storage.errors import StorageError

READ_CHUNK = 8 << 20
_LOCAL_HASHING = threading.Lock()
"""Local objects are hashed on all cores each, so one at a time: concurrent memory-mapped
hashes only compete for the same cores and page-fault paths."""


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
        if not isinstance(store, LocalPaths) or request.level != "full":
            return None
        files = []
        for info in store.list("evidence/"):
            name = info.key.rsplit("/", 1)[-1]
            if HEX64.match(name) and request.shard.contains(name):
                try:
                    files.append(Path(store.local_path(info.key)))
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
    if isinstance(store, LocalPaths):
        path = store.local_path(key, version)
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
