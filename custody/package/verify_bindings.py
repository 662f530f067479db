"""Verification step 7: each payload file bound to its proved ingest event and to a ``linked``
event of the incident, each packet list to the SHA-256 its ingest event recorded, and the
incident record's history to the events. Every value read from the package is type-checked:
a wrong type is a finding, never an exception."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from custody.errors import FindingKind
from custody.package.layout import EVENTS, INCIDENT, ITEMS
from custody.package.verification import Verification


def obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_seq(value: Any) -> int:
    """An event number from untrusted JSON (-1, which no event has, for anything else)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def claimed(state: Verification) -> list[dict[str, Any]]:
    """The canonical bodies of the events, in sequence order. Those whose proofs failed are
    findings already; binding the payload to them too reports the root cause once."""
    bodies = []
    for seq in sorted(state.events):
        event = state.events[seq]
        if event.body_ok:
            body = json.loads(event.record["leaf"])
            if isinstance(body, dict):
                bodies.append(body)
    return bodies


def check_bindings(state: Verification) -> None:
    check = state.begin("payload bound to custody events")
    bodies = claimed(state)
    by_seq = {body["seq"]: body for body in bodies}
    incident = state.report.incident
    loaded = state.read_json(ITEMS)
    if loaded is not None:
        if isinstance(loaded, list) and all(isinstance(i, dict) and isinstance(i.get("file"), str) for i in loaded):
            state.items = loaded
        else:
            state.finding(FindingKind.MALFORMED, ITEMS, "is not a list of items, each with its 'file'")
    described: set[str] = set()
    for item in state.items:
        if item["file"] in described:
            state.finding(FindingKind.MALFORMED, ITEMS, f"describes {item['file']!r} twice (ambiguous)")
            continue
        _check_item(state, item, by_seq, bodies, incident)
        described.add(item["file"])
    for name in sorted(set(state.payload) - described):
        state.finding(FindingKind.UNRECORDED, name, f"is not described in {ITEMS}, so no custody event vouches for it")
    _check_incident(state, by_seq, incident)
    check.detail = f"{len(described)} item(s) against {len(bodies)} event(s)"


def _check_item(state: Verification, item: Mapping[str, Any], by_seq: Mapping[int, dict[str, Any]],
                bodies: list[dict[str, Any]], incident: str | None) -> None:
    name = item["file"]
    if name not in state.payload:
        if name not in state.unreadable and not state.has_finding(name):
            state.finding(FindingKind.MISSING, name, f"described in {ITEMS} but not in the package")
        return
    digests, size = state.payload[name]
    ingest = by_seq.get(as_seq(item.get("ingest_seq")))
    details = obj(ingest.get("details")) if ingest else {}
    if ingest is None or ingest.get("action") != "ingested":
        state.finding(FindingKind.UNRECORDED, name, f"its ingest event {item.get('ingest_seq')!r} is not in {EVENTS}")
    else:
        for label, recorded, found in (
            ("blake3", obj(ingest.get("subject")).get("evidence"), digests["blake3"]),
            ("sha256", details.get("sha256"), digests["sha256"]),
            ("size", details.get("size"), size),
        ):
            if recorded != found:
                state.finding(
                    FindingKind.MISMATCH, name, f"its {label} differs from the one recorded at ingest (event {ingest['seq']})",
                    label, str(recorded), str(found),
                )
    blake3_hex = str(obj(ingest.get("subject")).get("evidence")) if ingest else digests["blake3"]
    if incident and not _linked(bodies, blake3_hex, incident) and not any(
        b.get("action") == "sidecar-linked" and obj(obj(b.get("details")).get("sidecar")).get("blake3") == blake3_hex
        and _linked(bodies, obj(b.get("subject")).get("evidence"), incident)
        for b in bodies
    ):
        state.finding(FindingKind.UNRECORDED, name, f"no 'linked' event in {EVENTS} ties it to incident {incident}, "
                      "nor a 'sidecar-linked' event to a recording linked to it")
    packets = item.get("packets")
    if packets is None:
        return
    if not isinstance(packets, str):
        state.finding(FindingKind.MALFORMED, ITEMS, f"the packet list of {name} is not a path")
        return
    recorded = obj(obj(details.get("attachments")).get("packets")).get("sha256")
    data = state.read_bytes(packets)
    if data is None:
        return
    found_sha = hashlib.sha256(data).hexdigest()
    if recorded is None:
        state.finding(FindingKind.UNRECORDED, packets, "its ingest event recorded no packet list")
    elif found_sha != recorded:
        state.finding(
            FindingKind.MISMATCH, packets, f"its SHA-256 is not the one recorded at ingest (event {item.get('ingest_seq')})",
            "sha256", str(recorded), found_sha,
        )


def _linked(bodies: list[dict[str, Any]], blake3_hex: Any, incident: str) -> bool:
    return any(
        b.get("action") == "linked" and obj(b.get("subject")).get("evidence") == blake3_hex
        and obj(b.get("subject")).get("incident") == incident
        for b in bodies
    )


def _check_incident(state: Verification, by_seq: Mapping[int, dict[str, Any]], incident: str | None) -> None:
    record = state.read_json(INCIDENT)
    if record is None:
        return
    if not isinstance(record, dict):
        state.finding(FindingKind.MALFORMED, INCIDENT, "is not an incident record")
        return
    if incident is not None and record.get("incident") != incident:
        state.finding(FindingKind.MISMATCH, INCIDENT, f"is about {record.get('incident')!r}, not the package's {incident!r}")
    history = record.get("history") or []
    if not isinstance(history, list):
        state.finding(FindingKind.MALFORMED, INCIDENT, "its history is not a list")
        return
    for entry in history:
        if not isinstance(entry, dict):
            state.finding(FindingKind.MALFORMED, INCIDENT, "has a history entry that is not an object")
            continue
        body = by_seq.get(as_seq(entry.get("seq")))
        if body is None:
            state.finding(FindingKind.UNRECORDED, INCIDENT, f"its history names event {entry.get('seq')!r}, which is not in {EVENTS}")
            continue
        for field in ("time", "actor", "action", "details"):
            if entry.get(field) != body.get(field):
                state.finding(FindingKind.MISMATCH, INCIDENT,
                              f"its history entry for event {body['seq']} differs from the event ({field})")
                break
