"""Verification step: who acted. Each carried event's SSH signature
(``custody/signatures/event-<seq>.sig``) over its canonical bytes, and the signer's enrollment
and role at that point in the log, by the replay of ``custody.actors.replay`` over the proved
events in order (the package carries every enrollment and revocation before its checkpoint).

Also: every event the ``export-prepared`` event lists as ``signed`` has its signature in the
package; no signature file is about an event the package does not carry; ``allowed_signers`` is
exactly the one the proved roster events give. Each event is judged by the roles in force at its
position, as the package's own ``roles-set`` events give them (before the first, the roles it
records as those before it, ``roles.BEFORE``, or else the shipped roles); ``custody/roles.json`` is only a copy for reading of the roles in force at the
checkpoint, re-derived here, and an edit of it is a finding (it never changes a verdict).

A package whose events carry no ``roles-set`` at all was exported from a ledger made before roles
were recorded in the ledger: as then, its events are judged by its ``roles.json`` (the roles in
force at export, covered by the signed tag manifests like every file), which is then no copy and
no mismatch; without one, by the shipped roles."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from custody.actors.replay import Act, ActorReplay, allowed_signers
from custody.actors.roles import ROLES_SET, SHIPPED_SOURCE, RolePolicy, initial_roles, shipped_roles
from custody.errors import FindingKind
from custody.ledger import sshsig
from custody.package.layout import ALLOWED_SIGNERS, ROLES, SIGNATURES, signature_path
from custody.package.verification import Verification, unique_keys
from custody.package.verify_bindings import as_seq, obj

SEALED_SOURCE = "roles from the package's roles.json (exported before roles were recorded in the ledger)"
SIGNATURE_FILE = re.compile(r"^custody/signatures/event-(0|[1-9][0-9]{0,17})\.sig$")


def check_signers(state: Verification) -> None:
    check = state.begin("who acted: signatures of enrolled people")
    bodies = {seq: obj(json.loads(event.record["leaf"])) for seq, event in sorted(state.events.items())
              if event.body_ok and event.proved}
    first = next(((seq, obj(body.get("details"))) for seq, body in bodies.items() if body.get("action") == ROLES_SET), None)
    recorded = first is not None
    initial = initial_roles(first, (shipped_roles(), SHIPPED_SOURCE)) if recorded else _sealed_roles(state)
    replay = ActorReplay(*initial)
    carried: set[int] = set()
    for seq, body in bodies.items():
        event = state.events[seq]
        carried.add(seq)
        signature = _signature(state, seq)
        for found in replay.check(_act(body, event.record["leaf"]), signature):
            state.finding(found.kind, f"{event.where}", found.message, **found.extra)
    _check_files(state, carried)
    _check_listed(state)
    _check_allowed_signers(state, replay)
    if recorded:
        _check_roles(state, replay)
    source = replay.roles_source if recorded else replay.initial_source
    state.report.actors = {
        "signed": replay.signed,
        "unsigned": len(replay.unsigned),
        "unsigned_events": replay.unsigned,
        "signers": dict(sorted(replay.signers.items())),
        "roles": source,
        "roles_set": replay.roles_set,
        "roles_before": {"source": replay.initial_source, "judged": replay.judged_before},
        "enrolled": [p.as_dict() for p in replay.roster.people],
    }
    check.detail = (f"{replay.signed} event(s) signed by enrolled people ({', '.join(sorted(replay.signers)) or 'nobody'}); "
                    f"{len(replay.unsigned)} NOT signed by an enrolled person; "
                    + (f"each judged by the roles in force at it (at the end: {source})" if recorded else source))


def _act(body: Mapping[str, Any], leaf: str) -> Act:
    def text(name: str) -> str:
        value = body.get(name)
        return value if isinstance(value, str) else ""

    return Act(as_seq(body.get("seq")), text("time"), text("actor"), text("role"), text("action"),
               obj(body.get("details")), leaf.encode("utf-8", "surrogatepass"), obj(body.get("subject")))


def _signature(state: Verification, seq: int) -> str | None:
    name = signature_path(seq)
    if name not in state.entries:
        return None
    return state.read_text(name, limit=sshsig.MAX_ARMORED + 64)


def _check_files(state: Verification, carried: set[int]) -> None:
    for name in sorted(state.entries):
        if not name.startswith(SIGNATURES + "/"):
            continue
        match = SIGNATURE_FILE.match(name)
        if match is None:
            state.finding(FindingKind.UNEXPECTED, name, "is not a signature file (custody/signatures/event-N.sig)")
        elif int(match.group(1)) not in state.events:
            state.finding(FindingKind.UNEXPECTED, name, f"is the signature of event {match.group(1)}, which the package does not carry")


def _check_listed(state: Verification) -> None:
    """Each event the checkpoint's ``export-prepared`` event lists as signed has its signature
    here (removing one would pass it off as an unsigned station event)."""
    if state.checkpoint is None:
        return
    last = state.events.get(state.checkpoint.size - 1)
    if last is None or not (last.body_ok and last.proved):
        return
    details = obj(obj(json.loads(last.record["leaf"])).get("details"))
    listed = details.get("signed", [])
    if not isinstance(listed, list):
        state.finding(FindingKind.MALFORMED, last.where, "its 'signed' is not a list of events")
        return
    for seq in listed:
        if as_seq(seq) < 0:
            state.finding(FindingKind.MALFORMED, last.where, f"lists {seq!r} as a signed event")
        elif signature_path(seq) not in state.entries:
            state.finding(FindingKind.MISSING, signature_path(seq),
                          f"event {seq} was signed by an enrolled person (the export-prepared event {last.record['seq']} "
                          "says so) but its signature is not in the package")


def _check_allowed_signers(state: Verification, replay: ActorReplay) -> None:
    expected = allowed_signers(replay.roster.people)
    present = ALLOWED_SIGNERS in state.entries
    if not present and not replay.roster.people:
        return
    text = state.read_text(ALLOWED_SIGNERS)
    if text is not None and text != expected:
        state.finding(FindingKind.MISMATCH, ALLOWED_SIGNERS,
                      "is not the allowed_signers that the package's enrollment and revocation events give "
                      "(a key was added, removed or its validity changed)")


def _sealed_roles(state: Verification) -> tuple[RolePolicy, str]:
    """The roles of a package with no ``roles-set`` event: its ``roles.json`` (the shipped roles
    without one, or if it is no table of roles, which is a finding)."""
    if ROLES not in state.entries:
        return shipped_roles(), SHIPPED_SOURCE
    text = state.read_text(ROLES)
    if text is None:
        return shipped_roles(), SHIPPED_SOURCE
    try:
        value = obj(json.loads(text, object_pairs_hook=unique_keys))
        policy = RolePolicy(
            {str(k): _names(v) for k, v in obj(value.get("roles")).items()},
            {str(k): _names(v) for k, v in obj(value.get("approvals")).items()},
        )
    except (ValueError, RecursionError) as exc:
        state.finding(FindingKind.MALFORMED, ROLES, f"is not a table of roles ({str(exc)[:200]})")
        return shipped_roles(), SHIPPED_SOURCE
    return policy, SEALED_SOURCE


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("each role's actions must be a list of names")
    return frozenset(value)


def _check_roles(state: Verification, replay: ActorReplay) -> None:
    """``roles.json``, if present, is the roles in force at the checkpoint by the package's own
    ``roles-set`` events (the verdicts above never read it)."""
    if ROLES not in state.entries:
        return
    text = state.read_text(ROLES)
    if text is None:
        return
    try:
        value = json.loads(text, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError) as exc:
        state.finding(FindingKind.MALFORMED, ROLES, f"is not JSON ({str(exc)[:200]})")
        return
    if value != replay.policy.as_dict():
        state.finding(FindingKind.MISMATCH, ROLES,
                      f"is not the roles in force at the checkpoint by the package's events ({replay.roles_source}); "
                      "the events were judged by those")
