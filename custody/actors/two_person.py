"""The two-person rule, checked in the log: once anyone is enrolled, each ``disposed`` and
``hold-released`` event must be covered by a request a second person approved before it.

What ``custody.actors.approvals`` does at the command line, replayed over the events: a request
(``disposal-requested`` naming ``params.objects``, ``hold-release-requested`` naming
``params.hold``) is approved by an ``approved`` event naming it (``details.request``), signed by
an enrolled person other than the requester whose role may approve that kind of request by the
roles in force at the approval; the approver then records the acts. So an act is covered by an
approved request of its kind that names its object (a disposal: the object's digest among the
request's objects; a release: the hold the request names), approved by the act's own signer,
and not already carried out for that object (a request covers each object once). An act that
names its request (``details.request``) is judged against that request only.

A request or approval counts only if its own event passed the other checks (its signature, the
signer's enrollment and role); an act before anyone was enrolled needs nothing (one-person
station mode). Every breach is a ``two-person`` finding about the event that breaks the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.actors.roles import RolePolicy

REQUEST_KINDS = {"disposal-requested": "disposal", "hold-release-requested": "hold-release"}
"""Each request action and the kind of request it records (``approvals`` in the roles)."""
APPROVED = "approved"
ACT_KINDS = {"disposed": "disposal", "hold-released": "hold-release"}
"""Each irreversible act and the kind of request that must cover it."""


@dataclass(frozen=True)
class Signer:
    """Who signed an event that passed the other checks."""

    name: str
    role: str
    fingerprint: str


@dataclass
class LoggedRequest:
    seq: int
    kind: str
    requester: Signer
    params: Mapping[str, Any]
    approval: int | None = None
    approver: Signer | None = None
    carried_out: set[str] = field(default_factory=set)
    """The objects (digests; an incident for a hold over an incident with no object) acted on."""

    def names(self, target: str, details: Mapping[str, Any]) -> bool:
        """Whether this request names the act's ``target``."""
        return names(self.kind, self.params, target, details)


@dataclass
class TwoPersonLog:
    """The requests seen so far in the replay, and what was done under each."""

    requests: dict[int, LoggedRequest] = field(default_factory=dict)

    def request(self, seq: int, action: str, details: Mapping[str, Any], signer: Signer) -> None:
        """A request event that passed the other checks."""
        params = details.get("params")
        self.requests[seq] = LoggedRequest(seq, REQUEST_KINDS[action], signer, params if isinstance(params, Mapping) else {})

    def approval(self, seq: int, details: Mapping[str, Any], signer: Signer, policy: RolePolicy) -> str | None:
        """An ``approved`` event that passed the other checks: what breaks the rule, or None
        (then the request counts as approved by ``signer``)."""
        number = details.get("request")
        pending = self.requests.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
        if pending is None:
            return f"approves {number!r}, which is not a request recorded before it"
        if details.get("kind", pending.kind) != pending.kind:
            return f"says request {pending.seq} is a {details.get('kind')!r} request; it is a {pending.kind} request"
        if pending.approval is not None:
            return f"approves request {pending.seq} again: {pending.approver.name if pending.approver else '?'} approved it at event {pending.approval}"
        if signer.name == pending.requester.name or signer.fingerprint == pending.requester.fingerprint:
            return f"{signer.name} approves their own request {pending.seq}: a second enrolled person must"
        if not policy.may_approve(signer.role, pending.kind):
            allowed = ", ".join(sorted(policy.approvals.get(pending.kind, ()))) or "nobody"
            return (f"{signer.name} ({signer.role}) may not approve a {pending.kind} request by the roles in force; "
                    f"roles that may: {allowed}")
        pending.approval, pending.approver = seq, signer
        return None

    def act(self, action: str, details: Mapping[str, Any], subject: Mapping[str, Any], actor: str) -> str | None:
        """A ``disposed`` or ``hold-released`` event after people were enrolled: what breaks the
        rule, or None (then the request that covers it counts it as carried out)."""
        kind = ACT_KINDS[action]
        target = act_target(action, details, subject)
        what = f"{'destroys' if kind == 'disposal' else 'releases hold ' + repr(details.get('hold')) + ' on'} {target or '?'}"
        named = details.get("request")
        if named is not None:
            candidates = [self.requests[named]] if isinstance(named, int) and named in self.requests else []
            if not candidates:
                return f"{what} under request {named!r}, which is not a request recorded before it"
        else:
            candidates = list(self.requests.values())
        candidates = [r for r in candidates if r.kind == kind]
        if not candidates:
            return f"{what} with no {kind} request before it"
        naming = [r for r in candidates if target and r.names(target, details)]
        if not naming:
            seqs = ", ".join(str(r.seq) for r in candidates[-3:])
            return f"{what}, which no {kind} request before it names (request(s) {seqs} name others)"
        approved = [r for r in naming if r.approval is not None]
        if not approved:
            return f"{what} under request {naming[-1].seq}, which nobody approved before it"
        theirs = [r for r in approved if r.approver is not None and r.approver.name == actor]
        if not theirs:
            last = approved[-1]
            return (f"{what} as {actor}, but request {last.seq} was approved by "
                    f"{last.approver.name if last.approver else '?'}, who carries it out")
        fresh = [r for r in theirs if target not in r.carried_out]
        if not fresh:
            return f"{what} a second time under request {theirs[-1].seq}: a request covers each object once"
        fresh[-1].carried_out.add(target)
        return None


def names(kind: str, params: Mapping[str, Any], target: str, details: Mapping[str, Any]) -> bool:
    """Whether a request of ``kind`` with ``params`` names an act about ``target`` (its
    ``act_target``) with ``details``: a disposal its object, a hold release its hold."""
    if kind == "disposal":
        objects = params.get("objects")
        return bool(target) and isinstance(objects, list) and target in objects
    return bool(params.get("hold")) and params.get("hold") == details.get("hold")


def act_target(action: str, details: Mapping[str, Any], subject: Mapping[str, Any]) -> str:
    """What an act is about: the object's digest, or the incident of a hold with no object."""
    if action == "disposed":
        value = details.get("blake3") or subject.get("evidence")
    else:
        value = subject.get("evidence") or subject.get("incident")
    return value if isinstance(value, str) else ""
