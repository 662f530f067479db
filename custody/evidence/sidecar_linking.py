"""``custody link --sidecar FILE --to REF``: link a sidecar to a preserved recording after
ingest, preserving the sidecar first if its bytes are not (custody.evidence.sidecars)."""

from __future__ import annotations

from typing import Any

from custody.errors import BadInput
from custody.evidence.sidecars import link_sidecar
from custody.ledger.canonical import printable_path


def link_file(workspace: Any, sidecar_ref: str, recording_ref: str, **ingest_options: Any) -> dict[str, Any]:
    """``custody link --sidecar FILE --to REF``: link the sidecar (a preserved object's prefix,
    or a file, preserved first if its bytes are not) to the preserved recording ``REF``, and
    seal. The link, the sidecar's BLAKE3, and whether it was ingested by this call."""
    from custody.evidence.ingest import ingest_paths
    from custody.evidence.references import resolve, resolve_preserved

    recording = resolve_preserved(workspace.ledger, recording_ref, given_as="--to", advice="ingest the recording first")
    sidecar = resolve(workspace.ledger, sidecar_ref)
    blake3: str | None = sidecar.blake3
    ingested = None
    if not blake3 or workspace.ledger.evidence_row(blake3) is None:
        if sidecar.path is None:
            raise BadInput(f"--sidecar {printable_path(sidecar_ref)}: not a preserved object")
        results = ingest_paths(workspace, [sidecar.path], **ingest_options)
        done = [r for r in results if r.blake3 and r.status in ("recorded", "already-stored")]
        if not done:
            reasons = "; ".join(str(r.reason) for r in results)
            raise BadInput(f"--sidecar {printable_path(sidecar_ref)}: could not be preserved ({reasons}); nothing linked")
        ingested = done[0]
        blake3 = done[0].blake3
    assert blake3 is not None
    if blake3 == recording.blake3:
        raise BadInput("--sidecar and --to name the same object; a file cannot be its own sidecar")
    row = dict(workspace.ledger.evidence_row(blake3) or {})
    first = next(workspace.ledger.events(evidence=blake3, start=row["first_seq"]))
    row["name"] = (first.details.get("source") or {}).get("name", "")
    if sidecar.path is not None:
        row["path"] = sidecar.path
    event = link_sidecar(workspace, recording.blake3, row, how="link")
    workspace.seal()
    return {
        "recording": recording.blake3, "sidecar": blake3, "seq": event.seq if event is not None else None,
        "already_linked": event is None, "ingested": ingested.as_dict() if ingested is not None else None,
    }
