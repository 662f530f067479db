"""SHA-256, SHA-512 and BLAKE3 of the same bytes, computed in one read.

SHA-512 is the slowest of the three (no CPU instructions for it on most machines), so it runs on
a thread of its own, a chunk behind, while the caller's thread reads the next chunk and feeds it
to SHA-256 and BLAKE3 (all three release the GIL). On two cores the whole costs about what
SHA-512 alone costs.

``stream_digests`` maps a regular file into memory and feeds the digests slices of the mapping:
the bytes are hashed where the page cache holds them, not copied into a buffer first (the copy
cost a tenth of a second of CPU per GiB, about 7% of what verifying a package costs). Anything
past the mapped length (a file that grew) is then read as usual. A file truncated by someone else
while it is mapped ends the process with SIGBUS: a verification that does not finish, never one
that passes.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import blake3

from custody.package.layout import CHUNK


class PayloadDigests:
    """SHA-256, SHA-512 and BLAKE3 of the same bytes, fed chunk by chunk.

    ``update(chunk)`` returns while SHA-512 may still be reading ``chunk``: the caller must not
    change that buffer until its next ``update`` (or ``hexdigests``) returns. Two buffers used
    in turn satisfy this."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._blake3 = blake3.blake3()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha512")
        self._pending: Future[None] | None = None
        self.size = 0

    def wait(self) -> None:
        """Return once SHA-512 is done with the last chunk given (its buffer is free)."""
        if self._pending is not None:
            try:
                self._pending.result()
            finally:
                self._pending = None

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self.wait()
        self._pending = self._pool.submit(self._sha512.update, chunk)
        self._sha256.update(chunk)
        self._blake3.update(chunk)
        self.size += len(chunk)

    def hexdigests(self) -> dict[str, str]:
        """``{"sha256", "sha512", "blake3"}``; the hasher cannot be fed afterwards."""
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
        return {"sha256": self._sha256.hexdigest(), "sha512": self._sha512.hexdigest(), "blake3": self._blake3.hexdigest()}


class ReadsInto(Protocol):
    """An open binary file, read with ``readinto`` (``io.BufferedReader``, ``io.FileIO``)."""

    def readinto(self, buffer: bytearray, /) -> int | None: ...


def stream_digests(handle: ReadsInto) -> tuple[dict[str, str], int]:
    """(digests, size) of an open file read to its end once: a regular file through a read-only
    mapping, then (and any other file) into two buffers used in turn. A read error propagates
    as ``OSError``."""
    hasher = PayloadDigests()
    try:
        _feed_mapped(handle, hasher)
        buffers = (bytearray(CHUNK), bytearray(CHUNK))
        turn = 0
        while True:
            buffer = buffers[turn]
            count = handle.readinto(buffer)
            if not count:
                break
            hasher.update(memoryview(buffer)[:count])
            turn ^= 1
    finally:
        digests = hasher.hexdigests()
    return digests, hasher.size


def _feed_mapped(handle: ReadsInto, hasher: PayloadDigests) -> None:
    """Feed ``hasher`` the file's bytes from a mapping of its current length and leave the file
    positioned after them; do nothing when the file cannot be mapped (not a regular file,
    empty, no ``fileno``, or mmap refused)."""
    fileno = getattr(handle, "fileno", None)
    seek = getattr(handle, "seek", None)
    if fileno is None or seek is None:
        return
    try:
        fd = fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0 or seek(0, os.SEEK_CUR) != 0:
            return
        mapping = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return
    with mapping:
        if hasattr(mapping, "madvise"):
            mapping.madvise(mmap.MADV_SEQUENTIAL)
        size = len(mapping)
        with memoryview(mapping) as whole:
            previous: memoryview | None = None
            try:
                for offset in range(0, size, CHUNK):
                    piece = whole[offset : offset + CHUNK]
                    hasher.update(piece)  # returns once SHA-512 is done with ``previous``
                    if previous is not None:
                        previous.release()
                    previous = piece
            finally:
                hasher.wait()
                if previous is not None:
                    previous.release()
        seek(size, os.SEEK_SET)
