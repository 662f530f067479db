"""Inherited legal holds: the hold an object gets when it is linked to an incident under hold.

Linking evidence to an incident whose legal hold is in force puts that hold on the object too.
That is not a hold of the linker's choosing, so it is its own action, ``hold-inherited``, given
to the roles that link (``roles.toml``), while ``hold-placed`` stays with those who place holds.
A ``hold-inherited`` event's subject is the object and the incident; its details name the hold
(``hold``, with its ``authority``, ``reason`` and ``scope``), the incident (``incident``) and the
``hold-placed`` event of the incident's hold it inherits (``inherits``, a sequence number).

It must follow from that hold: ``inherits`` is a ``hold-placed`` event of the same hold whose
scope is that incident, earlier in the log, not released as a whole since (a ``hold-released``
event of that hold over that incident with ``whole_hold``). The same rule refuses such an event
at append time (``custody.actors.identity``) and is a finding in the log's replay
(``custody.actors.replay``), where only a ``hold-placed`` event that passed the other checks
counts. Every reader of holds treats an inherited hold as a hold (``PLACING``), and releasing the
incident's hold releases it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # verify-package replays without the database
    from custody.ledger.database import CustodyEvent, Ledger

PLACED = "hold-placed"
INHERITED = "hold-inherited"
RELEASED = "hold-released"
PLACING = (PLACED, INHERITED)
"""The actions that put a hold on an object."""


def _incident_scope(details: Mapping[str, Any]) -> str | None:
    scope = details.get("scope")
    incident = scope.get("incident") if isinstance(scope, Mapping) else None
    return incident if isinstance(incident, str) and incident else None


@dataclass
class IncidentHoldLog:
    """The holds over incidents in force as the log is read: for each (incident, hold), the
    ``hold-placed`` events of its placement that is in force."""

    in_force: dict[tuple[str, str], set[int]] = field(default_factory=dict)

    def see(self, seq: int, action: str, details: Mapping[str, Any], passed: bool = True) -> None:
        """Take one event into account (``passed``: it passed the other checks; a placement
        that did not counts for nothing)."""
        incident = _incident_scope(details)
        hold = details.get("hold")
        if incident is None or not isinstance(hold, str):
            return
        if action == PLACED and passed:
            self.in_force.setdefault((incident, hold), set()).add(seq)
        elif action == RELEASED and details.get("whole_hold"):
            self.in_force.pop((incident, hold), None)

    def problem(self, subject: Mapping[str, Any], details: Mapping[str, Any]) -> str | None:
        """Why a ``hold-inherited`` event with ``subject`` and ``details`` does not follow from a
        hold on its incident in force at this point (a predicate: "inherits ..."); None when it
        does."""
        incident = details.get("incident")
        hold = details.get("hold")
        inherits = details.get("inherits")
        if not isinstance(incident, str) or not incident:
            return "names no incident it inherits a legal hold from"
        if subject.get("incident") != incident or _incident_scope(details) != incident:
            return f"inherits a legal hold from incident {incident!r} but its subject or scope names another incident"
        if not isinstance(hold, str) or not hold:
            return f"inherits a legal hold from incident {incident!r} but names no hold"
        if not isinstance(inherits, int) or isinstance(inherits, bool):
            return f"inherits legal hold {hold!r} but names no hold-placed event it inherits ('inherits')"
        placed = self.in_force.get((incident, hold))
        if not placed:
            return f"inherits legal hold {hold!r} from incident {incident!r}, which is under no such hold at this point"
        if inherits not in placed:
            return (f"inherits event {inherits} as the placing of legal hold {hold!r} on incident {incident!r}, "
                    f"which it is not (in force: event(s) {', '.join(map(str, sorted(placed)))})")
        return None


def inheritance_problem(ledger: Ledger, event: CustodyEvent) -> str | None:
    """Why ``event`` (a ``hold-inherited`` about to be appended) does not follow from a hold on
    its incident in force in ``ledger`` now; None when it does (or it is no inherited hold)."""
    if event.action != INHERITED:
        return None
    incident = event.details.get("incident")
    log = IncidentHoldLog()
    if isinstance(incident, str) and incident:
        for earlier in ledger.events(incident=incident, actions=(PLACED, RELEASED)):
            if earlier.seq >= event.seq:
                break
            log.see(earlier.seq, earlier.action, earlier.details)
    return log.problem(event.subject, event.details)
