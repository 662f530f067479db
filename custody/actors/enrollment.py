"""Enrolling and revoking people: ``actor-enrolled`` and ``actor-revoked`` events, recorded by
an administrator acting with their key (``custody.actors.identity.act_as``), or, for the first
administrator, by ``custody init --admin NAME --admin-key KEY`` signed with the key it enrolls,
followed by their first act: the roles in force (a ``roles-set`` event, ``custody.actors.roles_log``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from custody.actors.roles import ROLES_SET, STATION, load_roles
from custody.actors.roles_log import details_after, roles_in_force
from custody.actors.roster import ENROLL, NAME, REVOKE, Person, current_roster
from custody.errors import BadInput, PolicyRefused, RefusedBy
from custody.ledger import sshsig
from custody.ledger.signatures import load_signer
from custody.workspace import Workspace



def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadInput(
            f"NAME {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return name


def parse_key(text: str, where: str) -> sshsig.PublicKey:
    try:
        return sshsig.PublicKey.parse(text)
    except sshsig.SshSigError as exc:
        raise BadInput(f"{where}: {exc}") from exc


def _enrollment(name: str, role: str, key: sshsig.PublicKey) -> dict[str, Any]:
    return {"name": name, "role": role, "key": key.line, "fingerprint": key.fingerprint}


def enroll(workspace: Workspace, name: str, role: str, key: sshsig.PublicKey) -> Person:
    """Record ``actor-enrolled`` for ``name`` with ``role`` and ``key``. The workspace must be
    acting as an administrator (the append policy refuses anyone else)."""
    check_name(name)
    policy = roles_in_force(workspace.ledger, workspace.settings.config).policy
    if role == STATION:
        raise BadInput(f"--role {STATION} is the role of unsigned station events, not of a person; choose another role")
    if role not in policy.roles:
        raise BadInput(f"--role {role!r} is not a role in the ledger's roles: {', '.join(sorted(policy.roles))} "
                       "(a role added in config.toml counts once recorded with 'custody actor roles set')")
    roster = current_roster(workspace.ledger)
    if roster.by_name(name) is not None:
        raise BadInput(f"{name} is already enrolled; revoke the enrollment first to change role or key")
    holder = roster.by_fingerprint(key.fingerprint)
    if holder is not None:
        raise BadInput(f"the key {key.fingerprint} is already enrolled as {holder.name}")
    if roster.ever(key.fingerprint) is not None:
        raise PolicyRefused(f"the key {key.fingerprint} was revoked; a revoked key is never enrolled again",
                            refused_by=RefusedBy.ENROLLMENT, target={"key": key.fingerprint})
    if workspace.ledger.event_signer is None:
        raise PolicyRefused("enrolling a person needs an administrator's key: give it with --key (or CUSTODY_KEY)",
                            refused_by=RefusedBy.ENROLLMENT)
    workspace.ledger.append(
        ENROLL, actor=workspace.settings.actor, role=workspace.settings.role, details=_enrollment(name, role, key)
    )
    workspace.seal()
    person = current_roster(workspace.ledger).by_name(name)
    assert person is not None
    return person


def enroll_first_admin(workspace: Workspace, name: str, key_path: Path) -> Person:
    """Enroll the first administrator, signed by the very key enrolled (proof that whoever ran
    init holds it), then record as their act the roles in force (config.toml's, a ``roles-set``
    event) unless the ledger has a ``roles-set`` already. Refused once another administrator
    is enrolled; run again by the same administrator, it only records the roles if missing."""
    check_name(name)
    policy = load_roles(workspace.settings.config)
    roster = current_roster(workspace.ledger)
    existing = roster.by_name(name)
    signer = load_signer(name, key_path)
    same = existing is not None and existing.fingerprint == signer.public_key.fingerprint and existing.role == "admin"
    if roster.has_admin() and not same:
        raise PolicyRefused(
            "this ledger already has an administrator; they enroll others with 'custody actor enroll'",
            refused_by=RefusedBy.ENROLLMENT,
            target={"key": signer.public_key.fingerprint},
        )
    ledger = workspace.ledger
    ledger.event_signer = signer
    try:
        if not same:
            ledger.append(ENROLL, actor=name, role="admin", details=_enrollment(name, "admin", signer.public_key))
        previous = roles_in_force(ledger, workspace.settings.config)
        if previous.seq is None:
            # an administrator enrolled already: a ledger made before roles were recorded
            ledger.append(ROLES_SET, actor=name, role="admin",
                          details=details_after(policy, previous) if same else policy.details())
    finally:
        ledger.event_signer = None
    workspace.seal()
    person = current_roster(ledger).by_name(name)
    assert person is not None
    return person


def revoke(workspace: Workspace, name: str, reason: str) -> Person:
    """Record ``actor-revoked`` for ``name``'s active enrollment (by an administrator)."""
    if not reason.strip():
        raise BadInput("--reason must not be empty")
    roster = current_roster(workspace.ledger)
    person = roster.by_name(name)
    if person is None:
        raise BadInput(f"{name} is not enrolled (or already revoked); see 'custody actor list'")
    if workspace.ledger.event_signer is None:
        raise PolicyRefused("revoking a person needs an administrator's key: give it with --key (or CUSTODY_KEY)",
                            refused_by=RefusedBy.ENROLLMENT)
    if person.name == workspace.settings.actor and person.role == "admin" and sum(
        1 for p in roster.active() if p.role == "admin"
    ) == 1:
        raise PolicyRefused(f"{name} is the only administrator; enroll another administrator first")
    workspace.ledger.append(
        REVOKE,
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        details={"name": name, "fingerprint": person.fingerprint, "reason": reason},
    )
    workspace.seal()
    revoked = next(p for p in reversed(current_roster(workspace.ledger).people) if p.name == name)
    return revoked


def allowed_signers(people: list[Person]) -> str:
    """An OpenSSH allowed_signers file for ``people`` (namespace custody-event), for
    ``ssh-keygen -Y verify -f allowed_signers -I NAME -n custody-event -s SIG < event.bytes``."""
    return "".join(f'{p.name} namespaces="{sshsig.NAMESPACE}" {p.key}\n' for p in people)
