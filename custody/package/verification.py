"""The state of one package verification: the report it builds and the findings it collects
(each naming the file it is about), shared by the verification steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import TOOL
from custody.errors import Finding
from custody.ledger import checkpoint as notes
from custody.package.layout import EVENTS


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
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    tool: str = TOOL
    anchors: dict[str, Any] = field(default_factory=dict)

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
            "checks": [c.as_dict() for c in self.checks],
            "findings": [f.as_dict() for f in self.findings],
            "tool": self.tool,
            "anchors": self.anchors,
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

    def __init__(self, root: Path, trusted: notes.Verifier | None) -> None:
        self.root = root
        self.trusted = trusted
        self.report = PackageReport(str(root))
        self.payload: dict[str, tuple[dict[str, str], int]] = {}
        self.unreadable: set[str] = set()
        self.key: notes.Verifier | None = None
        self.checkpoint: notes.Checkpoint | None = None
        self.checkpoint_text: str | None = None
        self.events: dict[int, VerifiedEvent] = {}
        self._check: Check | None = None

    def begin(self, name: str) -> Check:
        self._check = Check(name)
        self.report.checks.append(self._check)
        return self._check

    def finding(self, kind: str, subject: str, message: str, algorithm: str | None = None,
                expected: str | None = None, found: str | None = None, **extra: Any) -> None:
        self.report.findings.append(Finding(kind, subject, message, algorithm, expected, found, dict(extra)))
        if self._check is not None:
            self._check.findings += 1

    def read_text(self, name: str, *, required: bool = True) -> str | None:
        """A tag file's text, or None after a finding (missing, unreadable, not UTF-8)."""
        path = self.root / name
        try:
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            if required:
                self.finding("missing", name, "required file is missing from the package")
            return None
        except IsADirectoryError:
            self.finding("malformed", name, "is a directory, not a file")
            return None
        except OSError as exc:
            self.finding("unreadable", name, f"cannot be read: {exc.strerror}")
            return None
        except UnicodeDecodeError:
            self.finding("malformed", name, "is not UTF-8 text")
            return None
