"""The roles in force, as the ledger records them: ``roles-set`` events.

An administrator records the roles (the whole table, ``RolePolicy.details()``) with a signed
``roles-set`` event: ``custody init --admin`` right after enrolling the first administrator,
and ``custody actor roles set`` whenever config.toml's roles change. The roles in force at a
position in the log are those of the last ``roles-set`` event before it; a ledger with none
(made before roles were recorded) uses config.toml's roles, which it was operated with, until
its first one (``roles.roles_before_recorded``). Appending (``custody.actors.identity``),
approving and enrolling go by the roles in force now; ``ledger verify`` and ``verify-package``
by the roles in force at each event (``custody.actors.replay``). Once the ledger has a
``roles-set``, config.toml's roles are only what ``actor roles set`` records: when they differ
from the ledger's, a writing command warns and does not apply them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from custody.actors.roles import (
    BEFORE, BEFORE_RECORDED, ROLES_SET, RolePolicy, initial_roles, load_roles, policy_of, roles_before_recorded,
)
from custody.actors.roster import Roster, current_roster
from custody.errors import ConfigError, PolicyRefused, RefusedBy
from custody.ledger import sshsig
from custody.ledger.queries import signatures_for

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent, Ledger
    from custody.workspace import Workspace

HOW_TO_RECORD = "an administrator records them with 'custody actor roles set' (with their own --key)"


@dataclass(frozen=True)
class RolesInForce:
    """The roles in force and the ``roles-set`` event that recorded them (None: none yet, the
    roles from ``initial_source``, config.toml's)."""

    policy: RolePolicy
    seq: int | None
    initial_source: str = "config.toml's roles"

    @property
    def source(self) -> str:
        if self.seq is None:
            return f"{self.initial_source} (no roles-set event in the ledger: {BEFORE_RECORDED})"
        return f"the roles-set event {self.seq}"

    def as_dict(self) -> dict[str, Any]:
        return {**self.policy.as_dict(), "sha256": self.policy.digest(), "seq": self.seq, "source": self.source}


def roles_in_force(ledger: Ledger, config: Mapping[str, Any]) -> RolesInForce:
    """The roles of the last ``roles-set`` event that counts, or config.toml's (``config``) if
    none does: a ledger made before roles were recorded keeps the roles it was operated with
    until an administrator records them. One counts if its stored signature verifies, by a key enrolled (and not revoked) then, whose
    person the event names and whose role may record ``roles-set`` in the roles in force before
    it, and if it records usable roles: what the replay of ``ledger verify`` requires, so that
    an event put there around the tool changes nothing here either (``ledger verify`` names it)."""
    events = list(ledger.events(actions=(ROLES_SET,)))
    policy, source = initial_roles((events[0].seq, events[0].details) if events else None, roles_before_recorded(config))
    found = RolesInForce(policy, None, source)
    if not events:
        return found
    roster = current_roster(ledger)
    signatures = signatures_for(ledger, [event.seq for event in events])
    for event in events:
        stored = signatures.get(event.seq)
        if stored is None or not _signed_by_a_setter(event, stored.signature, roster, found.policy):
            continue
        try:
            found = RolesInForce(policy_of(event.details), event.seq)
        except ValueError:
            continue
    return found


def _signed_by_a_setter(event: CustodyEvent, signature: str, roster: Roster, policy: RolePolicy) -> bool:
    try:
        parsed = sshsig.parse(signature)
        parsed.verify(event.canonical())
    except sshsig.SshSigError:
        return False
    fingerprint = parsed.public_key.fingerprint
    return any(
        person.fingerprint == fingerprint and person.name == event.actor and person.role == event.role
        and person.enrolled_seq < event.seq and (person.revoked_seq is None or person.revoked_seq > event.seq)
        and policy.allows(person.role, ROLES_SET)
        for person in roster.people
    )


def config_difference(config: Mapping[str, Any], in_force: RolesInForce) -> str | None:
    """A warning if config.toml's roles are not the ledger's roles in force, or if the ledger
    records no roles yet, else None."""
    if in_force.seq is None:
        return f"the ledger records no roles yet, so {in_force.initial_source} apply; {HOW_TO_RECORD}"
    try:
        configured = load_roles(config)
    except ConfigError as exc:
        return f"config.toml's roles are not usable ({exc}); the ledger's roles ({in_force.source}) apply"
    if configured.digest() == in_force.policy.digest():
        return None
    return (f"config.toml's roles differ from the roles recorded in the ledger ({in_force.source}), "
            f"which are the ones that apply; {HOW_TO_RECORD}")


@dataclass(frozen=True)
class RolesChange:
    recorded: bool
    """False: config.toml's roles are already those in force, nothing was recorded."""
    in_force: RolesInForce
    previous: RolesInForce

    def as_dict(self) -> dict[str, Any]:
        return {"recorded": self.recorded, "roles": self.in_force.as_dict(),
                "previous_seq": self.previous.seq, "previous_sha256": self.previous.policy.digest()}


def record_roles(workspace: Workspace, policy: RolePolicy) -> RolesChange:
    """Record ``policy`` as a signed ``roles-set`` event by the acting administrator, unless a
    ``roles-set`` already recorded exactly these roles. (A ledger with none records even the
    shipped roles: then a later custody shipping other roles does not change its verdicts.)
    The append policy refuses anyone whose role may not record ``roles-set``. On a ledger with
    no ``roles-set`` that counts, it also records the roles that judged the events before it
    (``roles.BEFORE``), so that from then on those are judged by recorded roles too, in the
    ledger and in its packages."""
    ledger = workspace.ledger
    if ledger.event_signer is None:
        raise PolicyRefused("recording the roles needs an administrator's key: give it with --key (or CUSTODY_KEY)",
                            refused_by=RefusedBy.ENROLLMENT)
    previous = roles_in_force(ledger, workspace.settings.config)
    if previous.seq is not None and previous.policy.digest() == policy.digest():
        return RolesChange(False, previous, previous)
    event = ledger.append(ROLES_SET, actor=workspace.settings.actor, role=workspace.settings.role,
                          details=details_after(policy, previous))
    workspace.seal()
    return RolesChange(True, RolesInForce(policy, event.seq), previous)


def details_after(policy: RolePolicy, previous: RolesInForce) -> dict[str, Any]:
    """The details of a ``roles-set`` recording ``policy`` after ``previous``: with the roles
    before it (``roles.BEFORE``) when no ``roles-set`` counts yet."""
    if previous.seq is not None:
        return policy.details()
    return {**policy.details(), BEFORE: previous.policy.details()}
