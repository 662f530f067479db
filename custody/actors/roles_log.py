"""The roles in force, as the ledger records them: ``roles-set`` events.

An administrator records the roles (the whole table, ``RolePolicy.details()``) with a signed
``roles-set`` event: ``custody init --admin`` right after enrolling the first administrator,
and ``custody actor roles set`` whenever config.toml's roles change. The roles in force at a
position in the log are those of the last ``roles-set`` event before it; a ledger with none
(made before roles were recorded) uses the roles shipped with custody until its first one.
Appending (``custody.actors.identity``), approving and enrolling go by the roles in force now;
``ledger verify`` and ``verify-package`` by the roles in force at each event
(``custody.actors.replay``). config.toml's roles are only what ``actor roles set`` records:
when they differ from the ledger's, a writing command warns and does not apply them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from custody.actors.roles import ROLES_SET, RolePolicy, load_roles, policy_of, shipped_roles
from custody.errors import ConfigError, Finding, FindingKind, LedgerCorrupt, PolicyRefused, RefusedBy

if TYPE_CHECKING:
    from custody.ledger.database import Ledger
    from custody.workspace import Workspace

HOW_TO_RECORD = "an administrator records them with 'custody actor roles set' (with their own --key)"


@dataclass(frozen=True)
class RolesInForce:
    """The roles in force and the ``roles-set`` event that recorded them (None: shipped)."""

    policy: RolePolicy
    seq: int | None

    @property
    def source(self) -> str:
        if self.seq is None:
            return "the roles shipped with custody (no roles-set event in the ledger)"
        return f"the roles-set event {self.seq}"

    def as_dict(self) -> dict[str, Any]:
        return {**self.policy.as_dict(), "sha256": self.policy.digest(), "seq": self.seq, "source": self.source}


def roles_in_force(ledger: Ledger) -> RolesInForce:
    """The roles of the last ``roles-set`` event, or the shipped roles if there is none.
    ``LedgerCorrupt`` (exit 3) if that event does not hold a usable table of roles (the append
    refuses one, so only a changed database holds it)."""
    last = None
    for event in ledger.events(actions=(ROLES_SET,)):
        last = event
    if last is None:
        return RolesInForce(shipped_roles(), None)
    try:
        return RolesInForce(policy_of(last.details), last.seq)
    except ValueError as exc:
        raise LedgerCorrupt([Finding(FindingKind.MALFORMED, f"event {last.seq}",
                                     f"a roles-set event that does not record usable roles ({exc}); run 'custody ledger verify'")]) from exc


def config_difference(config: Mapping[str, Any], in_force: RolesInForce) -> str | None:
    """A warning if config.toml's roles are not the ledger's roles in force, else None."""
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
    The append policy refuses anyone whose role may not record ``roles-set``."""
    ledger = workspace.ledger
    if ledger.event_signer is None:
        raise PolicyRefused("recording the roles needs an administrator's key: give it with --key (or CUSTODY_KEY)",
                            refused_by=RefusedBy.ENROLLMENT)
    previous = roles_in_force(ledger)
    if previous.seq is not None and previous.policy.digest() == policy.digest():
        return RolesChange(False, previous, previous)
    event = ledger.append(ROLES_SET, actor=workspace.settings.actor, role=workspace.settings.role,
                          details=policy.details())
    workspace.seal()
    return RolesChange(True, RolesInForce(policy, event.seq), previous)
