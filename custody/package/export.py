"""Export an incident's evidence as a prosecutor package: a BagIt 1.0 bag (RFC 8493) that anyone
can verify offline, with stock tools or with ``custody verify-package``.

The layout is defined in ``custody.package.layout`` (the offline verifier reads exactly what
this module writes). In order, ``export_package``:

1. appends the package's ``export-prepared`` event (what a complete package holds) and signs a
   checkpoint that ends with it (``custody.package.commitment``), so that one checkpoint covers
   every event the package carries;
2. copies each preserved object byte for byte from the store into ``data/`` under a readable
   name (incident, camera, time; ``_2``, ``_3`` ... on collisions), computing SHA-256, SHA-512
   and BLAKE3 in the same read and comparing them with the ledger (an object that no longer
   has its recorded digests stops the export: ``IntegrityFailure``, exit 3, nothing written);
3. writes the tag files: the incident record, the items, the custody events of the exported
   objects and the incident (each with its canonical bytes), one tlog-proof per event, the
   checkpoint, the verifier key, the people's signatures of the events and the
   allowed_signers of their keys (``custody.package.signers``), each video's packet list
   (checked against the SHA-256 its ingest event recorded) and contact sheet, ``report.html``, the hash certification draft and
   ``README.txt``, the consistency proof from the recipient's previous package; then the
   manifests, ``bagit.txt``, ``bag-info.txt``, the tag manifests and the seal (the ledger key's
   signature over every file's SHA-256);
4. builds all of it in a hidden sibling directory and renames it into place, then records one
   ``exported`` event per object (recipient, actor, the tag manifest's SHA-256) and signs a
   checkpoint. If recording fails the package is removed, so none exists unrecorded.

The ``exported`` events come after the checkpoint the package is proved against, so they are
not in the package; a recipient's signed receipt names the tag manifest's SHA-256, which ties
it to them (``custody.package.receipt``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody import times
from custody.errors import BadInput, ConfigError, Finding, FindingKind, IntegrityFailure
from custody.evidence.sidecars import sidecar_names, with_sidecars
from custody.ledger import checkpoint as notes
from custody.package import layout
from custody.ledger.consistency import parse_consistency
from custody.package.certification import render_certification
from custody.package.commitment import prepare, previous_consistency
from custody.package.digests import PayloadDigests
from custody.package.model import ExportContext, ExportItem, ExportResult, one_line
from custody.package.readme import render_readme
from custody.package.report import render_report
from custody.package.signers import write_signers
from custody.package.writer import BagWriter, fsync_dir, write_custody, write_manifests, write_seal
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.cases.incident_state import IncidentState
    from custody.ledger.database import Ledger
    from custody.settings import Settings
    from storage.base import ObjectStore
    from custody.media.tools import MediaTools

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _safe(text: str, fallback: str, limit: int = 48) -> str:
    cleaned = _UNSAFE.sub("-", text).strip("-.")[:limit].strip("-.")
    return cleaned or fallback


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return times.parse_utc(text)
    except ValueError:
        return None


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


def anchor_files(ledger: Ledger, settings: Settings, size: int) -> dict[str, bytes]:
    """The witnesses' cosignatures, the RFC 3161 token and the key rotations (custody.anchors.bundle)."""
    from custody.anchors.bundle import export_files

    return export_files(ledger, settings, size)


def anchors_readme(files: dict[str, bytes]) -> str:
    from custody.anchors.bundle import readme_section

    return readme_section(files, layout.CHECKPOINT)


