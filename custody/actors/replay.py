"""The rule that decides which signatures count, event by event, with no database: the same
replay serves ``ledger verify`` (every event of the ledger) and ``verify-package`` (the events a
package carries, which include every enrollment and revocation before its checkpoint).

Events are taken in log order. For each signed event: the SSH signature must verify over the
event's canonical bytes; the key must be enrolled and not revoked at that event (the first
administrator's own enrollment, signed by the key it enrolls, counts while no administrator is
enrolled); the event must name the enrolled person and their role; the role must allow the
action. Once anyone is enrolled, an unsigned event naming an enrolled person, doing what only an
enrolled person may do, or what the ``station`` role (the role of unsigned events) does not
allow, is a finding. Roster events change the roster only when they pass. Once anyone is enrolled,
each disposal and hold release must be covered by a request a second person approved before it
(``custody.actors.two_person``). An inherited hold must follow from a hold on its incident in
force at that point (``custody.actors.inherited``).

The roles are those in force at each event: the roles given to the replay (``policy``, from
``initial_source``) until the first ``roles-set`` event that passes, then those of the last
``roles-set`` event that passed (signed by a person whose role in force then allows it, with a
usable table of roles; ``custody.actors.roles_log``). The roles given (``roles.initial_roles``)
are those the first ``roles-set`` records as the roles before it, if it does (``roles.BEFORE``:
``actor roles set`` on a ledger made before roles were recorded); else config.toml's for a ledger
(a ledger made before roles were recorded was operated with them), the shipped roles for a
package, and for a package with no ``roles-set`` event its sealed ``roles.json``. From the first
``roles-set`` on, changing config.toml changes nothing of the verdict.

Also here: the OpenSSH ``allowed_signers`` file of a roster, each key valid from its enrollment
to its revocation, so that ``ssh-keygen -Y verify -O verify-time=EVENT_TIME`` refuses a key
used after it was revoked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from custody import times
from custody.actors.inherited import INHERITED, IncidentHoldLog
from custody.actors.roles import (
    ALWAYS_ALLOWED, ROLES_SET, SHIPPED_SOURCE, STATION, RolePolicy, policy_of, recorded_before, shipped_roles,
)
from custody.actors.roster import ENROLL, NAME, NEEDS_ENROLLED, REVOKE, Person, Roster
from custody.actors.two_person import ACT_KINDS, APPROVED, REQUEST_KINDS, Signer, TwoPersonLog
from custody.errors import Finding, FindingKind
from custody.ledger import sshsig


@dataclass(frozen=True)
class Act:
    """What the replay reads of one event."""

    seq: int
    time: str
    actor: str
    role: str
    action: str
    details: Mapping[str, Any]
    canonical: bytes
    """The bytes the signature covers (the event's canonical JSON, the package's ``leaf``)."""
    subject: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ActorReplay:
    """The roster as the log is replayed, and the tally of what was seen."""

    policy: RolePolicy = field(default_factory=shipped_roles)
    """The roles in force at the event being checked."""
    initial_source: str = SHIPPED_SOURCE
    """Where the roles given as ``policy`` (those before the first ``roles-set``) come from."""
    roster: Roster = field(default_factory=Roster)
    roles_set: list[int] = field(default_factory=list)
    """The ``roles-set`` events that passed and changed the roles, in order."""
    events: int = 0
    signed: int = 0
    unsigned: list[int] = field(default_factory=list)
    signers: dict[str, int] = field(default_factory=dict)
    two_person: TwoPersonLog = field(default_factory=TwoPersonLog)
    """The requests and approvals seen so far (the two-person rule)."""
    holds: IncidentHoldLog = field(default_factory=IncidentHoldLog)
    """The holds over incidents in force (what an inherited hold must follow from)."""
    judged_before: int = 0
    """How many events before the first ``roles-set`` the roles given (``policy``) judged."""
    _consulted: bool = False

    def check(self, act: Act, signature: str | None, recorded_fingerprint: str | None = None,
              signer: str | None = None) -> list[Finding]:
        """The findings about ``act`` and its armored SSH ``signature`` (None: unsigned); then
        the roster takes ``act`` into account if it is a roster event that passed."""
        self.events += 1
        self._consulted = False
        person: Person | None = None
        if signature is None:
            self.unsigned.append(act.seq)
            found = self._unsigned(act)
        else:
            self.signed += 1
            name = signer or act.actor
            self.signers[name] = self.signers.get(name, 0) + 1
            found, person = self._signed(act, signature, recorded_fingerprint)
        found.extend(self._two_person(act, person if not found else None))
        inherited = self.holds.problem(act.subject, act.details) if act.action == INHERITED else None
        if inherited is not None:
            found.append(finding(FindingKind.INHERITED_HOLD, act, inherited))
        self.holds.see(act.seq, act.action, act.details, passed=not found)
        if act.action in (ENROLL, REVOKE) and signature is not None and not found:
            self.roster.apply(act)
        if act.action == ROLES_SET and signature is not None and not found:
            try:
                recorded_before(act.details, act.seq)
                self.policy = policy_of(act.details)
                self.roles_set.append(act.seq)
            except ValueError as exc:
                found.append(finding(FindingKind.MALFORMED, act, f"does not record usable roles: {exc}; the roles in force stay"))
        if self._consulted and not self.roles_set:
            self.judged_before += 1
        return found

    @property
    def roles_source(self) -> str:
        """Where the roles in force at the end of the replay come from."""
        if not self.roles_set:
            return f"{self.initial_source} (no roles-set event)"
        return f"the roles-set event {self.roles_set[-1]}"

    def _signed(self, act: Act, signature: str, recorded_fingerprint: str | None) -> tuple[list[Finding], Person | None]:
        """The findings about a signed event, and the enrolled person who signed it (None: nobody
        enrolled at that point, the first administrator's own enrollment included)."""
        try:
            parsed = sshsig.parse(signature)
            parsed.verify(act.canonical)
        except sshsig.SshSigError as exc:
            return [finding(FindingKind.BAD_SIGNATURE, act, f"signature does not verify: {exc}")], None
        fingerprint = parsed.public_key.fingerprint
        if recorded_fingerprint is not None and recorded_fingerprint != fingerprint:
            return [finding(FindingKind.BAD_SIGNATURE, act, f"recorded key {recorded_fingerprint} is not the signing key {fingerprint}")], None
        roster = self.roster
        person = roster.by_fingerprint(fingerprint)
        if person is None:
            if _first_admin(act, parsed.public_key, roster):
                return [], None
            former = roster.ever(fingerprint)
            if former is not None:
                return [finding(FindingKind.SIGNER_REVOKED, act,
                                f"signed by {former.name}'s key {fingerprint}, revoked at event {former.revoked_seq}",
                                fingerprint=fingerprint)], None
            return [finding(FindingKind.SIGNER_NOT_ENROLLED, act,
                            f"signed by key {fingerprint}, which is not enrolled at this point", fingerprint=fingerprint)], None
        found = []
        if act.actor != person.name:
            found.append(finding(FindingKind.ACTOR_MISMATCH, act, f"names {act.actor!r} but is signed by {person.name}'s key"))
        if act.role != person.role:
            found.append(finding(FindingKind.ROLE_MISMATCH, act, f"claims role {act.role!r}; {person.name} is enrolled as {person.role}"))
        self._consulted = True
        if not self.policy.allows(person.role, act.action):
            found.append(finding(FindingKind.ROLE_NOT_PERMITTED, act, f"{person.name} ({person.role}) may not record {act.action!r}"))
        return found, person

    def _two_person(self, act: Act, person: Person | None) -> list[Finding]:
        """Requests and approvals signed by an enrolled person (``person``: the event passed the
        other checks) are taken into account; each act after the first enrollment must be
        covered by one."""
        signer = Signer(person.name, person.role, person.fingerprint) if person is not None else None
        problem = None
        if act.action in REQUEST_KINDS and signer is not None:
            self.two_person.request(act.seq, act.action, act.details, signer)
        elif act.action == APPROVED and signer is not None:
            self._consulted = True
            problem = self.two_person.approval(act.seq, act.details, signer, self.policy)
        elif act.action in ACT_KINDS and self.roster.people:
            problem = self.two_person.act(act.action, act.details, act.subject, act.actor)
        return [] if problem is None else [finding(FindingKind.TWO_PERSON, act, problem)]

    def _unsigned(self, act: Act) -> list[Finding]:
        if not self.roster.people or act.action in ALWAYS_ALLOWED:
            return []
        if self.roster.ever_named(act.actor):
            return [finding(FindingKind.UNSIGNED_CLAIM, act, f"names the enrolled person {act.actor!r} but carries no signature")]
        if act.action in NEEDS_ENROLLED:
            return [finding(FindingKind.UNSIGNED_CLAIM, act, f"{act.action!r} needs an enrolled person's signature; it has none")]
        self._consulted = True
        if not self.policy.station_allows(act.action):
            return [finding(FindingKind.ROLE_NOT_PERMITTED, act,
                            f"unsigned, so judged by the {STATION} role, which may not record {act.action!r} once people are enrolled")]
        return []


def _first_admin(act: Act, key: sshsig.PublicKey, roster: Roster) -> bool:
    """The first administrator's own enrollment, signed by the key it enrolls."""
    details = act.details
    return (
        act.action == ENROLL
        and not roster.has_admin()
        and details.get("role") == "admin"
        and details.get("key") == key.line
        and details.get("name") == act.actor
        and act.role == "admin"
    )


def finding(kind: FindingKind, act: Act, message: str, **extra: Any) -> Finding:
    return Finding(kind, f"event {act.seq}", message, extra={"action": act.action, "actor": act.actor, **extra})


def ssh_time(text: str) -> str | None:
    """An RFC 3339 time as ``YYYYMMDDHHMMSSZ`` (what allowed_signers and ``-O verify-time``
    take), truncated to the second; None if it is not a time."""
    try:
        moment = times.parse_utc(text)
    except ValueError:
        return None
    return moment.strftime("%Y%m%d%H%M%SZ")


def _one_second_later(stamp: str) -> str:
    """``YYYYMMDDHHMMSSZ`` one second after ``stamp`` (same form)."""
    moment = datetime.strptime(stamp, "%Y%m%d%H%M%SZ") + timedelta(seconds=1)
    return moment.strftime("%Y%m%d%H%M%SZ")


def _plain(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:300]


def allowed_signers(people: list[Person]) -> str:
    """An OpenSSH allowed_signers file for ``people`` (namespace custody-event): each key valid
    from its enrollment and, once revoked, until its revocation, each preceded by a comment
    naming the events that establish it. For ``ssh-keygen -Y verify -f allowed_signers -I NAME
    -n custody-event -O verify-time=EVENT_TIME -s SIG < event.bytes``."""
    lines = []
    for person in people:
        try:
            key = sshsig.PublicKey.parse(person.key)
        except sshsig.SshSigError:
            key = None
        if not NAME.match(person.name) or key is None or key.line != person.key.strip():
            lines.append(f"# left out: the enrollment at event {person.enrolled_seq} (a name or key this file cannot hold)\n")
            continue
        options = [f'namespaces="{sshsig.NAMESPACE}"']
        after = ssh_time(person.enrolled_at)
        if after:
            options.append(f'valid-after="{after}"')
        state = f"enrolled at event {person.enrolled_seq} by {person.enrolled_by}"
        if person.revoked_seq is not None:
            before = ssh_time(person.revoked_at or "")
            if before and after and before <= after:
                # Enrolled and revoked within one second: ssh-keygen refuses a line whose
                # valid-before is not after its valid-after (and then the whole file), so the
                # narrowest window it accepts is two seconds; verify-package goes by position.
                before = _one_second_later(after)
            if before:
                options.append(f'valid-before="{before}"')
            state += f", revoked at event {person.revoked_seq} by {person.revoked_by}"
        lines.append(f"# {person.name}: {_plain(person.role)}, {key.fingerprint}, {_plain(state)}\n")
        lines.append(f"{person.name} {','.join(options)} {key.line}\n")
    return "".join(lines)
