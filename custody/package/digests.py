"""SHA-256, SHA-512 and BLAKE3 of the same bytes, computed in one read."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from custody.package.layout import CHUNK


class PayloadDigests:
    """SHA-256, SHA-512 and BLAKE3 of the same bytes, fed chunk by chunk (the two SHA-2 on a
    worker thread each, BLAKE3 on the caller's; all release the GIL)."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self._blake3 = blake3.blake3()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="payload-hash")
        self.size = 0

    def update(self, chunk: bytes) -> None:
        first = self._pool.submit(self._sha256.update, chunk)
        second = self._pool.submit(self._sha512.update, chunk)
        self._blake3.update(chunk)
        first.result()
        second.result()
        self.size += len(chunk)

    def hexdigests(self) -> dict[str, str]:
        """``{"sha256", "sha512", "blake3"}``; the hasher cannot be fed afterwards."""
        self._pool.shutdown(wait=True)
        return {"sha256": self._sha256.hexdigest(), "sha512": self._sha512.hexdigest(), "blake3": self._blake3.hexdigest()}


def file_digests(path: Path) -> tuple[dict[str, str], int]:
    """(digests, size) of a file in one read. A read error propagates as ``OSError``."""
    hasher = PayloadDigests()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
    finally:
        digests = hasher.hexdigests()
    return digests, hasher.size
