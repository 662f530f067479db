"""Verification step 9: completeness (``docs/design-packages.md``, "Complete packages").

The last event of the package's checkpoint must be this package's ``export-prepared`` event,
proved like every other. Its ``events`` lists ``[seq, hash]`` of every event the package must
hold, and its ``objects`` every object linked to the incident (and every sidecar of an included
one, custody.evidence.sidecars): ``included`` (a payload file
bound to it), ``disposed`` (its proved disposal event is in the package) or ``excluded`` (left
out by the sender's selection; reported, not a finding). Anything listed and absent is a
finding naming it."""

from __future__ import annotations

from typing import Any

from custody.errors import FindingKind
from custody.package.layout import EVENTS, ITEMS, PREPARED
from custody.package.verification import Verification
from custody.package.verify_bindings import as_seq, claimed, obj


def check_complete(state: Verification) -> None:
    check = state.begin("completeness")
    if state.checkpoint is None:
        check.detail = "not checked (no verified checkpoint)"
        return
    last = state.checkpoint.size - 1
    event = state.events.get(last)
    body: dict[str, Any] = {}
    if event is not None and event.proved and event.body_ok:
        body = next((b for b in claimed(state) if b["seq"] == last), {})
    details = obj(body.get("details"))
    if (body.get("action") != PREPARED or obj(body.get("subject")).get("incident") != state.report.incident
            or details.get("package") != state.report.package_id):
        state.finding(FindingKind.INCOMPLETE, EVENTS,
                      f"the checkpoint's last event ({last}) is not this package's proved '{PREPARED}' event, "
                      "so nothing shows that the package holds everything it should")
        return
    listed = details.get("events")
    objects = details.get("objects")
    if not isinstance(listed, list) or not isinstance(objects, dict):
        state.finding(FindingKind.MALFORMED, f"{EVENTS} (event {last})", f"the '{PREPARED}' event lists no events or objects")
        return
    wanted: set[int] = {last}
    for entry in listed:
        if not (isinstance(entry, list) and len(entry) == 2 and as_seq(entry[0]) >= 0 and isinstance(entry[1], str)):
            state.finding(FindingKind.MALFORMED, f"{EVENTS} (event {last})", f"lists {entry!r}, not [seq, hash]")
            continue
        seq, digest = entry
        wanted.add(seq)
        held = state.events.get(seq)
        if held is None:
            state.finding(FindingKind.MISSING, f"event {seq}",
                          f"the '{PREPARED}' event {last} lists it (hash {digest[:16]}...) but it is not in {EVENTS} "
                          "(left out of the package)")
        elif held.record.get("hash") != digest or not held.proved:
            state.finding(FindingKind.MISMATCH, held.where, f"is not the proved event {seq} that the '{PREPARED}' event lists")
    for seq in sorted(set(state.events) - wanted):
        state.finding(FindingKind.UNEXPECTED, state.events[seq].where, f"is not one of the events the '{PREPARED}' event lists")
    items = {str(i.get("blake3")): i for i in state.items}
    bodies = claimed(state)
    for blake3, status in sorted(objects.items()):
        if status == "included":
            item = items.get(blake3)
            if item is None or item.get("file") not in state.payload:
                state.finding(FindingKind.MISSING, f"object {blake3}",
                              f"linked to incident {state.report.incident} and exported, but no file of the package "
                              f"holds it (left out of data/ and {ITEMS})")
        elif status == "disposed":
            if not any(b.get("action") == "disposed" and obj(b.get("subject")).get("evidence") == blake3 for b in bodies):
                state.finding(FindingKind.MISSING, f"object {blake3}", f"listed as disposed of, but its disposal event is not in {EVENTS}")
        elif status == "excluded":
            state.report.excluded.append(blake3)
        else:
            state.finding(FindingKind.MALFORMED, f"{EVENTS} (event {last})", f"gives object {blake3} the unknown status {status!r}")
    for blake3 in sorted(set(items) - {b for b, s in objects.items() if s == "included"}):
        state.finding(FindingKind.UNEXPECTED, ITEMS, f"describes object {blake3}, which the '{PREPARED}' event does not include")
    if not check.findings:
        state.report.complete = True
    excluded = f"; {len(state.report.excluded)} linked object(s) left out by the sender's selection" \
        if state.report.excluded else ""
    check.detail = (f"{len(wanted)} event(s) and {len(objects)} linked object(s) listed by event {last}, "
                    f"the checkpoint's last{excluded}")
