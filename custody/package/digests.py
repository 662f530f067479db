"""SHA-256, SHA-512 and BLAKE3 of the same bytes, computed in one read.

SHA-512 is the slowest of the three (no CPU instructions for it on most machines), so it runs on
a thread of its own, a chunk behind, while the caller's thread reads the next chunk and feeds it
to SHA-256 and BLAKE3 (all three release the GIL). On two cores the whole costs about what
SHA-512 alone costs.
"""

from __future__ import annotations

import hashlib
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

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._wait()
        self._pending = self._pool.submit(self._sha512.update, chunk)
        self._sha256.update(chunk)
        self._blake3.update(chunk)
        self.size += len(chunk)

    def hexdigests(self) -> dict[str, str]:
        """``{"sha256", "sha512", "blake3"}``; the hasher cannot be fed afterwards."""
        try:
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
        return {"sha256": self._sha256.hexdigest(), "sha512": self._sha512.hexdigest(), "blake3": self._blake3.hexdigest()}


class ReadsInto(Protocol):
    """An open binary file, read with ``readinto`` (``io.BufferedReader``, ``io.FileIO``)."""

    def readinto(self, buffer: bytearray, /) -> int | None: ...


def stream_digests(handle: ReadsInto) -> tuple[dict[str, str], int]:
    """(digests, size) of an open file read to its end once, into two buffers used in turn. A
    read error propagates as ``OSError``."""
    hasher = PayloadDigests()
    buffers = (bytearray(CHUNK), bytearray(CHUNK))
    turn = 0
    try:
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
