"""What an export is made of: the items it copies, the context its tag files are rendered
from, and the result it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody import times
from custody.ledger import checkpoint as notes
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent


@dataclass
class ExportItem:
    """One preserved object in the package."""

    blake3: str
    sha256: str
    sha512: str
    size: int
    file: str
    """Its path in the bag: ``data/<name>``."""
    original_name: str
    camera: str | None
    officer: str | None
    recorded_at: str | None
    ingest_seq: int
    ingested_at: str
    ingested_by: str
    source: dict[str, Any]
    media_kind: str | None
    duration_us: int | None
    packets: str | None = None
    packets_sha256: str | None = None
    contact_sheet: str | None = None
    contact_sheet_error: str | None = None
    recorded_at_source: str | None = None
    """``container`` (the recording's own creation time, from the camera's clock), ``sidecar``
    (a start time in the vendor's metadata file beside it), ``mtime`` (the source file's
    modification time when it was preserved) or None."""
    content_credentials: dict[str, Any] | None = None
    """What its ingest event recorded of its C2PA content credentials (status, signer, claim
    generator, validation errors, hard binding): ``custody.media.credentials``."""
    sidecar_of: str | None = None
    """For a sidecar (custody.evidence.sidecars), the BLAKE3 of the recording it describes."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ExportResult:
    """What ``export_package`` wrote and recorded."""

    directory: str
    incident: str
    package_id: str
    recipient: str
    items: list[ExportItem]
    events: int
    checkpoint: dict[str, Any]
    tagmanifest_sha256: str
    seal_sha256: str = ""
    exported_seqs: list[int] = field(default_factory=list)
    disposed: list[dict[str, Any]] = field(default_factory=list)
    """Objects linked to the incident that were disposed of (not in the package): ``blake3``,
    ``sha256``, ``size``, ``disposed_at``, ``seq`` (the disposal event), ``actor``."""
    prepared_seq: int = -1
    previous_checkpoint: int | None = None
    excluded: list[str] = field(default_factory=list)
    """Objects linked to the incident that the export's selection left out."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "incident": self.incident,
            "package_id": self.package_id,
            "recipient": self.recipient,
            "files": [{"file": i.file, "blake3": i.blake3, "sha256": i.sha256, "size": i.size} for i in self.items],
            "payload_bytes": sum(i.size for i in self.items),
            "events": self.events,
            "checkpoint": self.checkpoint,
            "tagmanifest_sha256": self.tagmanifest_sha256,
            "seal_sha256": self.seal_sha256,
            "exported_seqs": self.exported_seqs,
            "disposed": self.disposed,
            "prepared_seq": self.prepared_seq,
            "previous_checkpoint": self.previous_checkpoint,
            "excluded": self.excluded,
        }


@dataclass
class ExportContext:
    """Everything the tag files are rendered from."""

    workspace: Workspace
    state: dict[str, Any]
    items: list[ExportItem]
    events: list[CustodyEvent]
    checkpoint: notes.Checkpoint
    checkpoint_note: str
    verifier: notes.Verifier
    package_id: str
    recipient: str
    organization: str
    organization_given: bool
    created: datetime
    sheets_tool: str | None
    bag_root: Path
    disposed: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, str] = field(default_factory=dict)
    """Every object linked to the incident: ``included``, ``disposed`` or ``excluded``."""
    prepared_seq: int = -1
    """The ``export-prepared`` event: the checkpoint's last event."""
    previous_size: int | None = None
    """The checkpoint size of the recipient's previous package, if any."""
    signed: list[tuple[int, str, str]] = field(default_factory=list)
    """(seq, actor, time) of each carried event an enrolled person signed."""
    signature_problems: dict[int, str] = field(default_factory=dict)
    """Event -> what is wrong with its signature or signer (as ``verify-package`` will say)."""

    @property
    def incident(self) -> str:
        return str(self.state["incident"])

    @property
    def created_text(self) -> str:
        return times.format_utc(self.created)

    def name_of(self, blake3: str | None) -> str:
        for item in self.items:
            if item.blake3 == blake3:
                return item.file
        return f"object {blake3[:16]}" if blake3 else ""


def human_size(size: int) -> str:
    """``1234567`` -> ``1.2 MB`` (decimal units), small sizes in bytes."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())
