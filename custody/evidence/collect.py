"""What an ingest will read (the files and directories given, expanded and classified), and
what it reports for each (``IngestResult``).

Only regular files become ``Candidate``s; FIFOs, sockets, devices, broken or looping links,
links to directories and files given twice are reported as skipped results, in the order the
inputs were given and walked (directories recursively, in name order).
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from custody.ledger.canonical import printable_path

Status = Literal["recorded", "already-stored", "skipped", "failed", "absent"]


@dataclass
class IngestResult:
    path: str
    status: Status
    blake3: str | None = None
    sha256: str | None = None
    size: int | None = None
    reason: str | None = None
    warning: str | None = None
    seq: int | None = None
    store_key: str | None = None
    declared: dict[str, Any] | None = None
    """What a manifest (``--expect``) declared of the file, and the comparison (custody.evidence.expected)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k in ("blake3", "sha256", "size")}


@dataclass
class Candidate:
    path: str
    stat: os.stat_result


@dataclass
class IngestPlan:
    """What an ingest will do, in the order the inputs were given and walked."""

    items: list[Candidate | IngestResult] = field(default_factory=list)

    @property
    def files(self) -> list[Candidate]:
        return [item for item in self.items if isinstance(item, Candidate)]

    @property
    def rejected(self) -> list[IngestResult]:
        return [item for item in self.items if isinstance(item, IngestResult)]

    @property
    def total_bytes(self) -> int:
        return sum(c.stat.st_size for c in self.files)


@dataclass
class Inspection:
    """What an inspector learned about a file at ingest: ``details`` go into the ingest event
    (under ``media``); each attachment (kind -> bytes, e.g. ``packets``) is stored as a retained
    object ``<kind>/<blake3>`` and its key, SHA-256 and size recorded in the event; ``event``
    holds keys added to the event's details beside ``media`` (``recorded``,
    ``content_credentials``)."""

    details: dict[str, Any]
    attachments: dict[str, bytes] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)


Inspector = Callable[[str], Inspection]


_KINDS = (
    (stat_mod.S_ISFIFO, "a FIFO (named pipe)"),
    (stat_mod.S_ISSOCK, "a socket"),
    (stat_mod.S_ISCHR, "a character device"),
    (stat_mod.S_ISBLK, "a block device"),
)


def _not_regular(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _skip(path: str, reason: str) -> IngestResult:
    return IngestResult(printable_path(path), "skipped", reason=reason)


def _classify(path: str, plan: IngestPlan, seen: dict[tuple[int, int], str]) -> os.stat_result | None:
    """Stat ``path`` (following links) and add it to the plan if it is a regular file. Returns
    the stat of a directory so the caller can walk it, else None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            plan.items.append(_skip(path, f"broken symbolic link to {os.readlink(path)!r}"))
        else:
            plan.items.append(_skip(path, "no such file or directory"))
        return None
    except OSError as exc:
        if exc.errno == 40:
            plan.items.append(_skip(path, "symbolic link loop"))
        else:
            plan.items.append(_skip(path, f"cannot stat: {exc.strerror}"))
        return None
    if stat_mod.S_ISDIR(st.st_mode):
        return st
    if not stat_mod.S_ISREG(st.st_mode):
        plan.items.append(_skip(path, f"{_not_regular(st.st_mode)}; only regular files are read"))
        return None
    identity = (st.st_dev, st.st_ino)
    if identity in seen:
        plan.items.append(
            _skip(path, f"same file as {printable_path(seen[identity])}, given earlier in this command")
        )
        return None
    seen[identity] = path
    plan.items.append(Candidate(path, st))
    return None


def collect(paths: Iterable[str]) -> IngestPlan:
    """Expand files and directories (recursively, in name order) into what will be read."""
    plan = IngestPlan()
    seen: dict[tuple[int, int], str] = {}
    for given in paths:
        if _classify(given, plan, seen) is None:
            continue
        before = len(plan.items)
        errors: list[OSError] = []
        for directory, dirnames, filenames in os.walk(given, onerror=errors.append):
            followable = []
            for name in sorted(dirnames):
                full = os.path.join(directory, name)
                if os.path.islink(full):
                    plan.items.append(_skip(full, "symbolic link to a directory (not followed)"))
                else:
                    followable.append(name)
            dirnames[:] = followable
            for name in sorted(filenames):
                _classify(os.path.join(directory, name), plan, seen)
        for error in errors:
            plan.items.append(_skip(error.filename or given, f"cannot read directory: {error.strerror}"))
        if not any(isinstance(item, Candidate) for item in plan.items[before:]) and not errors:
            plan.items.append(_skip(given, "directory contains no files"))
    return plan
