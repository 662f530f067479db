"""Named legal holds, placed on the stored objects themselves and recorded per object.

A hold has a name, the authority (order, case number, who), a reason and a scope (an incident,
or listed objects). Placing it sets the legal hold on every object version in scope (S3 legal
hold; the local store's own) and then records a ``hold-placed`` event per object. Releasing
records ``hold-released`` per object and lifts the stored hold only when no other active hold
covers the object; its retention date, if later, still applies. Evidence linked later to an
incident under hold gets the hold when it is linked: a ``hold-inherited`` event naming the
incident and the ``hold-placed`` event of the hold it inherits (``inherits``), an action of the
roles that link, since it is no hold of the linker's choosing (``custody.actors.inherited`` is
the rule that checks it). Every reader here treats it as a placement of that hold, and releasing
the hold releases it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from custody.errors import BadInput, PolicyRefused, RefusedBy
from custody.ledger.database import Ledger
from custody.refusals import stopped_batch
from custody.workspace import Workspace
from storage.errors import RetentionViolation

PLACING = ("hold-placed", "hold-inherited")
"""The actions that put a hold on an object: placed by its own order, or inherited from the
incident the object was linked to."""
HOLD_ACTIONS = (*PLACING, "hold-released")


@dataclass
class LegalHold:
    name: str
    authority: str
    reason: str
    scope: dict[str, Any]
    placed_at: str
    placed_by: str
    objects: set[str] = field(default_factory=set)
    released: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.objects)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "authority": self.authority,
            "reason": self.reason,
            "scope": self.scope,
            "placed_at": self.placed_at,
            "placed_by": self.placed_by,
            "active": self.active,
            "objects": sorted(self.objects),
            "released": self.released,
        }


def all_holds(ledger: Ledger) -> dict[str, LegalHold]:
    """Every hold ever placed, by name, as its events say it is now."""
    holds: dict[str, LegalHold] = {}
    for event in ledger.events(actions=HOLD_ACTIONS):
        name = event.details["hold"]
        blake3 = event.subject.get("evidence", "")
        if event.action in PLACING:
            hold = holds.get(name)
            if hold is None or not hold.active and hold.released:
                hold = holds[name] = LegalHold(
                    name,
                    event.details["authority"],
                    event.details["reason"],
                    dict(event.details.get("scope", {})),
                    event.time,
                    event.actor,
                )
            hold.objects.add(blake3)
        elif name in holds:
            holds[name].objects.discard(blake3)
            if not holds[name].objects:
                holds[name].released.append(
                    {"time": event.time, "by": event.actor, "authority": event.details.get("authority"),
                     "reason": event.details.get("reason")}
                )
    return holds


def active_hold_names(hold_events: Iterable[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """The holds still covering one object, from its ``hold-placed`` / ``hold-inherited`` /
    ``hold-released`` events as (action, details) in sequence order. An unnamed release lifts
    every hold."""
    active: set[str] = set()
    for action, details in hold_events:
        name = str(details.get("hold", ""))
        if action in PLACING:
            active.add(name)
        elif action == "hold-released":
            if name:
                active.discard(name)
            else:
                active.clear()
    return active


def holds_on(ledger: Ledger, blake3: str) -> list[str]:
    """Names of the active holds covering one object, from the ledger."""
    events = ledger.events(evidence=blake3, actions=HOLD_ACTIONS)
    return sorted(active_hold_names((event.action, event.details) for event in events))


def _set_stored_hold(workspace: Workspace, blake3: str, on: bool) -> None:
    row = workspace.ledger.evidence_row(blake3)
    if row is None:
        raise BadInput(f"{blake3}: not a preserved object")
    info = workspace.store.set_legal_hold(row["store_key"], row["version"], on)
    if info.legal_hold != on:
        raise PolicyRefused(f"{blake3}: the store did not confirm the legal hold {'on' if on else 'off'}",
                            refused_by=RefusedBy.STORE, subject={"evidence": blake3})


def _record(workspace: Workspace, action: str, hold: str, blake3: str, details: dict[str, Any], incident: str | None) -> None:
    subject = {"evidence": blake3}
    if incident:
        subject["incident"] = incident
    workspace.ledger.append(
        action,
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject=subject,
        details={"hold": hold, **details},
    )


def place_hold(
    workspace: Workspace,
    name: str,
    *,
    authority: str,
    reason: str,
    incident: str | None = None,
    objects: Sequence[str] = (),
) -> LegalHold:
    """Place hold ``name`` on every object in scope (the incident's evidence, or ``objects``)."""
    from custody.cases.incident_state import require_incident

    for label, value in (("NAME", name), ("--authority", authority), ("--reason", reason)):
        if not value or not value.strip():
            raise BadInput(f"{label}: must not be empty")
    if bool(incident) == bool(objects):
        raise BadInput("give either --incident ID or one or more REF, not both")
    existing = all_holds(workspace.ledger).get(name)
    if existing is not None and existing.active and existing.authority != authority:
        raise BadInput(f"hold {name!r} is already active under authority {existing.authority!r}; choose another name")
    scope: dict[str, Any]
    if incident:
        state = require_incident(workspace.ledger, incident)
        targets = sorted(state.evidence)
        scope = {"incident": incident}
    else:
        targets = sorted(set(objects))
        scope = {"objects": targets}
    for index, blake3 in enumerate(targets):
        try:
            _set_stored_hold(workspace, blake3, True)
        except (PolicyRefused, RetentionViolation) as exc:
            if not index:
                raise
            raise stopped_batch(workspace, exc, targets[:index], len(targets)) from exc
        _record(workspace, "hold-placed", name, blake3, {"authority": authority, "reason": reason, "scope": scope}, incident)
    if not targets and incident:
        workspace.ledger.append(
            "hold-placed",
            actor=workspace.settings.actor,
            role=workspace.settings.role,
            subject={"incident": incident},
            details={"hold": name, "authority": authority, "reason": reason, "scope": scope},
        )
    workspace.seal()
    return all_holds(workspace.ledger).get(name) or LegalHold(name, authority, reason, scope, "", "")


def incident_holds(ledger: Ledger, incident: str) -> list[LegalHold]:
    """Holds whose scope is ``incident`` and that have not been released."""
    holds = all_holds(ledger)
    return [holds[name] for name in sorted(incident_hold_origins(ledger, incident)) if name in holds]


def incident_hold_origins(ledger: Ledger, incident: str) -> dict[str, int]:
    """Each hold over ``incident`` not released as a whole, with the first ``hold-placed`` event
    of its placement in force (what a hold inherited from it names)."""
    placed: dict[str, int] = {}
    for event in ledger.events(incident=incident, actions=("hold-placed", "hold-released")):
        scope = event.details.get("scope", {})
        if not isinstance(scope, dict) or scope.get("incident") != incident:
            continue
        if event.action == "hold-placed":
            placed.setdefault(event.details["hold"], event.seq)
        elif event.details.get("whole_hold"):
            placed.pop(event.details["hold"], None)
    return placed


def apply_incident_holds(workspace: Workspace, incident: str, blake3s: Sequence[str]) -> list[str]:
    """Give newly linked objects the incident's active holds (``hold-inherited``, naming the
    ``hold-placed`` event it inherits); returns the hold names."""
    origins = incident_hold_origins(workspace.ledger, incident)
    names = []
    for hold in incident_holds(workspace.ledger, incident):
        for blake3 in blake3s:
            if hold.name in holds_on(workspace.ledger, blake3):
                continue
            _set_stored_hold(workspace, blake3, True)
            _record(
                workspace,
                "hold-inherited",
                hold.name,
                blake3,
                {"authority": hold.authority, "reason": hold.reason, "scope": {"incident": incident},
                 "incident": incident, "inherits": origins[hold.name]},
                incident,
            )
        names.append(hold.name)
    return names


def release_hold(workspace: Workspace, name: str, *, authority: str, reason: str, request: int | None = None) -> LegalHold:
    """Release hold ``name`` everywhere; the stored hold stays where another hold applies.
    ``request``: the approved request this carries out, named in each ``hold-released`` event."""
    for label, value in (("--authority", authority), ("--reason", reason)):
        if not value or not value.strip():
            raise BadInput(f"{label}: must not be empty")
    hold = all_holds(workspace.ledger).get(name)
    scope_incident = hold.scope.get("incident") if hold else None
    if hold is None or (not hold.active and not scope_incident):
        raise BadInput(f"no active legal hold named {name!r}; see 'custody hold list'")
    approved = {} if request is None else {"request": request}
    targets = sorted(hold.objects)
    for index, blake3 in enumerate(targets):
        others = [other for other in holds_on(workspace.ledger, blake3) if other != name]
        if not others:
            try:
                _set_stored_hold(workspace, blake3, False)
            except (PolicyRefused, RetentionViolation) as exc:
                if not index:
                    raise
                raise stopped_batch(workspace, exc, targets[:index], len(targets)) from exc
        _record(
            workspace,
            "hold-released",
            name,
            blake3,
            {"authority": authority, "reason": reason, "scope": hold.scope, "whole_hold": True,
             "still_held_by": others, **approved},
            scope_incident,
        )
    if not hold.objects and scope_incident:
        workspace.ledger.append(
            "hold-released",
            actor=workspace.settings.actor,
            role=workspace.settings.role,
            subject={"incident": scope_incident},
            details={"hold": name, "authority": authority, "reason": reason, "scope": hold.scope, "whole_hold": True,
                     **approved},
        )
    workspace.seal()
    released = all_holds(workspace.ledger)[name]
    return released
