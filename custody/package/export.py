"""Export an incident's evidence as a prosecutor package: a BagIt 1.0 bag (RFC 8493) that anyone
can verify offline, with stock tools or with ``custody verify-package``.

The layout is defined in ``custody.package.verify`` (the offline verifier reads exactly what
this module writes). In order, ``export_package``:

1. signs a checkpoint of the whole ledger (``seal(force=True)``), so that one checkpoint covers
   every event the package carries;
2. copies each preserved object byte for byte from the store into ``data/`` under a readable
   name (incident, camera, time; ``_2``, ``_3`` ... on collisions), computing SHA-256, SHA-512
   and BLAKE3 in the same read and comparing them with the ledger (an object that no longer
   has its recorded digests stops the export: ``IntegrityFailure``, exit 3, nothing written);
3. writes the tag files: the incident record, the items, the custody events of the exported
   objects and the incident (each with its canonical bytes), one tlog-proof per event, the
   checkpoint, the verifier key, each video's packet list (checked against the SHA-256 its
   ingest event recorded) and contact sheet, ``report.html``, the hash certification draft and
   ``README.txt``; then the manifests, ``bagit.txt``, ``bag-info.txt`` and the tag manifests;
4. builds all of it in a hidden sibling directory and renames it into place, then records one
   ``exported`` event per object (recipient, actor, the tag manifest's SHA-256) and signs a
   checkpoint. If recording fails the package is removed, so none exists unrecorded.

The ``exported`` events come after the checkpoint the package is proved against, so they are
not in the package; a recipient's signed receipt names the tag manifest's SHA-256, which ties
it to them (``custody.package.receipt``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import platform
import re
import shutil
import ssl
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from custody import TOOL
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.package import verify as layout
from custody.errors import BadInput, ConfigError, Finding, IntegrityFailure
from custody.package.verify import PayloadDigests

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


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
    exported_seqs: list[int] = field(default_factory=list)
    disposed: list[dict[str, Any]] = field(default_factory=list)
    """Objects linked to the incident that were disposed of (not in the package): ``blake3``,
    ``sha256``, ``size``, ``disposed_at``, ``seq`` (the disposal event), ``actor``."""

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
            "exported_seqs": self.exported_seqs,
            "disposed": self.disposed,
        }


def _safe(text: str, fallback: str, limit: int = 48) -> str:
    cleaned = _UNSAFE.sub("-", text).strip("-.")[:limit].strip("-.")
    return cleaned or fallback


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def payload_names(items: Sequence[tuple[str, str, str | None, str]]) -> list[str]:
    """Readable, unique payload names for ``(incident, camera, recorded_at, original_name)``,
    in the given order: ``<incident>_<camera>_<YYYYMMDDThhmmssZ><ext>``, only letters, digits,
    ``.``, ``-`` and ``_``; a repeated name gets ``_2``, ``_3`` ... before its extension."""
    names: list[str] = []
    used: set[str] = set()
    for incident, camera, recorded_at, original in items:
        moment = _moment(recorded_at)
        when = moment.strftime("%Y%m%dT%H%M%SZ") if moment else "time-unknown"
        extension = _safe(os.path.splitext(original)[1].lower(), "", 12)
        extension = "." + extension.lstrip(".") if extension.strip(".") else ".bin"
        stem = f"{_safe(incident, 'incident')}_{_safe(camera, 'camera-unknown')}_{when}"
        name, number = stem + extension, 1
        while name.lower() in used:
            number += 1
            name = f"{stem}_{number}{extension}"
        used.add(name.lower())
        names.append(name)
    return names


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Bag:
    """Writes files under a directory, each fsynced, and remembers them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(mode=0o755)

    def write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def text(self, name: str, text: str) -> Path:
        return self.write(name, text.encode("utf-8"))

    def files(self, top: str) -> list[str]:
        return [name for name, _ in layout.walk_files(self.root, top)]

    def sync_directories(self) -> None:
        for directory, _, _ in os.walk(self.root):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def export_package(
    workspace: Any,
    incident_id: str,
    out: Path,
    *,
    refs: Sequence[str] = (),
    recipient: str | None = None,
    organization: str | None = None,
    tools: Any = None,
    contact_sheets: bool = True,
) -> ExportResult:
    """Write the package of ``incident_id`` to the new directory ``out`` and record the export.

    ``refs`` (BLAKE3 prefixes or files) narrow it to some of the incident's linked objects;
    without them every linked object that has not been disposed of is exported. Raises ``BadInput`` (unknown incident, no
    linked evidence, a reference not linked to it, ``out`` exists and is not an empty
    directory), ``IntegrityFailure`` (a stored object or packet list no longer matches the
    ledger), ``ConfigError`` (ffmpeg missing for contact sheets; ``contact_sheets=False``
    skips them) and store or ledger errors. Nothing is left behind on failure."""
    from custody.cases.incidents import require_incident
    from custody.media.tools import DEFAULT_TOOLS

    tools = tools or DEFAULT_TOOLS
    ledger = workspace.ledger
    out = Path(os.path.abspath(out))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out: {out} already exists; give a new directory")
    if not out.parent.is_dir():
        raise BadInput(f"--out: the parent directory {out.parent} does not exist")
    state = require_incident(ledger, incident_id)
    blake3s = _selected(workspace, state, refs)
    checkpoint, state, events = _sealed_events(workspace, incident_id, blake3s)
    disposed = _disposed_objects(ledger, state, checkpoint.size)
    verifier: notes.Verifier = workspace.verifier()
    try:
        parsed, _ = notes.open_checkpoint(checkpoint.note, [verifier], origin=verifier.name)
    except notes.TlogError as exc:
        raise ConfigError(f"the verifier key does not verify the ledger's checkpoint ({exc}); check verifier.key") from exc
    package_id = str(uuid.uuid4())
    recipient = _one_line(recipient or "") or "not stated"
    organization = _one_line(organization or "")
    staging = out.parent / f".{out.name}.partial-{package_id[:8]}"
    if out.exists():
        out.rmdir()
    bag = _Bag(staging)
    try:
        items = _write_payload(workspace, bag, state, blake3s, tools, contact_sheets)
        context = _Context(
            workspace=workspace, state=state.as_dict(history=True), items=items, events=events,
            checkpoint=parsed, checkpoint_note=checkpoint.note, verifier=verifier, package_id=package_id,
            recipient=recipient, organization=organization or "not stated", organization_given=bool(organization),
            created=datetime.now(timezone.utc),
            sheets_tool=tools.version("ffmpeg") if any(i.contact_sheet for i in items) else None,
            bag_root=staging, disposed=disposed,
        )
        _write_custody(bag, context, ledger)
        bag.text(layout.REPORT, render_report(context))
        bag.text(layout.CERTIFICATION, render_certification(context))
        bag.text(layout.README, render_readme(context))
        tagmanifest = _write_manifests(bag, context)
        bag.sync_directories()
        os.rename(staging, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result = ExportResult(
        directory=str(out), incident=incident_id, package_id=package_id, recipient=recipient, items=items,
        events=len(events), checkpoint={"origin": parsed.origin, "size": parsed.size, "root": parsed.root.hex()},
        tagmanifest_sha256=tagmanifest, disposed=disposed,
    )
    try:
        result.exported_seqs = _record(workspace, result)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return result


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disposed_objects(ledger: Any, state: Any, size: int) -> list[dict[str, Any]]:
    """The incident's linked objects whose disposal event lies within the package's checkpoint
    (the first ``size`` events), oldest disposal first: what the report lists as no longer
    preserved."""
    found: list[dict[str, Any]] = []
    for event in ledger.events(actions=("disposed",)):
        blake3 = event.subject.get("evidence")
        if blake3 not in state.evidence or event.seq >= size:
            continue
        row = ledger.evidence_row(blake3) or {}
        found.append({
            "blake3": blake3, "sha256": row.get("sha256"), "size": row.get("size"),
            "disposed_at": event.time, "seq": event.seq, "actor": event.actor,
        })
    return sorted(found, key=lambda d: d["seq"])


def _selected(workspace: Any, state: Any, refs: Sequence[str]) -> list[str]:
    from custody.evidence.verify import resolve

    if not state.evidence:
        raise BadInput(
            f"incident {state.incident} has no linked evidence; link it first with "
            f"'custody link REF --incident {state.incident}'"
        )
    disposed = {
        event.subject.get("evidence", ""): event
        for event in workspace.ledger.events(actions=("disposed",))
        if event.subject.get("evidence") in state.evidence
    }
    if not refs:
        kept = sorted(b3 for b3 in state.evidence if b3 not in disposed)
        if not kept:
            raise BadInput(f"every object linked to incident {state.incident} was disposed of; there is nothing to export")
        return kept
    chosen: list[str] = []
    for ref in refs:
        resolved = resolve(workspace.ledger, ref)
        if resolved.blake3 is None or workspace.ledger.evidence_row(resolved.blake3) is None:
            raise BadInput(f"{ref}: not a preserved object")
        if resolved.blake3 in disposed:
            gone = disposed[resolved.blake3]
            raise BadInput(
                f"{ref}: was disposed of under its retention rules on {gone.time} (event {gone.seq}); "
                "only its digests remain, in the ledger"
            )
        if resolved.blake3 not in state.evidence:
            raise BadInput(
                f"{ref}: preserved ({resolved.blake3[:16]}) but not linked to incident {state.incident}; "
                f"link it with 'custody link {resolved.blake3[:16]} --incident {state.incident}'"
            )
        if resolved.blake3 not in chosen:
            chosen.append(resolved.blake3)
    return chosen


def _sealed_events(workspace: Any, incident_id: str, blake3s: Sequence[str]) -> tuple[Any, Any, list[Any]]:
    """A checkpoint of the whole ledger, the incident's state and the events of the objects and
    the incident, all within it (re-sealed if another writer appended in between)."""
    from custody.cases.incidents import require_incident

    ledger = workspace.ledger
    for _ in range(5):
        checkpoint = workspace.seal(force=True)
        size = checkpoint.size
        state = require_incident(ledger, incident_id)
        if any(e.seq >= size for e in state.history):
            continue
        found = {e.seq: e for e in ledger.events(incident=incident_id) if e.seq < size}
        for blake3 in blake3s:
            found.update({e.seq: e for e in ledger.events(evidence=blake3) if e.seq < size})
        return checkpoint, state, [found[seq] for seq in sorted(found)]
    raise ConfigError("the ledger kept changing while the package was prepared; try again")


def _write_payload(workspace: Any, bag: _Bag, state: Any, blake3s: Sequence[str], tools: Any,
                   contact_sheets: bool) -> list[ExportItem]:
    from custody.media.preserved import ingest_event

    ledger = workspace.ledger
    planned = []
    for blake3 in blake3s:
        row = ledger.evidence_row(blake3)
        assert row is not None
        ingest = ingest_event(ledger, row)
        media = ingest.details.get("media") or {}
        link = state.evidence.get(blake3, {})
        camera = link.get("camera") or (media.get("device") or {}).get("serial")
        source = ingest.details.get("source") or {}
        recorded_at = media.get("creation_time") or source.get("mtime")
        planned.append((row, ingest, media, link, camera, recorded_at, source))
    planned.sort(key=lambda p: (_moment(p[5]) or datetime.max.replace(tzinfo=timezone.utc), p[4] or "", p[0]["blake3"]))
    names = payload_names([(state.incident, p[4] or "", p[5], str(p[6].get("name", ""))) for p in planned])
    items: list[ExportItem] = []
    findings: list[Finding] = []
    for (row, ingest, media, link, camera, recorded_at, source), name in zip(planned, names):
        file = f"{layout.PAYLOAD_DIR}/{name}"
        digests, size = _copy_object(workspace.store, row, bag, file, findings)
        if digests is None:
            continue
        items.append(ExportItem(
            blake3=row["blake3"], sha256=digests["sha256"], sha512=digests["sha512"], size=size, file=file,
            original_name=str(source.get("name", "")), camera=camera, officer=link.get("officer"),
            recorded_at=recorded_at, ingest_seq=ingest.seq, ingested_at=ingest.time, ingested_by=ingest.actor,
            source=source, media_kind=media.get("kind"), duration_us=media.get("duration_us"),
        ))
    if findings:
        raise IntegrityFailure(findings)
    for item in items:
        _media_extras(workspace, bag, item, ledger, tools, contact_sheets)
    return items


def _copy_object(store: Any, row: Mapping[str, Any], bag: _Bag, file: str,
                 findings: list[Finding]) -> tuple[dict[str, str] | None, int]:
    """Copy a stored object into the bag, hashing it; a finding (and None) if its bytes are
    missing or no longer the recorded ones."""
    from storage.errors import ObjectNotFound, StorageError

    subject = f"preserved object {row['blake3']}"
    hasher = PayloadDigests()
    path = bag.root / file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with store.open(row["store_key"], row["version"]) as stream, path.open("xb") as handle:
            while chunk := stream.read(layout.CHUNK):
                hasher.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except ObjectNotFound:
        hasher.hexdigests()
        findings.append(Finding("missing", subject, f"the stored object {row['store_key']} is missing"))
        return None, 0
    except (OSError, StorageError) as exc:
        hasher.hexdigests()
        findings.append(Finding("unreadable", subject, f"the stored object {row['store_key']} could not be read: {exc}"))
        return None, 0
    digests = hasher.hexdigests()
    for algorithm in ("blake3", "sha256"):
        if digests[algorithm] != row[algorithm]:
            findings.append(Finding(
                "mismatch", subject, f"the stored object {row['store_key']} no longer has its recorded {algorithm.upper()}; "
                "run 'custody verify' and 'custody audit'", algorithm, str(row[algorithm]), digests[algorithm],
            ))
            return None, 0
    if hasher.size != row["size"]:
        findings.append(Finding("mismatch", subject, "the stored object's size differs from the recorded size",
                                "size", str(row["size"]), str(hasher.size)))
        return None, 0
    return digests, hasher.size


def _media_extras(workspace: Any, bag: _Bag, item: ExportItem, ledger: Any, tools: Any, contact_sheets: bool) -> None:
    """The recorded packet list (checked against its ingest event) and, for a video, a
    contact sheet made from the copied bytes."""
    from custody.media.preserved import recorded_packet_list
    from custody.media.sheets import contact_sheet
    from custody.media.tools import MediaToolsMissing, MediaUnreadable

    ingest = next(ledger.events(evidence=item.blake3, start=item.ingest_seq))
    base = item.file.split("/", 1)[1]
    if (ingest.details.get("attachments") or {}).get("packets"):
        _, data, _ = recorded_packet_list(workspace, item.blake3, tools)
        item.packets = f"{layout.PACKETS}/{base}.packets"
        item.packets_sha256 = hashlib.sha256(data).hexdigest()
        bag.write(item.packets, data)
    if not contact_sheets or item.media_kind != "video":
        return
    sheet = f"{layout.SHEETS}/{base}.png"
    (bag.root / layout.SHEETS).mkdir(parents=True, exist_ok=True)
    try:
        contact_sheet(bag.root / item.file, bag.root / sheet, title=f"{base} (BLAKE3 {item.blake3})", tools=tools)
    except MediaToolsMissing as exc:
        raise ConfigError(f"{exc}; or export without contact sheets (--no-contact-sheets)") from exc
    except MediaUnreadable as exc:
        item.contact_sheet_error = exc.detail
        return
    item.contact_sheet = sheet


@dataclass
class _Context:
    """Everything the tag files are rendered from."""

    workspace: Any
    state: dict[str, Any]
    items: list[ExportItem]
    events: list[Any]
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

    @property
    def incident(self) -> str:
        return str(self.state["incident"])

    @property
    def created_text(self) -> str:
        return self.created.strftime("%Y-%m-%dT%H:%M:%SZ")

    def name_of(self, blake3: str | None) -> str:
        for item in self.items:
            if item.blake3 == blake3:
                return item.file
        return f"object {blake3[:16]}" if blake3 else ""


def _write_custody(bag: _Bag, context: _Context, ledger: Any) -> None:
    size = context.checkpoint.size
    seqs = [e.seq for e in context.events]
    proofs: dict[int, list[bytes]] = ledger.with_nodes(
        lambda nodes: {seq: tree.inclusion_proof(nodes, seq, size) for seq in seqs}
    )
    lines = []
    for event in context.events:
        record = event.as_dict()
        record["proof"] = layout.proof_path(event.seq)
        lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        bag.text(layout.proof_path(event.seq), notes.format_tlog_proof(event.seq, proofs[event.seq], context.checkpoint_note))
    bag.text(layout.EVENTS, "".join(line + "\n" for line in lines))
    bag.text(layout.CHECKPOINT, context.checkpoint_note)
    bag.text(layout.VERIFIER_KEY, context.verifier.to_text() + "\n")
    bag.text(layout.INCIDENT, json.dumps(context.state, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    bag.text(layout.ITEMS, json.dumps([i.as_dict() for i in context.items], indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _sums(entries: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))


def _write_manifests(bag: _Bag, context: _Context) -> str:
    """Payload manifests, BLAKE3 list, bagit.txt, bag-info.txt, then the tag manifests over
    every other file. Returns the SHA-256 of ``tagmanifest-sha256.txt``."""
    for algorithm, manifest in layout.MANIFESTS.items():
        bag.text(manifest, _sums((i.file, getattr(i, algorithm)) for i in context.items))
    bag.text(layout.BLAKE3_SUMS, _sums((i.file, i.blake3) for i in context.items))
    bag.text(layout.BAGIT, layout.BAGIT_TEXT)
    total = sum(i.size for i in context.items)
    info = [
        ("Source-Organization", context.organization),
        ("Bagging-Date", context.created.strftime("%Y-%m-%d")),
        ("External-Identifier", context.incident),
        ("External-Description", f"Evidence package for incident {context.incident}: {len(context.items)} file(s), "
                                 f"{len(context.events)} custody event(s) with inclusion proofs"),
        ("Internal-Sender-Identifier", context.package_id),
        ("Contact-Name", context.workspace.settings.actor),
        ("Payload-Oxum", f"{total}.{len(context.items)}"),
        ("Bag-Size", _human(total)),
        ("Bag-Software-Agent", TOOL),
        ("Custody-Recipient", context.recipient),
        ("Custody-Ledger-Key", context.verifier.to_text()),
        ("Custody-Checkpoint", f"{context.checkpoint.origin} {context.checkpoint.size}"),
    ]
    bag.text(layout.BAG_INFO, "".join(f"{label}: {_one_line(value)}\n" for label, value in info))
    tag_files = [name for name in bag.files(".") if not name.startswith(layout.PAYLOAD_DIR + "/")]
    digest = ""
    for algorithm, manifest in layout.TAG_MANIFESTS.items():
        text = _sums((name, hashlib.new(algorithm, (bag.root / name).read_bytes()).hexdigest()) for name in tag_files)
        bag.text(manifest, text)
        if algorithm == "sha256":
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest


def _record(workspace: Any, result: ExportResult) -> list[int]:
    settings = workspace.settings
    package = {
        "id": result.package_id,
        "directory": os.path.basename(result.directory),
        "tagmanifest_sha256": result.tagmanifest_sha256,
        "files": len(result.items),
        "events": result.events,
        "checkpoint": result.checkpoint,
    }
    seqs = []
    with workspace.ledger.transaction() as tx:
        for item in result.items:
            event = tx.append(
                "exported", actor=settings.actor, role=settings.role,
                subject={"evidence": item.blake3, "incident": result.incident},
                details={"recipient": result.recipient, "file": item.file, "package": package},
            )
            seqs.append(event.seq)
    workspace.seal()
    return seqs


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


def _tool_versions(context: _Context) -> list[tuple[str, str]]:
    try:
        blake3_version = metadata.version("blake3")
    except metadata.PackageNotFoundError:
        blake3_version = "unknown"
    versions = [
        ("custody", TOOL),
        ("SHA-256, SHA-512", f"Python {platform.python_version()} hashlib, {ssl.OPENSSL_VERSION}"),
        ("BLAKE3-256", f"blake3 {blake3_version} (Python bindings of the reference implementation)"),
    ]
    if context.sheets_tool:
        versions.append(("contact sheets", context.sheets_tool))
    return versions


# ---------------------------------------------------------------------------------------------
# report.html

_CSS = """
:root { color-scheme: light; }
body { font: 11pt/1.4 "DejaVu Sans", Arial, sans-serif; color: #111; margin: 2em auto; max-width: 72em; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; border-bottom: 2px solid #333; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #999; padding: .25em .4em; text-align: left; vertical-align: top; }
th { background: #e8e8e8; }
.hash { font: .85em/1.3 "DejaVu Sans Mono", monospace; word-break: break-all; }
.meta td:first-child { width: 14em; font-weight: bold; }
figure { margin: 1em 0; page-break-inside: avoid; break-inside: avoid; }
figure img { max-width: 100%; border: 1px solid #666; }
figcaption { font-size: .9em; }
.note { font-size: .9em; color: #333; }
@page { size: letter; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  h2 { page-break-after: avoid; break-after: avoid; }
  tr { page-break-inside: avoid; break-inside: avoid; }
  thead { display: table-header-group; }
}
"""

_FIELD_LABELS = {
    "occurred_at": "Occurred at", "location": "Location", "agencies": "Agencies",
    "supervisor_name": "Federal supervisor (name)", "supervisor_badge": "Federal supervisor (badge)",
    "credentials": "Credentials", "use_of_force": "Use of force", "detentions": "Detentions",
    "injuries": "Injuries", "ems_summoned": "EMS summoned", "aid_rendered": "Aid rendered",
    "violations": "Alleged violations", "report_number": "Report number", "note": "Note",
}


def _e(value: Any) -> str:
    if isinstance(value, bool):
        value = "yes" if value else "no"
    elif isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif value is None:
        value = "—"
    return html.escape(str(value), quote=True)


def _rows(pairs: Iterable[tuple[str, Any]], cls: str = "meta") -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def event_summary(event: Any) -> str:
    """One line saying what a custody event records, for people."""
    d = event.details
    action = event.action
    if action == "ingested":
        source = d.get("source") or {}
        return f"preserved {source.get('name')} ({d.get('size')} bytes) from {source.get('host')}:{source.get('path')}"
    if action == "acquired":
        source = d.get("source") or {}
        return f"the same bytes acquired again from {source.get('host')}:{source.get('path')}"
    if action == "linked":
        parts = [f"camera {d['camera']}" if d.get("camera") else "", f"officer {d['officer']}" if d.get("officer") else ""]
        return "linked to the incident " + ", ".join(p for p in parts if p)
    if action == "incident-created":
        return "incident recorded"
    if action == "incident-amended":
        changes = "; ".join(f"{k}: {v.get('from')} → {v.get('to')}" for k, v in sorted((d.get("changes") or {}).items()))
        return f"amended ({changes}); reason: {d.get('reason')}"
    if action == "incident-referred":
        return f"referred to {d.get('to')} (reference {d.get('reference')}){', felony' if d.get('felony') else ''}"
    if action == "retention-extended":
        return f"retention {d.get('category')} until {d.get('until')}: {d.get('reason')}"
    if action in ("hold-placed", "hold-released"):
        return f"legal hold {d.get('hold')} ({d.get('authority')}): {d.get('reason')}"
    if action == "verified":
        return f"verified: {'OK' if d.get('ok') else 'FINDINGS'} ({d.get('what', d.get('algorithm', ''))})"
    if action == "exported":
        return f"exported to {d.get('recipient')} as {d.get('file')}"
    scalars = ", ".join(f"{k}={v}" for k, v in sorted(d.items()) if isinstance(v, (str, int, bool)))
    return scalars[:200]


def _disposed_section(disposed: Sequence[Mapping[str, Any]]) -> str:
    """The report's list of linked recordings that are no longer preserved (none: nothing)."""
    if not disposed:
        return ""
    rows = "".join(
        f"<tr><td>{_e(d['disposed_at'])}</td><td>{d['seq']}</td><td>{_e(d['actor'])}</td>"
        f"<td>{d['size']:,}</td><td class=\"hash\">SHA-256 {_e(d['sha256'])}<br>BLAKE3 {_e(d['blake3'])}</td></tr>"
        if isinstance(d.get("size"), int) else
        f"<tr><td>{_e(d['disposed_at'])}</td><td>{d['seq']}</td><td>{_e(d['actor'])}</td><td></td>"
        f"<td class=\"hash\">BLAKE3 {_e(d['blake3'])}</td></tr>"
        for d in disposed
    )
    return (
        "<h2>Linked recordings no longer preserved</h2>\n"
        f"<p class=note>{len(disposed)} recording(s) once linked to this incident were disposed of under the "
        "agency's retention rules before this package was made, so they are not in it. Only their digests "
        "remain, in the custody ledger; each disposal is the ledger event named here, within the checkpoint "
        "this package carries.</p>\n"
        "<table><thead><tr><th>Disposed (UTC)</th><th>Event</th><th>Who</th><th>Bytes</th><th>Hashes</th></tr>"
        f"</thead><tbody>\n{rows}\n</tbody></table>"
    )


def render_report(context: _Context) -> str:
    """``report.html``: one self-contained page (inline CSS, images as ``data:`` URIs, no
    script, nothing fetched) with the incident, the files, the custody timeline and the
    contact sheets; it prints on letter or A4 paper."""
    state = context.state
    fields = state.get("fields") or {}
    order = list(_FIELD_LABELS)
    ranked = sorted(fields.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    incident_rows = [(_FIELD_LABELS.get(name, name), value) for name, value in ranked]
    for referral in state.get("referrals") or []:
        incident_rows.append(("Referred", f"to {referral.get('to')} (reference {referral.get('reference')})"
                                          f"{', felony' if referral.get('felony') else ''} on {referral.get('time')}"))
    if state.get("flagged_because"):
        incident_rows.append(("Flagged encounter", ", ".join(state["flagged_because"])))
    files = []
    for number, item in enumerate(context.items, 1):
        files.append(
            f"<tr><td>{number}</td><td>{_e(item.file.split('/', 1)[1])}<br><span class=note>original: "
            f"{_e(item.original_name)}</span></td><td>{_e(item.camera)}</td><td>{_e(item.officer)}</td>"
            f"<td>{_e(item.recorded_at)}</td><td>{item.size:,}</td>"
            f'<td class="hash">SHA-256 {item.sha256}<br>BLAKE3 {item.blake3}</td></tr>'
        )
    timeline = []
    for event in context.events:
        subject = event.subject.get("evidence")
        who = _e(context.name_of(subject).split("/", 1)[-1]) if subject else f"incident {_e(event.subject.get('incident'))}"
        timeline.append(
            f"<tr><td>{event.seq}</td><td>{_e(event.time)}</td><td>{_e(event.actor)} ({_e(event.role)})</td>"
            f"<td>{_e(event.action)}</td><td>{who}</td><td>{_e(event_summary(event))}</td></tr>"
        )
    sheets = []
    for item in context.items:
        if item.contact_sheet:
            sheets.append((item, (context.bag_root / item.contact_sheet).read_bytes()))
    figures = "".join(
        f'<figure><img alt="contact sheet of {_e(item.file)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
        f"<figcaption>{_e(item.file.split('/', 1)[1])}: frames evenly spaced over the recording, each labelled with its "
        f"time from the start of the file</figcaption></figure>"
        for item, data in sheets
    ) or "<p>No video in this package, or contact sheets were not made.</p>"
    verify_rows = [
        ("Package identifier", context.package_id),
        ("Prepared", f"{context.created_text} by {context.workspace.settings.actor} with {TOOL}"),
        ("Recipient", context.recipient),
        ("Source organisation", context.organization),
        ("Ledger key", context.verifier.to_text()),
        ("Checkpoint", f"{context.checkpoint.origin}, {context.checkpoint.size} events, root (SHA-256) "
                       f"{context.checkpoint.root.hex()}"),
    ]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Evidence package: incident {_e(context.incident)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Evidence package: incident {_e(context.incident)}</h1>
<p class="note">{len(context.items)} file(s), {_human(sum(i.size for i in context.items))};
{len(context.events)} custody event(s), each proved against one signed checkpoint. To check everything,
follow README.txt in this package (stock tools) or run <code>custody verify-package</code>.</p>
{_rows(verify_rows)}
<h2>Incident</h2>
{_rows(incident_rows)}
<h2>Files</h2>
<table><thead><tr><th>#</th><th>File (in data/)</th><th>Camera</th><th>Officer</th><th>Recorded at</th>
<th>Bytes</th><th>Hashes</th></tr></thead><tbody>
{"".join(files)}
</tbody></table>
{_disposed_section(context.disposed)}
<h2>Custody timeline</h2>
<table><thead><tr><th>Event</th><th>Time (UTC)</th><th>Who</th><th>Action</th><th>About</th><th>What</th></tr></thead><tbody>
{"".join(timeline)}
</tbody></table>
<h2>Contact sheets</h2>
{figures}
</body>
</html>
"""


# ---------------------------------------------------------------------------------------------
# hash certification and README


def render_certification(context: _Context) -> str:
    """A draft certification for a qualified person to complete and sign, in the spirit of
    Federal Rule of Evidence 902(14): what was hashed, how, with what, the values, and how
    the copies were made."""
    settings = context.workspace.settings
    store = context.workspace.store.describe()
    worm = getattr(getattr(context.workspace.store, "capabilities", None), "worm", None)
    enforced = {"server": "retention enforced by the storage server",
                "program": "retention enforced by the custody software, not by the storage itself"}.get(worm or "", "")
    agency = context.organization if context.organization_given else "______________________________ [agency]"
    tools = "\n".join(f"     - {name}: {version}" for name, version in _tool_versions(context))
    files = []
    for number, item in enumerate(context.items, 1):
        source = item.source
        files.append(
            f"  {number}. {item.file}\n"
            f"     original file name: {item.original_name}; camera: {item.camera or 'not recorded'}; "
            f"recorded at: {item.recorded_at or 'not recorded'}\n"
            f"     first preserved {item.ingested_at} by {item.ingested_by} (custody event {item.ingest_seq}), "
            f"read from {source.get('host')}:{source.get('path')}\n"
            f"     size:     {item.size} bytes\n"
            f"     SHA-256:  {item.sha256}\n"
            f"     SHA-512:  {item.sha512}\n"
            f"     BLAKE3:   {item.blake3}\n"
        )
    return f"""DRAFT - NOT SIGNED
CERTIFICATION OF DATA COPIED FROM AN ELECTRONIC STORAGE MEDIUM
(in the spirit of Federal Rule of Evidence 902(14) and the certification requirements of
Rule 902(11); counsel should adapt it to the rules of the court where it is offered.)

Incident: {context.incident}
Evidence package: {context.package_id} (prepared {context.created_text} by {settings.actor})

I, ______________________________ [name], declare:

1. I am employed by {agency} as ______________________________ [title].
   My duties include ______________________________ [e.g. the preservation of body-worn
   camera recordings and the operation of the agency's evidence preservation system]. I am
   qualified by ______________________________ [training and experience] to make this
   certification.

2. When each file listed in paragraph 5 was first preserved, the system read it once and
   computed its SHA-256 and BLAKE3-256 hash values from those bytes, stored the bytes in an
   object store under a retention lock ({store}{"; " + enforced if enforced else ""}), and
   recorded the values, the time, the person and the source location as an event in an
   append-only, hash-chained custody ledger whose state is signed (Ed25519) and kept in
   write-once storage.

3. On {context.created_text} the copies in this package were made by reading each preserved
   object from that store and writing the same bytes, unchanged and in full, to the file named
   in paragraph 5. While each copy was made, its SHA-256, SHA-512 and BLAKE3-256 hash values
   were computed from the bytes copied, and the SHA-256 and BLAKE3-256 values were compared
   with those recorded when the file was first preserved. They were identical for every file;
   a difference would have stopped the export.

4. Hash algorithms and software:
     - SHA-256 and SHA-512 (FIPS 180-4); BLAKE3-256 (https://github.com/BLAKE3-team/BLAKE3)
{tools}
   A hash value identifies a file's exact content: a copy whose hash values are identical to
   those below is a bit-for-bit duplicate of the original recording as it was preserved.

5. Files, their sizes and hash values:

{"".join(files)}
6. Anyone can recompute these values with widely available tools, without this software:
   in the package directory, 'sha256sum -c manifest-sha256.txt', 'sha512sum -c
   manifest-sha512.txt' and 'b3sum -c blake3sums.txt' (see README.txt). The custody events
   recording each file's preservation, and the signed checkpoint of the ledger proving them,
   are in the package's custody/ directory.

I declare under penalty of perjury under the laws of ______________________________
[e.g. the United States of America, 28 U.S.C. 1746; or, in Illinois, certification under
735 ILCS 5/1-109] that the foregoing is true and correct.

Executed on ____________________ [date] at ______________________________ [place].


______________________________ [signature]
______________________________ [printed name, title]
"""


_VERIFY_PROOF = '''import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

vkey, proof, leaf = (open(p, "rb").read() for p in sys.argv[1:4])
name, key_id, key = vkey.decode().strip().split("+", 2)
key = base64.b64decode(key)
assert key[0] == 1 and hashlib.sha256(name.encode() + b"\\n" + key).digest()[:4].hex() == key_id
head, checkpoint = proof.decode().split("\\n\\n", 1)
lines = head.split("\\n")
assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[1].startswith("index ")
index, hashes = int(lines[1][6:]), [base64.b64decode(h) for h in lines[2:]]
body, signatures = checkpoint.split("\\n\\n", 1)
body += "\\n"
signed = [base64.b64decode(l.split(" ")[2]) for l in signatures.splitlines() if l.startswith("\\u2014 " + name + " ")]
signature = next(s[4:] for s in signed if s[:4].hex() == key_id)
Ed25519PublicKey.from_public_bytes(key[1:]).verify(signature, body.encode())  # raises if forged
origin, size, root = body.split("\\n")[:3]
size, root = int(size), base64.b64decode(root)
node, fn, sn = hashlib.sha256(b"\\0" + leaf).digest(), index, size - 1   # RFC 9162 2.1.3.2
for sibling in hashes:
    if fn % 2 == 1 or fn == sn:
        node = hashlib.sha256(b"\\1" + sibling + node).digest()
        while fn % 2 == 0 and fn != 0:
            fn, sn = fn >> 1, sn >> 1
    else:
        node = hashlib.sha256(b"\\1" + node + sibling).digest()
    fn, sn = fn >> 1, sn >> 1
assert sn == 0 and node == root, "the event is NOT in the signed tree"
print(f"event {index} is in {origin}'s tree of {size} events, signed by {name}")
'''


def render_readme(context: _Context) -> str:
    """``README.txt``: what the package holds and how to verify all of it with stock tools."""
    first = context.events[0].seq if context.events else 0
    script = "".join("    " + line + "\n" if line else "\n" for line in _VERIFY_PROOF.splitlines())
    return f"""EVIDENCE PACKAGE - INCIDENT {context.incident}

  Prepared:             {context.created_text} by {context.workspace.settings.actor}, with {TOOL}
  Source organisation:  {context.organization}
  Recipient:            {context.recipient}
  Package identifier:   {context.package_id}

This directory is a BagIt 1.0 bag (RFC 8493). Nothing in it needs access to police systems to
be checked, and every check below uses stock tools. Open report.html in any browser for a
readable summary (it fetches nothing); hash-certification.txt is a draft certification for a
qualified person to complete and sign.

WHAT IS HERE

  data/                         the original recordings, byte for byte, named
                                <incident>_<camera>_<recorded time, UTC>.<ext>
  manifest-sha256.txt           SHA-256 of every file in data/  (sha256sum format)
  manifest-sha512.txt           SHA-512 of every file in data/  (sha512sum format)
  blake3sums.txt                BLAKE3-256 of every file in data/ (b3sum format). It is a tag
                                file, not a manifest-blake3.txt, because "blake3" is not a
                                registered BagIt algorithm name; the tag manifests cover it.
  bagit.txt, bag-info.txt       BagIt declaration; source organisation, date, incident
                                (External-Identifier), Payload-Oxum (bytes.files)
  tagmanifest-sha256.txt,       SHA-256 / SHA-512 of every file outside data/ (except these two)
  tagmanifest-sha512.txt
  custody/incident.json         the incident record (as its custody events say it is)
  custody/items.json            each file: original name, camera, digests, its ingest event
  custody/events.jsonl          the custody events of these files and of the incident, one JSON
                                object per line; "leaf" is the event's canonical bytes and
                                "hash" is SHA-256(0x00 || leaf)
  custody/proofs/event-N.tlog-proof   C2SP tlog-proof that event N is in the ledger
  custody/checkpoint.txt        the signed checkpoint (C2SP signed note, Ed25519) every proof
                                is against: {context.checkpoint.origin}, {context.checkpoint.size} events
  custody/verifier.key          the ledger's public key: {context.verifier.to_text()}
  custody/packets/*.packets     each video's packet hash list (SHA-256 of every audio/video
                                packet), recorded when it was first preserved
  custody/sheets/*.png          a contact sheet (frames across the recording) of each video

1. THE BAG AND ITS FILES

    bagit.py --validate .             (pip install bagit; run in this directory)
    sha256sum -c manifest-sha256.txt
    sha512sum -c manifest-sha512.txt
    b3sum -c blake3sums.txt           (https://github.com/BLAKE3-team/BLAKE3, Debian: b3sum)
    sha256sum -c tagmanifest-sha256.txt

  On Windows: Get-FileHash -Algorithm SHA256 data\\FILE, and compare with manifest-sha256.txt.

2. THE KEY

  Obtain the ledger's verifier key from {context.organization if context.organization_given else "the sending agency"}
  by a channel you trust (not from this package) and compare it with custody/verifier.key. Everything below is only as
  trustworthy as that comparison.

3. THE CUSTODY EVENTS

  Each event's hash is its canonical bytes hashed with a 0x00 prefix (RFC 6962 leaf hash):

    python3 -c 'import hashlib, json
    for line in open("custody/events.jsonl"):
        e = json.loads(line)
        assert hashlib.sha256(b"\\0" + e["leaf"].encode()).hexdigest() == e["hash"], e["seq"]
        assert json.loads(e["leaf"])["seq"] == e["seq"]
    print("every event hash recomputes")'

  The other fields of each line repeat what "leaf" says, for reading; "leaf" is what counts.

4. THE PROOFS AND THE SIGNED CHECKPOINT

  custody/checkpoint.txt is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) in a
  C2SP signed note (https://c2sp.org/signed-note), signed with Ed25519 by the key in
  custody/verifier.key. Each custody/proofs/event-N.tlog-proof (https://c2sp.org/tlog-proof)
  gives the RFC 9162 inclusion proof of event N's leaf hash at index N, followed by that same
  checkpoint. Go's golang.org/x/mod/sumdb/note (note.NewVerifier, note.Open) checks the
  signature, and golang.org/x/mod/sumdb/tlog or github.com/transparency-dev/merkle/proof
  (VerifyInclusion) checks the proof. Or, with Python 3 and the 'cryptography' package, save
  this as verify_proof.py:

{script}
  and run it for an event, e.g. event {first}:

    python3 -c 'import json, sys
    for line in open("custody/events.jsonl"):
        e = json.loads(line)
        if e["seq"] == int(sys.argv[1]): sys.stdout.write(e["leaf"])' {first} > leaf
    python3 verify_proof.py custody/verifier.key custody/proofs/event-{first}.tlog-proof leaf

5. THE FILES ARE THE ONES THE EVENTS RECORD

  Each file's "ingested" event (custody/items.json gives its number) records the BLAKE3-256
  (the event's subject), SHA-256 and size of the bytes preserved; they must equal the values in
  the manifests. Each file's "linked" event ties it to the incident. The SHA-256 of each packet
  list is recorded in its ingest event's details.attachments.packets.

6. ALL OF IT AT ONCE

    custody verify-package . --trust-key 'KEY'

  checks all of the above without a database, a store or any configuration, reports every
  finding naming its file, and exits 3 on any. With --receipt RECEIPT --signer-key KEYFILE it
  also writes a receipt signed with your own key (make one with 'custody receipt keygen NAME
  --out KEYFILE'), saying what you verified and when; returned to the sender, 'custody receipt
  import RECEIPT' records it in the custody ledger.
"""
