"""Seekable raw readers: the body of one upload request over a span of the caller's source,
and the stream of one stored version (re-requested with a Range header after a seek)."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO, Protocol

from botocore.exceptions import BotoCoreError

from storage.base import ProgressCallback
from storage.errors import IntegrityRejected, StorageError, StorageUnavailable


class VersionSource(Protocol):
    """What ``ObjectReader`` needs of the store (``storage.s3.store.S3Store``): the stream of a
    version from a byte offset, and the translation of a client error into a storage error."""

    def _body_from(self, key: str, full: str, version: str | None, start: int) -> Any: ...

    def _translate(
        self, exc: Exception, action: str, key: str | None = None, version: str | None = None, lock: bool = False
    ) -> StorageError: ...


def descriptor_of(source: BinaryIO) -> int | None:
    """The file descriptor of a seekable source (a regular file), else None."""
    try:
        descriptor = source.fileno()
        source.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return descriptor if source.seekable() else None


def pread_exactly(descriptor: int, count: int, offset: int) -> bytes:
    """``count`` bytes at ``offset``, fewer only at end of file (short reads are retried)."""
    first = os.pread(descriptor, count, offset)
    if len(first) == count or not first:
        return first
    pieces = [first]
    got = len(first)
    while got < count:
        piece = os.pread(descriptor, count - got, offset + got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def read_up_to(source: BinaryIO, count: int) -> bytes:
    """Read ``count`` bytes, fewer only at end of stream (short reads are retried)."""
    first = source.read(count)
    if len(first) == count or not first:
        return bytes(first)
    pieces = [first]
    missing = count - len(first)
    while missing:
        piece = source.read(missing)
        if not piece:
            break
        pieces.append(piece)
        missing -= len(piece)
    return b"".join(pieces)


class _SizedReader(io.RawIOBase):
    """A read-only, seekable stream of ``_size`` bytes whose position is ``_pos``."""

    _size: int
    _pos: int

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _seek_target(self, offset: int, whence: int) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        return base + offset


class SourceSpan(_SizedReader):
    """Exactly ``size`` bytes of ``source`` from its position when made, as the seekable body
    of one request (botocore rewinds it to retry). A source with a file descriptor is read with
    ``os.pread``, so its own position does not matter; any other is seeked. A source that ends
    early raises ``IntegrityRejected`` in the middle of the request, which is then cut short
    (nothing is stored). ``progress`` hears of bytes read for the first time, in steps of
    ``step`` bytes, on the thread that sends the request."""

    def __init__(
        self, source: BinaryIO, size: int, key: str, progress: ProgressCallback | None, step: int
    ) -> None:
        super().__init__()
        self._source = source
        self._descriptor = descriptor_of(source)
        self._start = source.tell()
        self._size = size
        self._key = key
        self._progress = progress
        self._step = step
        self._pos = 0
        self._reported = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._seek_target(offset, whence)
        return self._pos

    def available(self) -> int:
        """How many bytes the source has from the starting position on, now."""
        if self._descriptor is not None:
            return os.fstat(self._descriptor).st_size - self._start
        end = self._source.seek(0, io.SEEK_END)
        self._source.seek(self._start)
        return end - self._start

    def read(self, count: int | None = -1) -> bytes:
        wanted = self._size - self._pos if count is None or count < 0 else count
        wanted = min(wanted, self._size - self._pos)
        if wanted <= 0:
            return b""
        if self._descriptor is not None:
            data = os.pread(self._descriptor, wanted, self._start + self._pos)
        else:
            self._source.seek(self._start + self._pos)
            data = self._source.read(wanted)
        if not data:
            raise IntegrityRejected(
                f"the source of {self._key} ended after {self._pos} bytes but {self._size} were "
                "declared; the upload was cut short and nothing was stored"
            )
        self._pos += len(data)
        if self._progress is not None and self._pos - self._reported >= self._step:
            self.report()
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def report(self) -> None:
        """Tell ``progress`` of the bytes read and not yet reported."""
        if self._progress is not None and self._pos > self._reported:
            done, self._reported = self._pos - self._reported, self._pos
            self._progress(done)


class ObjectReader(_SizedReader):
    """Raw, seekable reader over one stored version; errors are ``storage.errors`` classes."""

    def __init__(
        self, store: VersionSource, key: str, full: str, version: str | None, size: int, body: Any
    ) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._full = full
        self._version = version
        self._size = size
        self._body: Any = body
        self._pos = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = self._seek_target(offset, whence)
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        if self._body is None:
            self._body = self._store._body_from(self._key, self._full, self._version, self._pos)
        wanted = min(len(view), self._size - self._pos)
        try:
            chunk = self._body.read(wanted)
        except (BotoCoreError, OSError) as exc:
            self._drop_body()
            raise self._store._translate(exc, "reading", self._key, self._version) from exc
        if not chunk:
            self._drop_body()
            raise StorageUnavailable(
                f"the store ended the stream of {self._key} after {self._pos} of {self._size} "
                "bytes; read it again"
            )
        view[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def _drop_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except (BotoCoreError, OSError):
                pass
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
