"""Incidents: encounters with federal immigration agents, documented as the order requires.

Every change is a ledger event (``incident-created``, ``incident-amended``, ``incident-referred``,
``linked``); an incident's current state is derived by replaying its events, never stored
(``custody.cases.incident_state``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TYPE_CHECKING

from custody import times
from custody.cases.incident_state import IncidentState, incident_state, require_incident
from custody.errors import BadInput
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent

CREDENTIALS = ("verified", "refused", "not-attempted", "not-applicable")
INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"--{name.replace('_', '-')}: must not be empty")
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise BadInput(f"--{name.replace('_', '-')}: contains control characters")
    return value.strip()


def _texts(name: str, value: Any) -> list[str]:
    return [_text(name, item) for item in value]


def _rfc3339(name: str, value: Any) -> str:
    text = _text(name, value)
    try:
        times.parse(text)
    except ValueError as exc:
        raise BadInput(f"--{name.replace('_', '-')}: {text!r}: {exc}") from exc
    return text


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"--{name.replace('_', '-')}: must be a whole number, 0 or more")
    return value


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in options:
            raise BadInput(f"--{name.replace('_', '-')}: {value!r} is not one of {', '.join(options)}")
        return str(value)

    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"--{name.replace('_', '-')}: must be true or false")
    return value


FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "occurred_at": _rfc3339,
    "location": _text,
    "agencies": _texts,
    "supervisor_name": _text,
    "supervisor_badge": _text,
    "credentials": _choice(CREDENTIALS),
    "use_of_force": _text,
    "detentions": _count,
    "injuries": _text,
    "ems_summoned": _flag,
    "aid_rendered": _flag,
    "violations": _texts,
    "violation_categories": _texts,
    "district": _text,
    "report_number": _text,
    "note": _text,
}
"""The documented fields of an incident and their validators (the order's list)."""


def validate_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every given field; ``BadInput`` naming the field for the first bad one."""
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if name not in FIELDS:
            raise BadInput(f"unknown incident field {name!r}")
        clean[name] = FIELDS[name](name, value)
    return clean


def _check_violation_categories(workspace: Workspace, fields: dict[str, Any]) -> None:
    """Tags of alleged violations must name current categories (``custody.cases.violations``)."""
    if "violation_categories" in fields:
        from custody.cases.violations import check_categories, load_taxonomy

        fields["violation_categories"] = check_categories(
            fields["violation_categories"], load_taxonomy(workspace.settings.config)
        )


def check_incident_id(incident_id: str) -> str:
    if not INCIDENT_ID.match(incident_id):
        raise BadInput(
            f"incident id {incident_id!r}: use 1-64 letters, digits and . _ : / - (starting with a letter or digit)"
        )
    return incident_id


def create_incident(workspace: Workspace, incident_id: str, values: Mapping[str, Any]) -> IncidentState:
    check_incident_id(incident_id)
    fields = validate_fields({k: v for k, v in values.items() if v not in (None, [], ())})
    _check_violation_categories(workspace, fields)
    if incident_state(workspace.ledger, incident_id) is not None:
        raise BadInput(f"incident {incident_id!r} already exists; use 'custody incident amend {incident_id}'")
    workspace.ledger.append(
        "incident-created",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject={"incident": incident_id},
        details={"fields": fields},
    )
    workspace.seal()
    state = incident_state(workspace.ledger, incident_id)
    assert state is not None
    return state


def amend_incident(workspace: Workspace, incident_id: str, values: Mapping[str, Any], reason: str) -> IncidentState:
    """Record a correction naming every field changed, its old and new value, and why."""
    state = require_incident(workspace.ledger, incident_id)
    reason = _text("reason", reason)
    given = {k: v for k, v in values.items() if v not in (None, [], ())}
    if not given:
        raise BadInput("nothing to amend: give at least one field option")
    fields = validate_fields(given)
    _check_violation_categories(workspace, fields)
    changes = {
        name: {"from": state.fields.get(name), "to": value}
        for name, value in fields.items()
        if state.fields.get(name) != value
    }
    if not changes:
        raise BadInput("every given field already has that value; nothing recorded")
    workspace.ledger.append(
        "incident-amended",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject={"incident": incident_id},
        details={"changes": changes, "reason": reason},
    )
    _reflag(workspace, incident_id)
    workspace.seal()
    after = incident_state(workspace.ledger, incident_id)
    assert after is not None
    return after


def refer_incident(workspace: Workspace, incident_id: str, to: str, reference: str, felony: bool) -> IncidentState:
    require_incident(workspace.ledger, incident_id)
    workspace.ledger.append(
        "incident-referred",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject={"incident": incident_id},
        details={"to": _text("to", to), "reference": _text("reference", reference), "felony": felony},
    )
    _reflag(workspace, incident_id)
    workspace.seal()
    after = incident_state(workspace.ledger, incident_id)
    assert after is not None
    return after


def _reflag(workspace: Workspace, incident_id: str) -> None:
    """Evidence already linked to an incident that has just become a flagged encounter is
    flagged now."""
    from custody.cases.retention import flag_objects

    state = incident_state(workspace.ledger, incident_id)
    if state is not None and state.flags_evidence and state.evidence:
        flag_objects(
            workspace, sorted(state.evidence), reason=f"incident {incident_id}: " + ", ".join(state.flags_evidence), seal=False
        )


def link_evidence(
    workspace: Workspace,
    blake3: str,
    incident_id: str,
    *,
    camera: str | None = None,
    officer: str | None = None,
    seal: bool = True,
) -> CustodyEvent:
    """Link a preserved object to an incident; flag it if the incident is a flagged encounter,
    and place the incident's active legal holds on it."""
    from custody.cases.holds import apply_incident_holds
    from custody.cases.retention import flag_objects

    state = require_incident(workspace.ledger, incident_id)
    if workspace.ledger.evidence_row(blake3) is None:
        raise BadInput(f"{blake3}: not a preserved object")
    details: dict[str, Any] = {}
    if camera:
        details["camera"] = _text("camera", camera)
    if officer:
        details["officer"] = _text("officer", officer)
    event: CustodyEvent = workspace.ledger.append(
        "linked",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject={"evidence": blake3, "incident": incident_id},
        details=details,
    )
    if state.flags_evidence:
        flag_objects(workspace, [blake3], reason=f"incident {incident_id}: " + ", ".join(state.flags_evidence), seal=False)
    apply_incident_holds(workspace, incident_id, [blake3])
    if seal:
        workspace.seal()
    return event
