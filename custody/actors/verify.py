"""Checking who acted: every event's signature, and the signer's enrollment and role at that
point in the log.

The log is replayed in order. For each signed event: the SSH signature must verify over the
event's canonical bytes; the key must be enrolled and not revoked at that event (the first
administrator's own enrollment, signed by the key it enrolls, counts while no administrator is
enrolled); the event must name the enrolled person and their role; the role must allow the
action. An unsigned event is listed as unsigned; naming an enrolled person, or doing what only
an enrolled person may do, it is a finding. Roster events count only when they pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.actors.identity import NEEDS_ENROLLED
from custody.actors.roles import ALWAYS_ALLOWED, RolePolicy, load_roles
from custody.actors.roster import ENROLL, REVOKE, Roster
from custody.errors import Finding
from custody.ledger import sshsig
from custody.ledger.database import CustodyEvent, Ledger
from custody.ledger.signatures import StoredSignature, stored_signatures


@dataclass
class ActorReport:
    events: int = 0
    signed: int = 0
    unsigned: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    signers: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "signed": self.signed,
            "unsigned": len(self.unsigned),
            "unsigned_events": self.unsigned,
            "signers": dict(sorted(self.signers.items())),
            "findings": [f.as_dict() for f in self.findings],
        }


def _finding(kind: str, event: CustodyEvent, message: str, **extra: Any) -> Finding:
    return Finding(kind, f"event {event.seq}", message, extra={"action": event.action, "actor": event.actor, **extra})


def _check_signed(
    event: CustodyEvent, stored: StoredSignature, roster: Roster, policy: RolePolicy
) -> list[Finding]:
    try:
        parsed = sshsig.parse(stored.signature)
        parsed.verify(event.canonical())
    except sshsig.SshSigError as exc:
        return [_finding("bad-signature", event, f"signature does not verify: {exc}")]
    fingerprint = parsed.public_key.fingerprint
    if stored.key_fingerprint != fingerprint:
        return [_finding("bad-signature", event, f"recorded key {stored.key_fingerprint} is not the signing key {fingerprint}")]
    person = roster.by_fingerprint(fingerprint)
    if person is None:
        details = event.details
        if (
            event.action == ENROLL
            and not roster.has_admin()
            and details.get("role") == "admin"
            and details.get("key") == parsed.public_key.line
            and details.get("name") == event.actor
            and event.role == "admin"
        ):
            return []
        former = roster.ever(fingerprint)
        if former is not None:
            return [_finding("signer-revoked", event,
                             f"signed by {former.name}'s key {fingerprint}, revoked at event {former.revoked_seq}",
                             fingerprint=fingerprint)]
        return [_finding("signer-not-enrolled", event, f"signed by key {fingerprint}, which is not enrolled at this point",
                         fingerprint=fingerprint)]
    findings = []
    if event.actor != person.name:
        findings.append(_finding("actor-mismatch", event, f"names {event.actor!r} but is signed by {person.name}'s key"))
    if event.role != person.role:
        findings.append(_finding("role-mismatch", event, f"claims role {event.role!r}; {person.name} is enrolled as {person.role}"))
    if not policy.allows(person.role, event.action):
        findings.append(_finding("role-not-permitted", event,
                                 f"{person.name} ({person.role}) may not record {event.action!r}"))
    return findings


def _check_unsigned(event: CustodyEvent, roster: Roster) -> list[Finding]:
    if not roster.people or event.action in ALWAYS_ALLOWED:
        return []
    if roster.ever_named(event.actor):
        return [_finding("unsigned-claim", event,
                         f"names the enrolled person {event.actor!r} but carries no signature")]
    if event.action in NEEDS_ENROLLED:
        return [_finding("unsigned-claim", event, f"{event.action!r} needs an enrolled person's signature; it has none")]
    return []


def verify_actors(ledger: Ledger, config: Mapping[str, Any]) -> ActorReport:
    """Check every event's signature, signer, enrollment and role; collect every finding."""
    policy = load_roles(config)
    roster = Roster()
    report = ActorReport()
    signatures = stored_signatures(ledger)
    pending = next(signatures, None)
    for event in ledger.events():
        report.events += 1
        while pending is not None and pending.seq < event.seq:
            report.findings.append(Finding("bad-signature", f"signature {pending.seq}", "a signature of no event"))
            pending = next(signatures, None)
        stored = pending if pending is not None and pending.seq == event.seq else None
        if stored is None:
            report.unsigned.append(event.seq)
            found = _check_unsigned(event, roster)
        else:
            pending = next(signatures, None)
            report.signed += 1
            report.signers[stored.signer] = report.signers.get(stored.signer, 0) + 1
            found = _check_signed(event, stored, roster, policy)
        report.findings.extend(found)
        if event.action in (ENROLL, REVOKE) and not found and stored is not None:
            roster.apply(event)
    while pending is not None:
        report.findings.append(Finding("bad-signature", f"signature {pending.seq}", "a signature of no event"))
        pending = next(signatures, None)
    return report
