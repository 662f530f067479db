"""An incident as its events say it is now: the replay of ``incident-created``,
``incident-amended``, ``incident-referred`` and ``linked`` events, never stored.

Below both ``incidents`` (which records those events) and ``holds`` (which places an incident's
holds), so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from custody.errors import BadInput

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent, Ledger


@dataclass
class IncidentState:
    """An incident as its events say it is now."""

    incident: str
    fields: dict[str, Any] = field(default_factory=dict)
    created: CustodyEvent | None = None
    history: list[CustodyEvent] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def flags_evidence(self) -> list[str]:
        """Why evidence linked to this incident is a flagged encounter (empty: it is not)."""
        reasons = []
        if self.fields.get("use_of_force"):
            reasons.append("use of force")
        if self.fields.get("detentions"):
            reasons.append("detention")
        if self.fields.get("injuries"):
            reasons.append("injury")
        if self.referrals:
            reasons.append("referred for prosecution")
        return reasons

    def as_dict(self, history: bool = True) -> dict[str, Any]:
        record: dict[str, Any] = {
            "incident": self.incident,
            "fields": self.fields,
            "created": {"seq": self.created.seq, "time": self.created.time, "actor": self.created.actor}
            if self.created
            else None,
            "referrals": self.referrals,
            "evidence": [{"blake3": b3, **info} for b3, info in sorted(self.evidence.items())],
            "flagged_because": self.flags_evidence,
        }
        if history:
            record["history"] = [
                {"seq": e.seq, "time": e.time, "actor": e.actor, "action": e.action, "details": e.details}
                for e in self.history
            ]
        return record


INCIDENT_ACTIONS = ("incident-created", "incident-amended", "incident-referred", "linked")


def incident_state(ledger: Ledger, incident_id: str) -> IncidentState | None:
    """Replay an incident's events; None if it was never created."""
    state = IncidentState(incident_id)
    for event in ledger.events(incident=incident_id, actions=INCIDENT_ACTIONS):
        state.history.append(event)
        if event.action == "incident-created":
            state.created = event
            state.fields = dict(event.details.get("fields", {}))
        elif event.action == "incident-amended":
            for name, change in event.details.get("changes", {}).items():
                if change.get("to") is None:
                    state.fields.pop(name, None)
                else:
                    state.fields[name] = change["to"]
        elif event.action == "incident-referred":
            state.referrals.append({"seq": event.seq, "time": event.time, **event.details})
        elif event.action == "linked":
            evidence = event.subject.get("evidence", "")
            state.evidence[evidence] = {
                k: v for k, v in event.details.items() if k in ("camera", "officer")
            } | {"linked_at": event.time, "seq": event.seq}
    return state if state.created is not None else None


def require_incident(ledger: Ledger, incident_id: str) -> IncidentState:
    state = incident_state(ledger, incident_id)
    if state is None:
        raise BadInput(f"--incident: no incident {incident_id!r}; create it with 'custody incident create {incident_id}'")
    return state


def list_incidents(ledger: Ledger) -> list[IncidentState]:
    ids = sorted({e.subject["incident"] for e in ledger.events(actions=("incident-created",))})
    return [state for state in (incident_state(ledger, i) for i in ids) if state is not None]
