"""BLAKE3-256 and SHA-256 of files and streams.

Imports nothing heavy: ``custody hash`` must start fast. A read error is never turned into a
digest; it propagates as ``OSError`` for the caller to report as "unreadable".
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import blake3

CHUNK = 4 << 20
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Digests:
    blake3: str
    sha256: str
    size: int


class StreamHasher:
    """BLAKE3 and SHA-256 of the same bytes, fed chunk by chunk. The two run side by side:
    SHA-256 on a worker thread, BLAKE3 on the caller's (both release the GIL)."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._b3 = blake3.blake3()
        self._sha = hashlib.sha256()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        pending = self._pool.submit(self._sha.update, chunk)
        self._b3.update(chunk)
        pending.result()
        self.size += len(chunk)

    def digests(self) -> Digests:
        self._pool.shutdown(wait=True)
        return Digests(self._b3.hexdigest(), self._sha.hexdigest(), self.size)


def hash_stream(source: BinaryIO, progress: Progress | None = None) -> Digests:
    """BLAKE3 and SHA-256 of everything ``source`` yields, in one read.

    Two buffers alternate, so the next read overlaps hashing of the previous chunk."""
    hasher = StreamHasher()
    buffers = (bytearray(CHUNK), bytearray(CHUNK))
    turn = 0
    readinto = getattr(source, "readinto", None)
    while True:
        buffer = buffers[turn]
        if readinto is not None:
            count = readinto(buffer)
            view = memoryview(buffer)[:count] if count else memoryview(b"")
        else:
            data = source.read(CHUNK)
            count = len(data)
            view = memoryview(data)
        if not count:
            break
        hasher.update(view)
        if progress is not None:
            progress(count)
        turn ^= 1
    return hasher.digests()


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None) -> Digests:
    """BLAKE3 and SHA-256 of a file, in one read."""
    with open(path, "rb", buffering=0) as handle:
        return hash_stream(handle, progress)


def blake3_file(path: str | os.PathLike[str], threads: int | None = None) -> str:
    """BLAKE3-256 of a file using memory mapping and all cores (the verification fast path)."""
    hasher = blake3.blake3(max_threads=threads if threads is not None else blake3.blake3.AUTO)
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return hasher.hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            hasher.update(mapped)
    return hasher.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                digest.update(mapped)
    return digest.hexdigest()
