"""Checking who acted in the ledger: every event's signature, and the signer's enrollment and
role at that point in the log, by the replay of ``custody.actors.replay`` over every event and
its stored signature. An unsigned event is listed as unsigned; naming an enrolled person, or
doing what only an enrolled person may do, it is a finding. Each event is judged by the roles
in force at its position (the ledger's ``roles-set`` events), never by config.toml, except the
events before the first ``roles-set``: those were made before roles were recorded in the ledger,
with config.toml's roles, and are judged by them (``roles.roles_before_recorded``), or by those
the first ``roles-set`` records as the roles before it (``roles.initial_roles``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.actors.replay import Act, ActorReplay
from custody.actors.roles import BEFORE_RECORDED, ROLES_SET, initial_roles, roles_before_recorded
from custody.actors.roster import ROSTER_ACTIONS
from custody.errors import Finding, FindingKind
from custody.ledger.database import CustodyEvent, Ledger
from custody.ledger.queries import signatures_for
from custody.ledger.signatures import stored_signatures


@dataclass
class ActorReport:
    events: int = 0
    signed: int = 0
    unsigned: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    signers: dict[str, int] = field(default_factory=dict)
    roles_set: list[int] = field(default_factory=list)
    """The ``roles-set`` events that changed the roles in force, in order."""
    before_source: str = ""
    """Where the roles of the events before the first ``roles-set`` come from (config.toml's)."""
    judged_before: int = 0
    """How many of those events the roles judged (a signed event, or an unsigned one once anyone
    was enrolled): none in a ledger that recorded its roles at ``init --admin``."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def before(self) -> dict[str, Any] | None:
        """The events judged by the roles from before roles were recorded (``before_source``)."""
        last = (self.roles_set[0] if self.roles_set else self.events) - 1
        if last < 0 or (self.roles_set and not self.judged_before):
            return None
        return {"first": 0, "last": last, "source": self.before_source, "note": BEFORE_RECORDED,
                "judged": self.judged_before}

    def roles_summary(self) -> str:
        before = self.before()
        if not self.roles_set:
            return (f"roles: no roles-set event; every event judged by {self.before_source}: {BEFORE_RECORDED}; "
                    "an administrator records them with 'custody actor roles set'")
        judged = "" if before is None else f"events 0..{before['last']} judged by {self.before_source}: {BEFORE_RECORDED}; then "
        return f"roles: {judged}each event judged by the roles in force at it (roles-set event(s) {', '.join(map(str, self.roles_set))})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "signed": self.signed,
            "unsigned": len(self.unsigned),
            "unsigned_events": self.unsigned,
            "signers": dict(sorted(self.signers.items())),
            "roles_set": self.roles_set,
            "roles_before": self.before(),
            "findings": [f.as_dict() for f in self.findings],
        }


def act_of(event: CustodyEvent) -> Act:
    return Act(event.seq, event.time, event.actor, event.role, event.action, event.details, event.canonical(),
               event.subject)


def _replay(ledger: Ledger, config: Mapping[str, Any]) -> ActorReplay:
    first = next(iter(ledger.events(actions=(ROLES_SET,))), None)
    policy, source = initial_roles(None if first is None else (first.seq, first.details), roles_before_recorded(config))
    return ActorReplay(policy, initial_source=source)


def verify_actors(ledger: Ledger, config: Mapping[str, Any]) -> ActorReport:
    """Check every event's signature, signer, enrollment and role; collect every finding.
    ``config``: config.toml, whose roles judge the events before the first ``roles-set``."""
    replay = _replay(ledger, config)
    findings: list[Finding] = []
    signatures = stored_signatures(ledger)
    pending = next(signatures, None)
    for event in ledger.events():
        while pending is not None and pending.seq < event.seq:
            findings.append(Finding(FindingKind.BAD_SIGNATURE, f"signature {pending.seq}", "a signature of no event"))
            pending = next(signatures, None)
        stored = pending if pending is not None and pending.seq == event.seq else None
        if stored is not None:
            pending = next(signatures, None)
            findings.extend(replay.check(act_of(event), stored.signature, stored.key_fingerprint, stored.signer))
        else:
            findings.extend(replay.check(act_of(event), None))
    while pending is not None:
        findings.append(Finding(FindingKind.BAD_SIGNATURE, f"signature {pending.seq}", "a signature of no event"))
        pending = next(signatures, None)
    return ActorReport(replay.events, replay.signed, replay.unsigned, findings, replay.signers, replay.roles_set,
                       replay.initial_source, replay.judged_before)


def counted(ledger: Ledger, action: str, through_seq: int, config: Mapping[str, Any]) -> set[int]:
    """The ``action`` events before ``through_seq`` that count as made by someone allowed to: all
    of them before anyone was enrolled (station mode); after that, those signed by an enrolled
    person whose role in force at the event allows ``action`` and with no other finding, by the
    replay of ``ledger verify`` over the roster and ``roles-set`` events and these events (so
    an audit an unsigned station or a technician recorded is not an audit; ``config``: as for
    ``verify_actors``)."""
    events = [e for e in ledger.events(actions=(*ROSTER_ACTIONS, ROLES_SET, action)) if e.seq < through_seq]
    signatures = signatures_for(ledger, [e.seq for e in events])
    replay = _replay(ledger, config)
    found: set[int] = set()
    for event in events:
        stored = signatures.get(event.seq)
        anyone_enrolled = bool(replay.roster.people)
        problems = replay.check(act_of(event), stored.signature if stored else None,
                                stored.key_fingerprint if stored else None, stored.signer if stored else None)
        if event.action == action and not problems and (stored is not None or not anyone_enrolled):
            found.add(event.seq)
    return found
