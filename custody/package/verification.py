"""The state of one package verification: the report it builds and the findings it collects
(each naming the file it is about), shared by the verification steps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import TOOL
from custody.errors import Finding, FindingKind
from custody.ledger import checkpoint as notes
from custody.package.layout import EVENTS
from custody.package.reading import MAX_TEXT, Entry, PackageFiles, UnsafeEntry


@dataclass
class Check:
    """One step of the verification and what it found."""

    name: str
    detail: str = ""
    findings: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.findings == 0, "detail": self.detail, "findings": self.findings}


@dataclass
class PackageReport:
    """What ``verify_package`` checked and found. ``ok`` only when there is no finding."""

    path: str
    incident: str | None = None
    package_id: str | None = None
    payload_files: int = 0
    payload_bytes: int = 0
    tag_files: int = 0
    events: int = 0
    proved_events: int = 0
    checkpoint: dict[str, Any] | None = None
    key: str | None = None
    key_trusted: bool = False
    tagmanifest_sha256: str | None = None
    sealed: bool = False
    """The seal's signature verified and every file is the one it lists."""
    complete: bool = False
    """The package holds everything its export-prepared event lists."""
    excluded: list[str] = field(default_factory=list)
    """Objects linked to the incident that the sender's selection left out (BLAKE3)."""
    previous: dict[str, Any] | None = None
    """With ``--previous``: the earlier package's checkpoint and whether this one extends it."""
    is_package: bool = True
    """False when the directory holds none of a package's files."""
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tool: str = TOOL
    anchors: dict[str, Any] = field(default_factory=dict)
    actors: dict[str, Any] = field(default_factory=dict)
    """Who signed the carried events, who did not, and the enrolled people."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": self.path,
            "incident": self.incident,
            "package_id": self.package_id,
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "tag_files": self.tag_files,
            "events": self.events,
            "proved_events": self.proved_events,
            "checkpoint": self.checkpoint,
            "key": self.key,
            "key_trusted": self.key_trusted,
            "tagmanifest_sha256": self.tagmanifest_sha256,
            "sealed": self.sealed,
            "complete": self.complete,
            "excluded": self.excluded,
            "previous": self.previous,
            "is_package": self.is_package,
            "checks": [c.as_dict() for c in self.checks],
            "findings": [f.as_dict() for f in self.findings],
            "tool": self.tool,
            "anchors": self.anchors,
            "actors": self.actors,
        }


@dataclass
class VerifiedEvent:
    line: int
    record: dict[str, Any]
    proved: bool = False
    body_ok: bool = False
    """Its ``leaf`` is canonical JSON of an event with its ``seq``."""

    @property
    def where(self) -> str:
        return f"{EVENTS}:{self.line} (event {self.record.get('seq')})"


class Verification:
    """The state of one verification: the report, and what the later steps need."""

    def __init__(self, root: Path, files: PackageFiles, trusted: notes.Verifier | None) -> None:
        self.root = root
        self.files = files
        self.trusted = trusted
        self.report = PackageReport(str(root))
        self.entries: dict[str, Entry] = {}
        self.payload: dict[str, tuple[dict[str, str], int]] = {}
        self.unreadable: set[str] = set()
        self.key: notes.Verifier | None = None
        self.checkpoint: notes.Checkpoint | None = None
        self.checkpoint_text: str | None = None
        self.events: dict[int, VerifiedEvent] = {}
        self.items: list[dict[str, Any]] = []
        self._check: Check | None = None

    def begin(self, name: str) -> Check:
        self._check = Check(name)
        self.report.checks.append(self._check)
        return self._check

    def finding(self, kind: FindingKind, subject: str, message: str, algorithm: str | None = None,
                expected: str | None = None, found: str | None = None, **extra: Any) -> None:
        self.report.findings.append(Finding(kind, subject, message, algorithm, expected, found, dict(extra)))
        if self._check is not None:
            self._check.findings += 1

    def has_finding(self, subject: str) -> bool:
        return any(f.subject == subject for f in self.report.findings)

    def read_bytes(self, name: str, *, required: bool = True, limit: int = MAX_TEXT) -> bytes | None:
        """A file's bytes, or None after a finding (missing, a link or special file, too
        large, unreadable). A file already reported is not reported again."""
        try:
            return self.files.read(name, limit)
        except FileNotFoundError:
            if required and not self.has_finding(name):
                self.finding(FindingKind.MISSING, name, "required file is missing from the package")
        except UnsafeEntry as exc:
            if not self.has_finding(name):
                self.finding(FindingKind.UNSAFE, name, exc.reason)
        except OSError as exc:
            if not self.has_finding(name):
                self.finding(FindingKind.UNREADABLE, name, f"cannot be read: {exc.strerror or exc}")
        return None

    def read_text(self, name: str, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
        """A tag file's UTF-8 text, or None after a finding."""
        data = self.read_bytes(name, required=required, limit=limit)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.finding(FindingKind.MALFORMED, name, "is not UTF-8 text")
            return None

    def read_json(self, name: str, *, required: bool = True) -> Any:
        """A tag file's JSON value, or None after a finding (including nesting too deep for
        the parser and duplicate object keys, which make a value ambiguous)."""
        text = self.read_text(name, required=required)
        if text is None:
            return None
        try:
            return json.loads(text, object_pairs_hook=unique_keys)
        except (ValueError, RecursionError) as exc:
            self.finding(FindingKind.MALFORMED, name, f"is not JSON ({_short(exc)})")
            return None


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object from its pairs; ``ValueError`` if a key appears twice."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ValueError(f"the key {key!r} appears twice")
        value[key] = item
    return value


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
