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

CHUNK = 16 << 20  # a whole number of pages, so that chunks can be written with O_DIRECT
DEPTH = 3
Progress = Callable[[int], None]
Sink = Callable[[memoryview], None]


@dataclass(frozen=True)
class Digests:
    blake3: str
    sha256: str
    size: int


def hash_stream(source: BinaryIO, progress: Progress | None = None, sink: Sink | None = None) -> Digests:
    """BLAKE3 and SHA-256 of everything ``source`` yields, in one read.

    With ``sink``, every chunk is also handed to ``sink``, in order, on a thread of its own, from
    the very buffer that was hashed: what the sink receives is exactly what the digests cover.
    The buffers are page-aligned anonymous mappings, and every chunk but the last is a whole
    number of pages, so a sink may write them with ``O_DIRECT``. A ring of ``DEPTH`` buffers lets
    the next read overlap the hashing and the sink's writing of the earlier ones.

    An exception from the read, the hashing or the sink stops the pipeline; it is re-raised
    once everything already submitted has finished, so no thread still touches a buffer."""
    from concurrent.futures import Future, ThreadPoolExecutor

    b3 = blake3.blake3()
    sha = hashlib.sha256()
    sha_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    sink_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink") if sink is not None else None
    buffers = [mmap.mmap(-1, CHUNK) for _ in range(DEPTH)]
    pending: list[list[Future[None]]] = [[] for _ in range(DEPTH)]
    size = 0
    turn = 0
    try:
        while True:
            for job in pending[turn]:
                job.result()
            view = memoryview(buffers[turn])
            count = _fill(source, view)
            if not count:
                break
            chunk = view[:count]
            pending[turn] = [sha_thread.submit(sha.update, chunk)]
            if sink_thread is not None and sink is not None:
                pending[turn].append(sink_thread.submit(sink, chunk))
            b3.update(chunk)
            size += count
            if progress is not None:
                progress(count)
            turn = (turn + 1) % DEPTH
        for jobs in pending:
            for job in jobs:
                job.result()
    finally:
        for jobs in pending:
            for job in jobs:
                job.cancel()
        sha_thread.shutdown(wait=True)
        if sink_thread is not None:
            sink_thread.shutdown(wait=True)
    return Digests(b3.hexdigest(), sha.hexdigest(), size)


def _fill(source: BinaryIO, view: memoryview) -> int:
    """Read into ``view`` until it is full or the source ends; the number of bytes read. A short
    read in the middle of a file (pipes, network filesystems) does not end a chunk early."""
    readinto = getattr(source, "readinto", None)
    filled = 0
    while filled < len(view):
        if readinto is not None:
            count = readinto(view[filled:])
        else:
            data = source.read(len(view) - filled)
            count = len(data)
            view[filled : filled + count] = data
        if not count:
            break
        filled += count
    return filled


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
