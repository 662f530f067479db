"""Two people for irreversible acts: destroying recordings and releasing a legal hold.

Once people are enrolled, ``dispose --confirm`` and ``hold release`` only record a request
(``disposal-requested`` / ``hold-release-requested``, signed by the requester). The act happens
when a second enrolled person whose role may approve that kind of request (``approvals`` of the
roles recorded in the ledger, ``custody.actors.roles_log``) runs ``custody approve REQUEST``: an ``approved`` event naming the request, then the
act itself, recorded by the approver. The requester cannot approve their own request, a request
is approved once, and a ledger with nobody enrolled keeps the one-person behaviour (there is no
second enrolled person to ask).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from custody.actors.roles_log import roles_in_force
from custody.actors.roster import current_roster
from custody.actors.two_person import ACT_KINDS, APPROVED, REQUEST_KINDS, act_target, names
from custody.errors import BadInput, PolicyRefused, RefusedBy
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent, Ledger

KINDS = REQUEST_KINDS
REQUEST_ACTIONS = {kind: action for action, kind in KINDS.items()}
ACTS = {kind: act for act, kind in ACT_KINDS.items()}
"""What carrying out each kind of request records: checked against the approver's role before
the act, so that nothing is destroyed or released without its event."""

CarryOut = Callable[[str, dict[str, Any], int], dict[str, Any]]
"""Does an approved request's act: ``(kind, params, request_seq)`` -> what it did."""


@dataclass
class Request:
    seq: int
    kind: str
    requested_by: str
    time: str
    params: dict[str, Any]
    approved_seq: int | None = None
    approved_by: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.seq,
            "kind": self.kind,
            "requested_by": self.requested_by,
            "time": self.time,
            "params": self.params,
            "approved_seq": self.approved_seq,
            "approved_by": self.approved_by,
            "outcome": self.outcome,
        }


def two_people_needed(workspace: Workspace) -> bool:
    """Whether irreversible acts need a request and a second person: anyone is enrolled."""
    return bool(current_roster(workspace.ledger).people)


def _require_signed(workspace: Workspace, what: str, target: dict[str, Any] | None = None) -> None:
    if workspace.ledger.event_signer is None:
        raise PolicyRefused(
            f"{what} needs two enrolled people in this ledger: give your enrolled key with --key "
            "(or CUSTODY_KEY) to request it",
            refused_by=RefusedBy.ENROLLMENT,
            target=target,
        )


def request(workspace: Workspace, kind: str, params: dict[str, Any], summary: str) -> Request:
    """Record a request of ``kind`` (``disposal`` or ``hold-release``) by the acting person."""
    _require_signed(workspace, summary)
    event = workspace.ledger.append(
        REQUEST_ACTIONS[kind],
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        details={"request": kind, "params": params, "summary": summary},
    )
    workspace.seal()
    return Request(event.seq, kind, event.actor, event.time, params)


def all_requests(ledger: Ledger) -> dict[int, Request]:
    """Every request, with its approval if any."""
    found: dict[int, Request] = {}
    for event in ledger.events(actions=(*REQUEST_ACTIONS.values(), APPROVED)):
        if event.action == APPROVED:
            target = found.get(int(event.details.get("request", -1)))
            if target is not None and target.approved_seq is None:
                target.approved_seq = event.seq
                target.approved_by = event.actor
        else:
            found[event.seq] = Request(
                event.seq, KINDS[event.action], event.actor, event.time, dict(event.details.get("params", {}))
            )
    return found


def authorizing(ledger: Ledger, acts: Iterable[CustodyEvent], size: int) -> set[int]:
    """The request and approval events before ``size`` that cover ``acts`` (``disposed`` and
    ``hold-released`` events): each approved request of the act's kind that names its object, or
    the request the act names. A package carries them, so that its verifier can check the
    two-person rule (``custody.actors.two_person``) on the acts it carries."""
    wanted = [act for act in acts if act.action in ACT_KINDS]
    if not wanted:
        return set()
    seqs: set[int] = set()
    for pending in all_requests(ledger).values():
        if pending.seq >= size:
            continue
        for act in wanted:
            approved = pending.approved_seq is not None and pending.approved_seq < act.seq
            if act.details.get("request") == pending.seq or (
                approved and pending.kind == ACT_KINDS[act.action]
                and names(pending.kind, pending.params, act_target(act.action, act.details, act.subject), act.details)
            ):
                seqs.add(pending.seq)
                if pending.approved_seq is not None and pending.approved_seq < size:
                    seqs.add(pending.approved_seq)
                break
    return seqs


def approve(workspace: Workspace, seq: int, carry_out: CarryOut) -> Request:
    """Approve request ``seq`` as the acting person and carry it out: ``carry_out(kind, params,
    request_seq)`` does the act and returns what it did (a dict)."""
    _require_signed(workspace, "approving a request", {"request": seq})
    pending = all_requests(workspace.ledger).get(seq)
    if pending is None:
        raise BadInput(f"event {seq} is not a request; see 'custody approve --list'")
    if pending.approved_seq is not None:
        raise PolicyRefused(f"request {seq} was already approved by {pending.approved_by} (event {pending.approved_seq})",
                            refused_by=RefusedBy.TWO_PERSON, target={"request": seq})
    roster = current_roster(workspace.ledger)
    approver = roster.by_name(workspace.settings.actor)
    requester = roster.by_name(pending.requested_by)
    if approver is None:
        raise PolicyRefused(f"{workspace.settings.actor} is not an enrolled person", refused_by=RefusedBy.ENROLLMENT,
                            target={"request": seq})
    if pending.requested_by == approver.name or (requester is not None and requester.fingerprint == approver.fingerprint):
        raise PolicyRefused(
            f"{approver.name} made request {seq} and cannot approve it: a second enrolled person must",
            refused_by=RefusedBy.TWO_PERSON,
            target={"request": seq},
        )
    policy = roles_in_force(workspace.ledger, workspace.settings.config).policy
    if not policy.may_approve(approver.role, pending.kind):
        allowed = ", ".join(sorted(policy.approvals.get(pending.kind, ()))) or "nobody"
        raise PolicyRefused(
            f"{approver.name} ({approver.role}) may not approve a {pending.kind} request; roles that may: {allowed}",
            refused_by=RefusedBy.ROLE,
            target={"request": seq},
        )
    act = ACTS[pending.kind]
    if not policy.allows(approver.role, act):
        raise PolicyRefused(
            f"{approver.name} ({approver.role}) may approve a {pending.kind} request but may not record {act!r}, "
            f"which carrying it out records; the roles in force must let the approving role record {act!r}",
            refused_by=RefusedBy.ROLE,
            target={"request": seq},
        )
    event = workspace.ledger.append(
        APPROVED,
        actor=approver.name,
        role=approver.role,
        details={"request": seq, "kind": pending.kind, "requested_by": pending.requested_by},
    )
    pending.approved_seq = event.seq
    pending.approved_by = approver.name
    pending.outcome = carry_out(pending.kind, pending.params, seq)
    return pending