def export_package(
    workspace: Workspace,
    incident_id: str,
    out: Path,
    *,
    refs: Sequence[str] = (),
    recipient: str | None = None,
    organization: str | None = None,
    tools: MediaTools | None = None,
    contact_sheets: bool = True,
) -> ExportResult:
    """Write the package of ``incident_id`` to the new directory ``out`` and record the export.

    ``refs`` (BLAKE3 prefixes or files) narrow it to some of the incident's linked objects;
    without them every linked object that has not been disposed of is exported. Raises ``BadInput`` (unknown incident, no
    linked evidence, a reference not linked to it, ``out`` exists and is not an empty
    directory), ``IntegrityFailure`` (a stored object or packet list no longer matches the
    ledger), ``ConfigError`` (ffmpeg missing for contact sheets; ``contact_sheets=False``
    skips them) and store or ledger errors. Nothing is left behind on failure."""
    from custody.cases.incident_state import require_incident
    from custody.media.tools import DEFAULT_TOOLS

    tools = tools or DEFAULT_TOOLS
    ledger = workspace.ledger
    out = Path(os.path.abspath(out))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out: {out} already exists; give a new directory")
    if not out.parent.is_dir():
        raise BadInput(f"--out: the parent directory {out.parent} does not exist")
    state = require_incident(ledger, incident_id)
    carried = with_sidecars(ledger, _selected(workspace, state, refs))
    blake3s = list(carried)
    package_id = str(uuid.uuid4())
    recipient = one_line(recipient or "") or "not stated"
    prepared = prepare(workspace, incident_id, blake3s, package_id, recipient)
    checkpoint, state, events = prepared.checkpoint, prepared.state, prepared.events
    disposed = _disposed_objects(ledger, state, checkpoint.size)
    verifier: notes.Verifier = workspace.verifier()
    try:
        parsed, _ = notes.open_checkpoint(checkpoint.note, [verifier], origin=verifier.name)
    except notes.TlogError as exc:
        raise ConfigError(f"the verifier key does not verify the ledger's checkpoint ({exc}); check verifier.key") from exc
    consistency = previous_consistency(ledger, recipient, checkpoint)
    organization = one_line(organization or "")
    staging = out.parent / f".{out.name}.partial-{package_id[:8]}"
    if out.exists():
        out.rmdir()
    bag = BagWriter(staging)
    try:
        items = _write_payload(workspace, bag, state, blake3s, tools, contact_sheets, carried)
        context = ExportContext(
            workspace=workspace, state=state.as_dict(history=True), items=items, events=events,
            checkpoint=parsed, checkpoint_note=checkpoint.note, verifier=verifier, package_id=package_id,
            recipient=recipient, organization=organization or "not stated", organization_given=bool(organization),
            created=times.now(),
            sheets_tool=tools.version("ffmpeg") if any(i.contact_sheet for i in items) else None,
            bag_root=staging, disposed=disposed, objects=prepared.objects, prepared_seq=prepared.event.seq,
            previous_size=parse_consistency(consistency).old_size if consistency else None,
        )
        write_custody(bag, context, ledger)
        write_signers(bag, context, ledger)
        if consistency is not None:
            bag.text(layout.CONSISTENCY, consistency)
        anchors = anchor_files(ledger, workspace.settings, parsed.size)
        for name, data in anchors.items():
            bag.write(name, data)
        bag.text(layout.REPORT, render_report(context))
        bag.text(layout.CERTIFICATION, render_certification(context))
        bag.text(layout.README, render_readme(context) + anchors_readme(anchors))
        tagmanifest = write_manifests(bag, context)
        seal_sha256 = write_seal(bag, context, workspace.signer())
        bag.sync_directories()
        os.rename(staging, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result = ExportResult(
        directory=str(out), incident=incident_id, package_id=package_id, recipient=recipient, items=items,
        events=len(events), checkpoint={"origin": parsed.origin, "size": parsed.size, "root": parsed.root.hex()},
        tagmanifest_sha256=tagmanifest, seal_sha256=seal_sha256, disposed=disposed, prepared_seq=prepared.event.seq,
        previous_checkpoint=context.previous_size,
        excluded=sorted(b3 for b3, status in prepared.objects.items() if status == "excluded"),
    )
    try:
        result.exported_seqs = _record(workspace, result)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return result


def _disposed_objects(ledger: Ledger, state: IncidentState, size: int) -> list[dict[str, Any]]:
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


def _selected(workspace: Workspace, state: IncidentState, refs: Sequence[str]) -> list[str]:
    from custody.evidence.references import resolve_preserved

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
        resolved = resolve_preserved(workspace.ledger, ref)
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


def _recorded_at(details: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """An item's "recorded at" and where it comes from: the ingest event's ``recorded``
    (``custody.media.recorded``: container, sidecar or mtime); for an event made before that
    was recorded, the container's creation time, else the source file's mtime."""
    recorded = details.get("recorded")
    if isinstance(recorded, dict) and isinstance(recorded.get("start"), str):
        return recorded["start"], str(recorded.get("source"))
    media, source = details.get("media") or {}, details.get("source") or {}
    if media.get("creation_time"):
        return str(media["creation_time"]), "container"
    if source.get("mtime"):
        return str(source["mtime"]), "mtime"
    return None, None


def _write_payload(workspace: Workspace, bag: BagWriter, state: IncidentState, blake3s: Sequence[str], tools: MediaTools,
                   contact_sheets: bool, carried: Mapping[str, str | None]) -> list[ExportItem]:
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
        recorded_at = _recorded_at(ingest.details)[0]
        planned.append((row, ingest, media, link, camera, recorded_at, source))
    planned.sort(key=lambda p: (_moment(p[5]) or datetime.max.replace(tzinfo=timezone.utc), p[4] or "", p[0]["blake3"]))
    recordings = [p for p in planned if carried.get(p[0]["blake3"]) is None]
    names = payload_names([(state.incident, p[4] or "", p[5], str(p[6].get("name", ""))) for p in recordings])
    planned, names = sidecar_names(recordings, names, [p for p in planned if carried.get(p[0]["blake3"])], carried)
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
            recorded_at=recorded_at, recorded_at_source=_recorded_at(ingest.details)[1],
            content_credentials=ingest.details.get("content_credentials"),
            ingest_seq=ingest.seq, ingested_at=ingest.time, ingested_by=ingest.actor,
            source=source, media_kind=media.get("kind"), duration_us=media.get("duration_us"),
            sidecar_of=carried.get(row["blake3"]),
        ))
    if findings:
        raise IntegrityFailure(findings)
    for item in items:
        _media_extras(workspace, bag, item, ledger, tools, contact_sheets)
    return items


