"""Digest manifests written by the previous system: what it declared each file's digest to be.

Two shapes are read, as vendors and stock tools write them:

- checksum lists, the output of ``sha256sum``, ``b3sum`` and ``md5sum``: ``HEX  NAME`` (text
  mode) or ``HEX *NAME`` (binary mode), one file a line. A name holding a backslash, a line feed
  or a carriage return is written escaped (``\\\\``, ``\\n``, ``\\r``) and the line then starts
  with a backslash. The tagged form of ``sha256sum --tag`` (``SHA256 (NAME) = HEX``) is read too.
- a CSV with a header row, one column naming the file and one holding its digest (header names
  chosen with ``columns``; by default the first of the usual names).

A manifest is hostile input. It is read once, bounded (``MAX_BYTES``, ``MAX_ENTRIES``), and
every fault is collected and reported with the file and line number (``BadInput``, exit 2)
before any evidence is read: a malformed line, a digest that is not hex of the algorithm's
length, a path that is absolute or climbs out of the root with ``..``, a path listed twice.
Nothing is ever guessed: 64 hex digits are SHA-256 or BLAKE3, so the algorithm must come from
the caller, the tagged form, the file's name (``SHA256SUMS``, ``*.b3``, ...) or the CSV column's
header; 32 hex digits are MD5.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import blake3

from custody.errors import BadInput

MAX_BYTES = 64 << 20
MAX_ENTRIES = 1_000_000
SHOWN_PROBLEMS = 20
ALGORITHMS = {"sha256": 64, "blake3": 64, "md5": 32}
"""Each algorithm a manifest may declare, with its digest's length in hex digits."""
PATH_HEADERS = ("path", "file", "filename", "file name", "file_name", "name", "relative path")
DIGEST_HEADERS = ("sha256", "sha-256", "blake3", "b3", "md5", "digest", "hash", "checksum")
START_HEADERS = ("recording start", "recorded at", "recorded on", "start time", "started at", "start")
"""An optional CSV column: when the recording started, as the previous system declared it
(recorded as the recording's start when the file carries no creation time of its own)."""
MAX_START = 64

_HEX = re.compile(r"[0-9a-fA-F]+")
_DRIVE = re.compile(r"[A-Za-z]:")
_TAGGED = re.compile(r"(?P<tag>SHA256|BLAKE3|MD5) \((?P<name>.*)\) = (?P<hex>[0-9a-fA-F]*)")
_TAGS = {"SHA256": "sha256", "BLAKE3": "blake3", "MD5": "md5"}


@dataclass(frozen=True)
class Declared:
    """One file the manifest declares: its path (relative to the root, POSIX, normalised),
    the digest (lowercase hex) and the line it was read from."""

    path: str
    value: str
    line: int
    started: str | None = None
    """The recording's start the manifest declares (a CSV's start column), as written."""


@dataclass
class Manifest:
    """A parsed manifest and the digests of its own bytes (the ones that were parsed)."""

    path: str
    """Absolute path of the manifest file."""
    root: str
    """Absolute directory the listed paths are relative to."""
    format: str
    """``sha256sum``, ``b3sum``, ``md5sum`` or ``csv``."""
    algorithm: str
    sha256: str
    blake3: str
    size: int
    entries: dict[str, Declared] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def source(self) -> dict[str, object]:
        """How an event names this manifest: its name, digests and format."""
        return {"name": self.name, "sha256": self.sha256, "blake3": self.blake3, "format": self.format}


def hint_from_name(text: str) -> str | None:
    """The algorithm a file name or column header names (``SHA256SUMS``, ``clips.b3``,
    ``MD5 Hash``), or None."""
    lowered = text.lower().replace("-", "").replace("_", "")
    if "sha256" in lowered:
        return "sha256"
    if "blake3" in lowered or lowered.endswith(".b3") or "b3sum" in lowered or lowered == "b3":
        return "blake3"
    if "md5" in lowered:
        return "md5"
    return None


def _algorithm_for(hexlen: int, hint: str | None, where: str) -> str:
    if hint is not None:
        return hint
    if hexlen == 32:
        return "md5"
    if hexlen == 64:
        raise BadInput(
            f"{where}: its digests have 64 hex digits, which may be SHA-256 or BLAKE3; "
            "say which with --expect-algorithm sha256 (or blake3)"
        )
    raise BadInput(
        f"{where}: its digests have {hexlen} hex digits, which is none of SHA-256, BLAKE3 (64) or MD5 (32); "
        "give --expect-algorithm if the manifest is one of those"
    )


