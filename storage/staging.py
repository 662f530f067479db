"""The local store's staging area (``tmp/``): files being written there, each held under an
advisory lock by its writer, and the sweep that removes the files whose writer is gone.

How a live writer's file is told from a dead writer's, without guessing by age:

* A writer creates its file (``O_EXCL``, a fresh random name ``<32 hex>.part`` or ``.meta``)
  while it holds a shared ``flock`` on the ``tmp`` directory, and takes an exclusive ``flock``
  on the new file before it lets the directory go. It keeps that lock (the descriptor stays
  open) until the file is committed (linked under its key, then unlinked) or discarded.
* The sweep takes the directory's lock exclusively, so that no file can be between its creation
  and its lock, then tries each file's lock without waiting. The kernel releases a ``flock``
  when the last descriptor of its holder closes, which happens when a process dies, SIGKILL
  included: a file whose lock the sweep gets has no writer left, and is removed; a file whose
  lock is held belongs to a live writer and is left alone.

``flock`` locks belong to an open file description, so they exclude each other between
processes and between two opens in one process alike. They are advisory: only this program's
writers and sweeps honour them. A leftover may be a hard link to a stored object (its writer
died between linking it under its key and unlinking the staging name); removing the staging
name leaves the object as it is.

Each process also keeps a list of the staging files it holds (``discard_held``), so that a
command that ends on an interrupt (Ctrl-C, SIGTERM) removes what it was still writing.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.errors import IntegrityRejected, StorageUnavailable

NAME = re.compile(r"[0-9a-f]{32}\.(part|meta)")
SWEEP_WAIT = 5.0  # seconds the sweep waits for writers that are creating a file right now

_log = logging.getLogger("custody.storage")
_held: dict[int, HeldFile] = {}
_held_guard = threading.Lock()


class HeldFile:
    """A staging file and the open descriptor that holds its lock; ``release`` (idempotent)
    closes it, and with ``remove`` the file is unlinked first."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        with _held_guard:
            _held[id(self)] = self

    def release(self, remove: bool = True) -> None:
        with _held_guard:
            mine = _held.pop(id(self), None) is not None
        if not mine:
            return
        try:
            if remove:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = -1


def discard_held() -> int:
    """Remove every staging file this process still holds (at the end of an interrupted
    command); the number removed."""
    with _held_guard:
        held = list(_held.values())
    removed = 0
    for item in held:
        try:
            exists = item.path.exists()
            item.release()
            removed += exists
        except OSError:
            continue
    return removed


def _directory_lock(directory: Path, operation: int) -> int:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, operation)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create(directory: Path, suffix: str, flags: int = 0) -> HeldFile:
    """A new, empty staging file in ``directory`` named ``<32 hex><suffix>``, opened for
    writing with ``flags`` added, and locked by the returned ``HeldFile``. ``OSError`` if it
    cannot be made (``EINVAL`` from a filesystem that refuses a flag, e.g. ``O_DIRECT``)."""
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    guard = _directory_lock(directory, fcntl.LOCK_SH)
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                path.unlink(missing_ok=True)  # some filesystems create the file, then refuse a flag
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
    finally:
        os.close(guard)
    return HeldFile(path, fd)


@dataclass(frozen=True)
class Leftover:
    """Something a dead writer left: a staging file (``kind`` "file"), or on S3 an unfinished
    multipart upload ("upload"); what it was, and whether the sweep removed it."""

    path: str
    size: int
    linked: bool  # also a name of a stored object (its writer died while committing it)
    removed: bool
    error: str | None = None
    kind: str = "file"

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"path": self.path, "size": self.size, "linked": self.linked,
                                    "removed": self.removed}
        if self.error:
            found["error"] = self.error
        return found


def _wait_for_directory(directory: Path) -> int | None:
    deadline = time.monotonic() + SWEEP_WAIT
    while True:
        try:
            return _directory_lock(directory, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)


