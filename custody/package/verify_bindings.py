"""Verification step 7: each payload file bound to its proved ingest event and to a ``linked``
event of the incident, each packet list to the SHA-256 its ingest event recorded, and the
incident record's history to the events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from custody.package.layout import EVENTS, INCIDENT, ITEMS
from custody.package.verification import Verification


def _claimed(state: Verification) -> list[dict[str, Any]]:
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


def _as_seq(value: Any) -> int:
    """An event number from untrusted JSON (-1, which no event has, for anything else)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def check_bindings(state: Verification) -> None:
    check = state.begin("payload bound to custody events")
    claimed = _claimed(state)
    by_seq = {body["seq"]: body for body in claimed}
    incident = state.report.incident
    items_text = state.read_text(ITEMS)
    items: list[Any] = []
    if items_text is not None:
        try:
            loaded = json.loads(items_text)
        except ValueError:
            state.finding("malformed", ITEMS, "is not JSON")
        else:
            if isinstance(loaded, list) and all(isinstance(i, dict) for i in loaded):
                items = loaded
            else:
                state.finding("malformed", ITEMS, "is not a list of items")
    described: set[str] = set()
    for item in items:
        _check_item(state, item, by_seq, claimed, incident)
        described.add(str(item.get("file")))
    for name in sorted(set(state.payload) - described):
        state.finding("unrecorded", name, f"is not described in {ITEMS}, so no custody event vouches for it")
    _check_incident(state, by_seq, incident)
    check.detail = f"{len(described)} item(s) against {len(claimed)} event(s)"


def _check_item(state: Verification, item: Mapping[str, Any], by_seq: Mapping[int, dict[str, Any]],
                claimed: list[dict[str, Any]], incident: str | None) -> None:
    name = str(item.get("file"))
    if name not in state.payload:
        if name not in state.unreadable and not any(f.subject == name for f in state.report.findings):
            state.finding("missing", name, f"described in {ITEMS} but not in the package")
        return
    digests, size = state.payload[name]
    ingest = by_seq.get(_as_seq(item.get("ingest_seq")))
    details: Mapping[str, Any] = ingest.get("details", {}) if ingest else {}
    if ingest is None or ingest.get("action") != "ingested":
        state.finding("unrecorded", name, f"its ingest event {item.get('ingest_seq')} is not in {EVENTS}")
    else:
        for label, recorded, found in (
            ("blake3", ingest.get("subject", {}).get("evidence"), digests["blake3"]),
            ("sha256", details.get("sha256"), digests["sha256"]),
            ("size", details.get("size"), size),
        ):
            if recorded != found:
                state.finding(
                    "mismatch", name, f"its {label} differs from the one recorded at ingest (event {ingest['seq']})",
                    label, str(recorded), str(found),
                )
    blake3_hex = str(ingest.get("subject", {}).get("evidence")) if ingest else digests["blake3"]
    if incident and not any(
        b.get("action") == "linked" and b.get("subject", {}).get("evidence") == blake3_hex
        and b.get("subject", {}).get("incident") == incident
        for b in claimed
    ):
        state.finding("unrecorded", name, f"no 'linked' event in {EVENTS} ties it to incident {incident}")
    packets = item.get("packets")
    if packets:
        recorded = ((details.get("attachments") or {}).get("packets") or {}).get("sha256")
        data = _read_bytes(state, str(packets))
        if data is not None:
            found_sha = hashlib.sha256(data).hexdigest()
            if recorded is None:
                state.finding("unrecorded", str(packets), "its ingest event recorded no packet list")
            elif found_sha != recorded:
                state.finding(
                    "mismatch", str(packets),
                    f"its SHA-256 is not the one recorded at ingest (event {item.get('ingest_seq')})",
                    "sha256", recorded, found_sha,
                )


def _read_bytes(state: Verification, name: str) -> bytes | None:
    if ".." in name.split("/") or name.startswith("/"):
        state.finding("malformed", ITEMS, f"names {name!r}, outside the package")
        return None
    try:
        return (state.root / name).read_bytes()
    except OSError as exc:
        if not any(f.subject == name for f in state.report.findings):
            state.finding("missing" if isinstance(exc, FileNotFoundError) else "unreadable", name,
                          f"cannot be read: {exc.strerror}")
        return None


def _check_incident(state: Verification, by_seq: Mapping[int, dict[str, Any]], incident: str | None) -> None:
    text = state.read_text(INCIDENT)
    if text is None:
        return
    try:
        record = json.loads(text)
    except ValueError:
        state.finding("malformed", INCIDENT, "is not JSON")
        return
    if not isinstance(record, dict):
        state.finding("malformed", INCIDENT, "is not an incident record")
        return
    if incident is not None and record.get("incident") != incident:
        state.finding("mismatch", INCIDENT, f"is about {record.get('incident')!r}, not the package's {incident!r}")
    for entry in record.get("history") or []:
        if not isinstance(entry, dict):
            state.finding("malformed", INCIDENT, "has a history entry that is not an object")
            continue
        body = by_seq.get(_as_seq(entry.get("seq")))
        if body is None:
            state.finding("unrecorded", INCIDENT, f"its history names event {entry.get('seq')}, which is not in {EVENTS}")
            continue
        for name in ("time", "actor", "action", "details"):
            if entry.get(name) != body.get(name):
                state.finding("mismatch", INCIDENT,
                              f"its history entry for event {body['seq']} differs from the event ({name})")
                break