def clean_path(raw: str) -> str | None:
    """``raw`` as a normalised relative POSIX path, or None if it is empty, absolute, holds
    a NUL, or has a ``..`` component (it could name something outside the root)."""
    if not raw or "\x00" in raw or raw.startswith("/"):
        return None
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return posixpath.join(*parts)


def _unescape(name: str) -> str | None:
    """Undo the escaping of ``sha256sum``/``b3sum`` (``\\\\``, ``\\n``, ``\\r``); None if
    another escape appears."""
    out: list[str] = []
    chars = iter(name)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        if following == "\\":
            out.append("\\")
        elif following == "n":
            out.append("\n")
        elif following == "r":
            out.append("\r")
        else:
            return None
    return "".join(out)


class _Collector:
    """Entries and problems, as a manifest is read."""

    def __init__(self, shown: str, windows_paths: bool = False) -> None:
        self.shown = shown
        self.windows_paths = windows_paths
        self.entries: dict[str, Declared] = {}
        self.problems: list[tuple[int, str]] = []
        """(line number, what is wrong); line 0 for the manifest as a whole."""
        self.lengths: set[int] = set()

    def problem(self, line: int, what: str) -> None:
        self.problems.append((line, what))

    def add(self, line: int, raw_path: str, digest: str, started: str | None = None) -> None:
        shown_path = raw_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if self.windows_paths:
            rooted = _DRIVE.match(raw_path) is not None or raw_path.startswith(("\\", "//"))
            raw_path = "/" if rooted else raw_path.replace("\\", "/")
        path = clean_path(raw_path)
        if not _HEX.fullmatch(digest):
            self.problem(line, f"the digest {digest[:80]!r} is not hexadecimal")
            return
        if path is None:
            self.problem(line, f"the path {shown_path[:200]!r} is empty, absolute or climbs out of the root with '..'")
            return
        if path in self.entries:
            self.problem(line, f"{shown_path[:200]!r} is listed a second time (first on line {self.entries[path].line})")
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.problem(line, f"more than {MAX_ENTRIES} entries")
            return
        self.lengths.add(len(digest))
        self.entries[path] = Declared(path, digest.lower(), line, started.strip()[:MAX_START] if started and started.strip() else None)

    def finish(self, algorithm: str) -> dict[str, Declared]:
        want = ALGORITHMS[algorithm]
        for entry in self.entries.values():
            if len(entry.value) != want:
                self.problem(entry.line, f"the digest has {len(entry.value)} hex digits; {algorithm.upper()} has {want}")
        if not self.entries and not self.problems:
            self.problems.append((0, "no entries"))
        if self.problems:
            shown = [f"line {line}: {what}" if line else what for line, what in sorted(self.problems)[:SHOWN_PROBLEMS]]
            more = len(self.problems) - SHOWN_PROBLEMS
            listed = "\n  ".join(shown) + (f"\n  ... and {more} more" if more > 0 else "")
            raise BadInput(
                f"{self.shown}: not a usable manifest, nothing was ingested:\n  {listed}\n"
                "Fix or replace the manifest (or ingest without --expect)"
            )
        return self.entries


def _parse_sums(text: str, found: _Collector) -> set[str]:
    """Read a checksum list into ``found``; the algorithms its tagged lines name."""
    tags: set[str] = set()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    crlf = bool(lines) and all(line.endswith("\r") for line in lines if line)
    for number, line in enumerate(lines, 1):
        if crlf:
            line = line[:-1] if line.endswith("\r") else line
        if not line:
            continue
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        tagged = _TAGGED.fullmatch(body)
        if tagged is not None:
            tags.add(_TAGS[tagged["tag"]])
            digest, name = tagged["hex"], tagged["name"]
        else:
            digest, sep, rest = body.partition(" ")
            if not sep or not rest or rest[0] not in " *":
                found.problem(number, "is not 'DIGEST  NAME', 'DIGEST *NAME' or 'ALGO (NAME) = DIGEST'")
                continue
            name = rest[1:]
        if escaped:
            unescaped = _unescape(name)
            if unescaped is None:
                found.problem(number, "has an escape other than \\\\, \\n or \\r in its name")
                continue
            name = unescaped
        found.add(number, name, digest)
    return tags


def _column(headers: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, shown: str) -> int:
    folded = [h.strip().lower() for h in headers]
    if wanted is not None:
        if wanted.strip().lower() in folded:
            return folded.index(wanted.strip().lower())
        raise BadInput(f"{shown}: no column {wanted!r} for the {what}; its header is {', '.join(map(repr, headers))}")
    for name in defaults:
        if name in folded:
            return folded.index(name)
    raise BadInput(
        f"{shown}: no column for the {what} among {', '.join(map(repr, headers))}; "
        f"name it with --expect-columns {what}=HEADER"
    )