def sweep(directory: Path, remove: bool = True) -> list[Leftover]:
    """The staging files in ``directory`` whose writer is gone, removed unless ``remove`` is
    False; files of live writers and files not named as this program names its staging files
    are left alone. Nothing is found when the directory is missing, or when it stays busy with
    files being created for longer than ``SWEEP_WAIT`` seconds (a later sweep finds them)."""
    try:
        guard = _wait_for_directory(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageUnavailable(f"cannot read the staging area {directory}: {exc.strerror}") from exc
    if guard is None:
        _log.warning("the staging area %s stayed busy for %s s; its leftovers were not checked", directory, SWEEP_WAIT)
        return []
    try:
        found: list[Leftover] = []
        for name in sorted(os.listdir(directory)):
            if NAME.fullmatch(name):
                leftover = _dead(directory / name, remove)
                if leftover is not None:
                    found.append(leftover)
        return found
    finally:
        os.close(guard)


def _dead(path: Path, remove: bool) -> Leftover | None:
    """``path`` as a leftover if no writer holds its lock (removed if ``remove``), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # its writer committed or discarded it meanwhile
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None  # a symbolic link: never one of ours
        return Leftover(str(path), 0, False, False, f"cannot open it to check its lock: {exc.strerror}")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live writer holds it
        held = os.fstat(fd)
        try:
            named = os.lstat(path)
        except FileNotFoundError:
            return None
        if (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            return None
        linked = held.st_nlink > 1
        if not remove:
            return Leftover(str(path), held.st_size, linked, False)
        try:
            path.unlink()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return Leftover(str(path), held.st_size, linked, False, f"cannot remove it: {exc.strerror}")
        return Leftover(str(path), held.st_size, linked, True)
    finally:
        os.close(fd)


DIRECT_ALIGN = 4096  # O_DIRECT wants block-aligned lengths and offsets; 4 KiB covers common disks


@dataclass(frozen=True)
class StagedCopy:
    """Bytes written and fsynced in the store's staging area, not yet under any key; ``held``
    keeps the file's lock until it is committed or discarded (``release``)."""

    path: Path
    size: int
    held: HeldFile | None = None

    def release(self) -> None:
        """Remove the staging file and let its lock go; idempotent."""
        if self.held is not None:
            self.held.release()
        else:
            self.path.unlink(missing_ok=True)


class StagingFile:
    """A staging file written chunk by chunk, in order (see ``LocalStore.open_staging``).

    Page-aligned chunks go to the disk with ``O_DIRECT`` where the filesystem allows it: the
    bytes are not copied into the page cache, and the disk writes them while the caller is still
    hashing the next chunks, so the final fsync has little left to do. A chunk that is not a whole
    number of blocks (the last one), or a filesystem that refuses direct I/O (tmpfs), uses
    ordinary buffered writes. After a failed write, every later one fails too. The file is
    locked (see the module docstring) from its creation until it is committed or discarded."""

    def __init__(self, held: HeldFile, size: int, direct: bool, root: Path) -> None:
        self.path = held.path
        self.size = size
        self._held = held
        self._fd = held.fd
        self._direct = direct
        self._root = root
        self._written = 0
        self._error: StorageUnavailable | None = None

    @classmethod
    def open(cls, tmp_dir: Path, size: int, root: Path) -> StagingFile:
        direct = getattr(os, "O_DIRECT", 0)
        try:
            try:
                held = create(tmp_dir, ".part", direct)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not direct:
                    raise
                direct = 0
                held = create(tmp_dir, ".part")
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to the local store {root}: {exc.strerror}") from exc
        return cls(held, size, bool(direct), root)

    def write(self, chunk: memoryview) -> None:
        if self._error is not None:
            raise self._error
        try:
            if self._direct and len(chunk) % DIRECT_ALIGN:
                self._buffered()
            try:
                _pwrite_all(self._fd, chunk, self._written)
            except OSError as exc:
                if not (self._direct and exc.errno == errno.EINVAL):
                    raise
                self._buffered()
                _pwrite_all(self._fd, chunk, self._written)
            self._written += len(chunk)
        except OSError as exc:
            self._error = StorageUnavailable(f"writing to the local store {self._root} failed: {exc}")
            raise self._error from exc

    def _buffered(self) -> None:
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~getattr(os, "O_DIRECT", 0))
        self._direct = False

    def finish(self) -> StagedCopy:
        """fsync; the staged copy, still locked, to commit or discard. ``IntegrityRejected`` if
        the bytes written are not ``size`` (the source shrank or grew while it was read)."""
        try:
            if self._error is not None:
                raise self._error
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise StorageUnavailable(f"writing to the local store {self._root} failed: {exc}") from exc
            if self._written != self.size:
                raise IntegrityRejected(
                    f"{self._written} bytes were staged where {self.size} were expected: the source changed"
                )
        except BaseException:
            self.abort()
            raise
        return StagedCopy(self.path, self.size, self._held)

    def abort(self) -> None:
        self._held.release()


def _pwrite_all(fd: int, chunk: memoryview, offset: int) -> None:
    done = 0
    while done < len(chunk):
        try:
            done += os.pwrite(fd, chunk[done:], offset + done)
        except InterruptedError:
            continue
