"""What is known of a preserved object: digests, store location, retention, acquisitions, media,
parent and derivatives."""

from __future__ import annotations

from typing import Any

from custody import times
from custody.ledger.database import Ledger
from custody.evidence.references import resolve_preserved
from custody.evidence.sidecars import recordings_described_by, sidecars_of
from custody.workspace import Workspace
from storage.base import ObjectStore
from storage.errors import StorageError


def _parent(derived_from: Any) -> dict[str, Any] | None:
    if not isinstance(derived_from, dict):
        return None
    return {k: derived_from.get(k) for k in ("parent", "parent_sha256", "tool", "params")}


def derivatives_of(ledger: Ledger, blake3: str) -> list[dict[str, Any]]:
    """Objects whose ingest event says they were derived from ``blake3``, oldest first
    (a scan of every ``ingested`` event)."""
    return [
        {
            "blake3": e.subject.get("evidence"),
            "seq": e.seq,
            "time": e.time,
            "actor": e.actor,
            "tool": e.details["derived_from"].get("tool"),
            "params": e.details["derived_from"].get("params"),
        }
        for e in ledger.events(actions=("ingested",))
        if isinstance(e.details.get("derived_from"), dict) and e.details["derived_from"].get("parent") == blake3
    ]


def describe_object(ledger: Ledger, store: ObjectStore, ref: str) -> dict[str, Any]:
    row = resolve_preserved(ledger, ref).row
    history = [e for e in ledger.events(evidence=row["blake3"])]
    first = next(e for e in history if e.seq == row["first_seq"])
    acquisitions = [
        {"seq": e.seq, "time": e.time, "actor": e.actor, "action": e.action, "source": e.details.get("source"),
         **({"declared": e.details["declared"]} if isinstance(e.details.get("declared"), dict) else {})}
        for e in history
        if e.action in ("ingested", "acquired")
    ]
    record: dict[str, Any] = {
        "blake3": row["blake3"],
        "sha256": row["sha256"],
        "size": row["size"],
        "store_key": row["store_key"],
        "version": row["version"],
        "store": store.describe(),
        "first_ingest": {"seq": first.seq, "time": first.time, "actor": first.actor},
        "acquisitions": acquisitions,
        "recorded_retention": first.details.get("retention"),
        "events": len(history),
        "media": first.details.get("media"),
        "recorded": first.details.get("recorded"),
        "content_credentials": first.details.get("content_credentials"),
        "attachments": first.details.get("attachments") or {},
        "parent": _parent(first.details.get("derived_from")),
        "derivatives": derivatives_of(ledger, row["blake3"]),
        "sidecars": sidecars_of(ledger, row["blake3"]),
        "sidecar_of": recordings_described_by(ledger, row["blake3"]),
    }
    try:
        info = store.stat(row["store_key"], row["version"])
        record["retention"] = (
            {"mode": info.retention.mode, "until": times.format_utc(info.retention.until)} if info.retention else None
        )
        record["legal_hold"] = info.legal_hold
        record["store_status"] = "present"
    except StorageError as exc:
        record["retention"] = None
        record["legal_hold"] = None
        record["store_status"] = f"unavailable: {exc}"
    return record


def show_object(workspace: Workspace, ref: str) -> dict[str, Any]:
    """Describe an object and record that it was viewed (``viewed`` event)."""
    from custody.cases.holds import holds_on
    from custody.cases.retention import object_retention

    record = describe_object(workspace.ledger, workspace.store, ref)
    retention = object_retention(workspace.ledger, record["blake3"])
    record["category"] = retention.category
    record["recorded_retention"] = retention.as_dict()
    record["holds"] = holds_on(workspace.ledger, record["blake3"])
    record["incidents"] = sorted(
        {e.subject["incident"] for e in workspace.ledger.events(evidence=record["blake3"], actions=("linked",))}
    )
    workspace.ledger.append(
        "viewed",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject={"evidence": record["blake3"]},
        details={"what": "show"},
    )
    workspace.seal()
    return record
