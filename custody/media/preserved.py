"""Media operations on preserved objects of a workspace (``custody.home.Workspace``): the
recorded packet list, checking a clip against it, a contact sheet of the stored bytes. Each
operation that looks at evidence is recorded in the ledger."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody.errors import BadInput, Finding, FindingKind, IntegrityFailure
from custody.evidence.references import resolve_preserved
from custody.ledger.canonical import printable_path
from custody.media.clips import ClipReport, verify_clip
from custody.media.listing import packet_hashes
from custody.media.sheets import ContactSheet, _as_file, contact_sheet
from custody.media.tools import DEFAULT_TOOLS, MediaTools, MediaUnreadable
from custody.workspace import Workspace
from storage.base import LocalPaths, ObjectStore
from storage.errors import ObjectNotFound, StorageError

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent, Ledger

@contextmanager
def stored_file(store: ObjectStore, key: str, version: str | None = None) -> Iterator[str]:
    """A local path holding a stored object's exact bytes: the local store's own file, else a
    temporary copy (removed afterwards). ffmpeg needs a seekable file."""
    if isinstance(store, LocalPaths):
        yield os.fspath(store.local_path(key, version))
        return
    with store.open(key, version) as stream, _as_file(stream) as path:
        yield path


def ingest_event(ledger: Ledger, row: Mapping[str, Any]) -> CustodyEvent:
    """The ``ingested`` event that first recorded an evidence row."""
    return next(ledger.events(evidence=row["blake3"], start=row["first_seq"]))


def recorded_packet_list(workspace: Workspace, ref: str, tools: MediaTools = DEFAULT_TOOLS) -> tuple[str, bytes, str]:
    """(BLAKE3, packet list, where it came from) for a preserved object: the list stored at
    ingest, checked against the SHA-256 recorded in the ingest event (``IntegrityFailure`` if
    it is missing or altered), or, when none was recorded, one made now from the stored bytes."""
    preserved = resolve_preserved(workspace.ledger, ref)
    blake3, row = preserved.blake3, preserved.row
    event = ingest_event(workspace.ledger, row)
    attachment = (event.details.get("attachments") or {}).get("packets")
    if attachment is None:
        with stored_file(workspace.store, row["store_key"], row["version"]) as path:
            data = packet_hashes(path, tools)
        return blake3, data, "made now from the stored original (none was recorded at ingest)"
    key = attachment["key"]
    try:
        with workspace.store.open(key) as stream:
            data = stream.read()
    except ObjectNotFound as exc:
        raise IntegrityFailure([Finding(FindingKind.MISSING, key, f"the packet list recorded in event {event.seq} is missing")]) from exc
    except (OSError, StorageError) as exc:
        raise IntegrityFailure([Finding(FindingKind.UNREADABLE, key, f"the packet list could not be read: {exc}")]) from exc
    found = hashlib.sha256(data).hexdigest()
    if found != attachment["sha256"]:
        raise IntegrityFailure([Finding(
            FindingKind.MISMATCH, key, f"the stored packet list no longer has the SHA-256 recorded in event {event.seq}",
            "sha256", attachment["sha256"], found,
        )])
    return blake3, data, f"{key} (SHA-256 checked against event {event.seq})"


def verify_clip_against(workspace: Workspace, clip: str, ref: str, tools: MediaTools = DEFAULT_TOOLS) -> ClipReport:
    """``verify_clip`` of a file against a preserved object's packet list, recorded as a
    ``verified`` event about the original (with the clip's digests, the outcome and the range)."""
    from custody.evidence.hashing import hash_file

    if not os.path.isfile(clip):
        raise BadInput(f"{printable_path(clip)}: no such file")
    blake3, original, source = recorded_packet_list(workspace, ref, tools)
    report = verify_clip(clip, original, tools)
    report.original = blake3
    report.packet_list_source = source
    try:
        digests = hash_file(clip)
    except OSError as exc:
        raise BadInput(f"{printable_path(clip)}: cannot read: {exc.strerror}") from exc
    details = {
        "what": "clip",
        "ok": report.derived,
        "clip": {"name": printable_path(os.path.basename(clip)), "blake3": digests.blake3,
                 "sha256": digests.sha256, "size": digests.size},
        "range": report.as_dict()["range"],
        "findings": [f.as_dict() for f in report.findings],
    }
    workspace.ledger.append(
        "verified", actor=workspace.settings.actor, role=workspace.settings.role,
        subject={"evidence": blake3}, details=details,
    )
    workspace.seal()
    return report


def sheet_of(workspace: Workspace, ref: str, out_png: str, *, tiles: int = 12, columns: int = 4, width: int = 320,
             tools: MediaTools = DEFAULT_TOOLS) -> ContactSheet:
    """A contact sheet of a preserved video (from the stored bytes), recorded as ``viewed``."""
    preserved = resolve_preserved(workspace.ledger, ref)
    blake3, row = preserved.blake3, preserved.row
    with stored_file(workspace.store, row["store_key"], row["version"]) as path:
        try:
            sheet = contact_sheet(path, out_png, tiles=tiles, columns=columns, width=width,
                                  title=f"BLAKE3 {blake3}", tools=tools)
        except MediaUnreadable as exc:
            raise MediaUnreadable(f"preserved object {blake3}", exc.detail.replace(os.path.basename(path), blake3[:16])) from exc
    png = Path(out_png).read_bytes()
    workspace.ledger.append(
        "viewed", actor=workspace.settings.actor, role=workspace.settings.role, subject={"evidence": blake3},
        details={"what": "contact-sheet", "tiles": len(sheet.times_us),
                 "output": {"name": printable_path(os.path.basename(out_png)),
                            "sha256": hashlib.sha256(png).hexdigest(), "size": len(png)}},
    )
    workspace.seal()
    return sheet
