"""BLAKE3-256 and SHA-256 of files and streams.

Imports nothing heavy: ``custody hash`` must start fast. A read error is never turned into a
digest; it propagates as ``OSError`` for the caller to report as "unreadable".

Only the bytes of a regular file are ever digested. Devices (``/dev/null`` included), sockets and
directories, named directly or through a link, raise ``SpecialFile`` without being read (they
are opened only after ``stat`` says they are regular, and checked again on the open descriptor).
A FIFO is refused too, unless the caller asks for it (``fifo_timeout``); it is then read to its
end, and waiting longer than that for the next bytes is an error, so it never blocks forever.
A regular file whose size reads as 0, or that cannot be memory-mapped (procfs and sysfs files),
is read to its end rather than digested as empty; one that would block (``/proc/kmsg``) is an
error.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import blake3

from custody.errors import BadInput

CHUNK = 16 << 20  # a whole number of pages, so that chunks can be written with O_DIRECT
DEPTH = 3
Progress = Callable[[int], None]
Sink = Callable[[memoryview], None]


@dataclass(frozen=True)
class Digests:
    blake3: str
    sha256: str
    size: int
    md5: str | None = None
    """Only when asked for (a manifest of the previous system declares MD5)."""


def hash_stream(
    source: BinaryIO, progress: Progress | None = None, sink: Sink | None = None, *, md5: bool = False
) -> Digests:
    """BLAKE3 and SHA-256 (and, with ``md5``, MD5) of everything ``source`` yields, in one read.

    With ``sink``, every chunk is also handed to ``sink``, in order, on a thread of its own, from
    the very buffer that was hashed: what the sink receives is exactly what the digests cover.
    The buffers are page-aligned anonymous mappings, and every chunk but the last is a whole
    number of pages, so a sink may write them with ``O_DIRECT``. A ring of ``DEPTH`` buffers lets
    the next read overlap the hashing and the sink's writing of the earlier ones.

    A source that ends within the first chunk (a short clip) is hashed and sunk on the calling
    thread, without starting any.

    An exception from the read, the hashing or the sink stops the pipeline; it is re-raised
    once everything already submitted has finished, so no thread still touches a buffer."""
    from concurrent.futures import Future, ThreadPoolExecutor

    b3 = blake3.blake3()
    sha = hashlib.sha256()
    legacy = hashlib.md5(usedforsecurity=False) if md5 else None
    first = mmap.mmap(-1, CHUNK)
    with memoryview(first) as view:
        count = _fill(source, view)
        if count < CHUNK:  # the whole source in one chunk (a short clip): no threads needed
            with view[:count] as chunk:
                if sink is not None and count:
                    sink(chunk)
                b3.update(chunk)
                sha.update(chunk)
                if legacy is not None:
                    legacy.update(chunk)
    if count < CHUNK:
        first.close()
        if progress is not None and count:
            progress(count)
        return Digests(b3.hexdigest(), sha.hexdigest(), count, legacy.hexdigest() if legacy is not None else None)
    sha_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    sink_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink") if sink is not None else None
    buffers = [first] + [mmap.mmap(-1, CHUNK) for _ in range(DEPTH - 1)]
    filled = count  # the first buffer is already full
    pending: list[list[Future[None]]] = [[] for _ in range(DEPTH)]
    size = 0
    turn = 0
    try:
        while True:
            for job in pending[turn]:
                job.result()
            view = memoryview(buffers[turn])
            count, filled = (filled, 0) if filled else (_fill(source, view), 0)
            if not count:
                break
            chunk = view[:count]
            pending[turn] = [sha_thread.submit(sha.update, chunk)]
            if legacy is not None:
                pending[turn].append(sha_thread.submit(legacy.update, chunk))
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
    return Digests(b3.hexdigest(), sha.hexdigest(), size, legacy.hexdigest() if legacy is not None else None)


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


class SpecialFile(BadInput):
    """The path is not a regular file (a device, socket, directory or, unasked, a FIFO), or it
    would block: it is not read, and no digest is made of it."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        self.path = os.fsdecode(path)
        shown = self.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        super().__init__(f"{shown}: {what}; only the bytes of regular files are hashed")


_SPECIAL = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISDIR, "a directory"),
)