def _copy_object(store: ObjectStore, row: Mapping[str, Any], bag: BagWriter, file: str,
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
        findings.append(Finding(FindingKind.MISSING, subject, f"the stored object {row['store_key']} is missing"))
        return None, 0
    except (OSError, StorageError) as exc:
        hasher.hexdigests()
        findings.append(Finding(FindingKind.UNREADABLE, subject, f"the stored object {row['store_key']} could not be read: {exc}"))
        return None, 0
    digests = hasher.hexdigests()
    for algorithm in ("blake3", "sha256"):
        if digests[algorithm] != row[algorithm]:
            findings.append(Finding(
                FindingKind.MISMATCH, subject, f"the stored object {row['store_key']} no longer has its recorded {algorithm.upper()}; "
                "run 'custody verify' and 'custody audit'", algorithm, str(row[algorithm]), digests[algorithm],
            ))
            return None, 0
    if hasher.size != row["size"]:
        findings.append(Finding(FindingKind.MISMATCH, subject, "the stored object's size differs from the recorded size",
                                "size", str(row["size"]), str(hasher.size)))
        return None, 0
    return digests, hasher.size


def _media_extras(workspace: Workspace, bag: BagWriter, item: ExportItem, ledger: Ledger, tools: MediaTools, contact_sheets: bool) -> None:
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


def _record(workspace: Workspace, result: ExportResult) -> list[int]:
    settings = workspace.settings
    package = {
        "id": result.package_id,
        "directory": os.path.basename(result.directory),
        "tagmanifest_sha256": result.tagmanifest_sha256,
        "seal_sha256": result.seal_sha256,
        "prepared_seq": result.prepared_seq,
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
