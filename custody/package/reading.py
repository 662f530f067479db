"""Reading a package received from outside, which is hostile until checked.

Everything is read relative to the package's directory, one path component at a time with
``O_NOFOLLOW``: no symbolic link is followed (a link is reported, never opened), nothing
outside the package is reached, and only regular files are opened (a FIFO, a device or a
socket is reported from its ``lstat``, never opened, so it cannot block or feed endless bytes).
Every read is bounded: a file's size, a directory tree's depth and its number of entries.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

MAX_TEXT: Final = 64 << 20
"""The largest tag file read into memory (packet lists of long recordings are the biggest)."""
MAX_ENTRIES: Final = 100_000
MAX_DEPTH: Final = 16
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


class UnsafeEntry(OSError):
    """A path inside the package that is not read: a link, a special file, outside the
    package, too large, or too deep. ``reason`` says which, for a finding."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    """One thing found in the package: ``kind`` is ``file``, ``link`` or ``special``."""

    name: str
    kind: str
    size: int


def _parts(name: str) -> list[str]:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        raise UnsafeEntry(name, "is not a path inside the package")
    return parts


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link (links are never followed)"
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file (never opened)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file (never opened)"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file (never opened)"
    return "not a regular file"


class PackageFiles:
    """The files of one package directory, read without leaving it."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> PackageFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _parent(self, parts: list[str], name: str) -> int:
        fd = os.dup(self._fd)
        try:
            for part in parts[:-1]:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise UnsafeEntry(name, f"its folder {part!r} is {_describe(st.st_mode)}")
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open(self, name: str) -> io.BufferedReader:
        """The regular file ``name`` (relative, ``/``-separated) opened for reading.
        ``FileNotFoundError`` if absent; ``UnsafeEntry`` for anything that is not a regular
        file reached without links."""
        parts = _parts(name)
        parent = self._parent(parts, name)
        try:
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeEntry(name, f"is {_describe(st.st_mode)}")
            try:
                fd = os.open(parts[-1], _OPEN_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno == 40:  # ELOOP: replaced by a link after the lstat
                    raise UnsafeEntry(name, _describe(stat.S_IFLNK)) from exc
                raise
        finally:
            os.close(parent)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeEntry(name, "changed into something other than a regular file while it was read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def read(self, name: str, limit: int = MAX_TEXT) -> bytes:
        """The whole of a regular file of at most ``limit`` bytes."""
        with self.open(name) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise UnsafeEntry(name, f"is larger than {limit} bytes, more than such a file can need")
        return data

    def lstat(self, name: str) -> os.stat_result | None:
        """``lstat`` of ``name`` (None if absent), reached without links."""
        parts = _parts(name)
        try:
            parent = self._parent(parts, name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            os.close(parent)

    def walk(self, top: str = "") -> Iterator[Entry]:
        """Every non-directory under ``top`` ("" for the whole package), sorted by name; links
        and special files are listed as such, never followed or opened. ``UnsafeEntry`` beyond
        ``MAX_ENTRIES`` entries or ``MAX_DEPTH`` levels."""
        found: list[Entry] = []
        fd = self._parent(_parts(top) + ["x"], top) if top else os.dup(self._fd)
        self._walk(fd, top, 0, found)
        return iter(sorted(found, key=lambda e: e.name))

    def _walk(self, fd: int, prefix: str, depth: int, found: list[Entry]) -> None:
        try:
            if depth > MAX_DEPTH:
                raise UnsafeEntry(prefix, f"nests folders more than {MAX_DEPTH} deep")
            with os.scandir(fd) as entries:
                listing = sorted((e.name, e.stat(follow_symlinks=False)) for e in entries)
            for name, st in listing:
                path = f"{prefix}/{name}" if prefix else name
                if len(found) >= MAX_ENTRIES:
                    raise UnsafeEntry(path, f"the package holds more than {MAX_ENTRIES} entries")
                if stat.S_ISDIR(st.st_mode):
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    self._walk(child, path, depth + 1, found)
                elif stat.S_ISREG(st.st_mode):
                    found.append(Entry(path, "file", st.st_size))
                elif stat.S_ISLNK(st.st_mode):
                    found.append(Entry(path, "link", 0))
                else:
                    found.append(Entry(path, "special", 0))
        finally:
            os.close(fd)