def special_kind(mode: int) -> str | None:
    """What a non-regular file is ("a character device", ...); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in _SPECIAL:
        if test(mode):
            return name
    return "not a regular file"


def open_for_reading(path: str | os.PathLike[str], *, fifo: bool = False) -> tuple[int, os.stat_result]:
    """Open a regular file (or, with ``fifo``, a FIFO) for reading without blocking; the
    descriptor and its ``fstat``. Anything else raises ``SpecialFile`` and is never opened; the
    descriptor is checked again, in case the path was replaced between the two looks."""
    kind = special_kind(os.stat(path).st_mode)
    if kind is not None and not (fifo and kind.startswith("a FIFO")):
        raise SpecialFile(path, kind)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        kind = special_kind(st.st_mode)
        if kind is not None and not (fifo and stat.S_ISFIFO(st.st_mode)):
            raise SpecialFile(path, kind)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


class _FifoReader:
    """Reads a FIFO opened without blocking, waiting at most ``timeout`` seconds for each next
    piece of data (or the writer's end)."""

    def __init__(self, fd: int, path: str | os.PathLike[str], timeout: float) -> None:
        import select

        self._fd = fd
        self._path = path
        self._timeout = timeout
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLHUP)
        self._seen_writer = False

    def readinto(self, view: memoryview) -> int:
        import select
        import time

        deadline = time.monotonic() + self._timeout
        while True:
            try:
                count = os.readv(self._fd, [view])
            except BlockingIOError:
                count = -1
            if count > 0:
                self._seen_writer = True
                return count
            if count == 0 and self._seen_writer:
                return 0
            # no writer yet (a FIFO without one reads as empty), or no data yet
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpecialFile(
                    self._path, f"a FIFO that sent nothing for {self._timeout:g} s (no writer, or a stalled one)"
                )
            events = self._poll.poll(min(left, 0.2) * 1000)
            if any(mask & (select.POLLIN | select.POLLHUP) for _, mask in events):
                self._seen_writer = True  # data, or a writer that came (and maybe went)


def _read_to_end(fd: int, path: str | os.PathLike[str], update: Callable[[memoryview], object], fifo_timeout: float | None) -> None:
    """Feed everything ``fd`` yields to ``update``, without ever blocking forever."""
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    reader = _FifoReader(fd, path, fifo_timeout) if fifo_timeout is not None else None
    while True:
        try:
            count = reader.readinto(view) if reader is not None else os.readv(fd, [view])
        except BlockingIOError as exc:
            raise SpecialFile(path, "a file whose read would block (a kernel message queue or the like)") from exc
        if not count:
            return
        update(view[:count])


def _digest_file(
    path: str | os.PathLike[str], update: Callable[[Any], object], fifo_timeout: float | None
) -> None:
    fd, st = open_for_reading(path, fifo=fifo_timeout is not None)
    try:
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            try:
                with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
                    update(mapped)
                return
            except (OSError, ValueError):
                pass  # not mappable (sysfs, some FUSE files): read it instead
        _read_to_end(fd, path, update, fifo_timeout if stat.S_ISFIFO(st.st_mode) else None)
    finally:
        os.close(fd)


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None) -> Digests:
    """BLAKE3 and SHA-256 of a regular file, in one read (``SpecialFile`` for anything else)."""
    fd, _ = open_for_reading(path)
    os.set_blocking(fd, True)
    with open(fd, "rb", buffering=0) as handle:
        return hash_stream(handle, progress)


def blake3_file(path: str | os.PathLike[str], threads: int | None = None, *, fifo_timeout: float | None = None) -> str:
    """BLAKE3-256 of a regular file using memory mapping and all cores (the verification fast
    path). With ``fifo_timeout``, a FIFO is also read, to its end; see the module docstring."""
    hasher = blake3.blake3(max_threads=threads if threads is not None else blake3.blake3.AUTO)
    _digest_file(path, hasher.update, fifo_timeout)
    return hasher.hexdigest()


def sha256_file(path: str | os.PathLike[str], *, fifo_timeout: float | None = None) -> str:
    """SHA-256 of a regular file (and, with ``fifo_timeout``, of a FIFO): see ``blake3_file``."""
    digest = hashlib.sha256()
    _digest_file(path, digest.update, fifo_timeout)
    return digest.hexdigest()