def _parse_csv(text: str, found: _Collector, columns: Mapping[str, str]) -> str:
    """Read a CSV into ``found``; the digest column's header."""
    first = text.split("\n", 1)[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    try:
        headers = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise BadInput(f"{found.shown}: line 1: no CSV header row ({exc or 'empty'})") from None
    path_at = _column(headers, columns.get("path"), PATH_HEADERS, "path", found.shown)
    digest_at = _column(headers, columns.get("digest"), DIGEST_HEADERS, "digest", found.shown)
    folded = [h.strip().lower() for h in headers]
    start_at = next((folded.index(n) for n in START_HEADERS if n in folded), None)
    if columns.get("start") is not None:
        start_at = _column(headers, columns.get("start"), START_HEADERS, "start", found.shown)
    width = len(headers)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            found.problem(line, f"is not valid CSV ({exc})")
            break
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != width:
            found.problem(line, f"has {len(row)} fields; the header has {width}")
            continue
        found.add(line, row[path_at], row[digest_at].strip(), row[start_at] if start_at is not None else None)
    return headers[digest_at]


def read_manifest(
    path: str,
    *,
    root: str | None = None,
    algorithm: str | None = None,
    columns: Mapping[str, str] | None = None,
    csv_format: bool | None = None,
    windows_paths: bool = False,
) -> Manifest:
    """Read and check the manifest at ``path``. ``root`` (default: the manifest's directory) is
    what its paths are relative to; ``algorithm`` overrides any inference; ``columns`` (keys
    ``path`` and ``digest``) names the CSV headers; ``csv_format`` forces the CSV reading (by
    default: a ``.csv``/``.tsv`` name, or ``columns`` given); with ``windows_paths`` a ``\\``
    in a path separates folders, as in Windows exports (a drive letter or a UNC path is
    absolute, so refused). ``BadInput`` names every fault."""
    shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise BadInput(f"--expect-algorithm {algorithm!r}: give one of {', '.join(ALGORITHMS)}")
    from custody.evidence.hashing import SpecialFile, open_for_reading

    try:
        fd, st = open_for_reading(path)
    except SpecialFile as exc:
        raise BadInput(f"--expect {exc}") from None
    except OSError as exc:
        raise BadInput(f"--expect {shown}: cannot read the manifest: {exc.strerror}") from None
    try:
        if st.st_size > MAX_BYTES:
            raise BadInput(f"--expect {shown}: {st.st_size} bytes; a manifest may hold at most {MAX_BYTES} bytes")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise BadInput(f"--expect {shown}: grew past {MAX_BYTES} bytes while it was read")
    if b"\x00" in data:
        raise BadInput(f"--expect {shown}: holds NUL bytes; it is not a text manifest")
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    is_csv = csv_format if csv_format is not None else bool(columns) or path.lower().endswith((".csv", ".tsv"))
    found = _Collector(shown, windows_paths)
    if is_csv:
        header = _parse_csv(text, found, columns or {})
        hint = algorithm or hint_from_name(header)
        kind = "csv"
    else:
        tags = _parse_sums(text, found)
        if len(tags) > 1:
            raise BadInput(f"--expect {shown}: mixes algorithms ({', '.join(sorted(tags))}); give one manifest per algorithm")
        hint = algorithm or (next(iter(tags)) if tags else None) or hint_from_name(os.path.basename(path))
        kind = ""
    lengths = found.lengths or {0}
    chosen = _algorithm_for(max(lengths), hint, f"--expect {shown}") if found.entries else (hint or "sha256")
    entries = found.finish(chosen)
    kind = kind or {"sha256": "sha256sum", "blake3": "b3sum", "md5": "md5sum"}[chosen]
    return Manifest(
        path=os.path.abspath(path),
        root=os.path.abspath(root if root is not None else os.path.dirname(os.path.abspath(path))),
        format=kind,
        algorithm=chosen,
        sha256=hashlib.sha256(data).hexdigest(),
        blake3=blake3.blake3(data).hexdigest(),
        size=len(data),
        entries=entries,
    )


def parse_columns(text: str | None) -> dict[str, str]:
    """``path=File,digest=SHA256`` -> ``{"path": "File", "digest": "SHA256"}`` (BadInput
    for anything else); ``start=HEADER`` names the column of the recordings' start times."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("path", "digest", "start") or not value.strip():
            raise BadInput(f"--expect-columns {text!r}: give path=HEADER,digest=HEADER[,start=HEADER]")
        out[key] = value.strip()
    return out
