"""Acting as an enrolled person, or as an unsigned station.

With a key (``--key`` / ``CUSTODY_KEY`` / ``key`` in config.toml) the person is whoever that key
is enrolled as: their name and role go into every event, every event is signed with the key in
the transaction that appends it, and an event their role may not cause (by the roles recorded in
the ledger, ``custody.actors.roles_log``; not config.toml's) is refused before it is stored. A
key that is not enrolled, or was revoked, is refused. If config.toml's roles differ from the
ledger's, the first event appended comes with a warning naming ``custody actor roles set``.
With or without a key, an inherited legal hold (``hold-inherited``) that does not follow from a
hold on its incident in force in the ledger is refused (``custody.actors.inherited``).

Without a key the events are unsigned (a station without per-person keys). An unsigned event
cannot pass for an enrolled person: once people are enrolled, an unsigned event naming one of
them is refused, and so are the acts that need an enrolled person (enrollment, requests,
approvals, disposal, releasing a hold) and anything the ``station`` role of the roles in force
does not allow (placing a hold, an audit, ...). Before anyone is enrolled a station records
anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from custody.actors.inherited import inheritance_problem
from custody.actors.roles import ALWAYS_ALLOWED, ROLES_SET, STATION, RolePolicy
from custody.actors.roles_log import config_difference, roles_in_force
from custody.actors.roster import NEEDS_ENROLLED, Person, Roster, current_roster
from custody.errors import PolicyRefused, RefusedBy
from custody.ledger.database import CustodyEvent, Ledger
from custody.ledger.signatures import EventSigner, load_signer
from custody.workspace import Workspace


@dataclass
class SignedActor:
    """The append policy of an enrolled person acting with their key."""

    person: Person
    policy: RolePolicy
    """The roles recorded in the ledger (``custody.actors.roles_log``)."""
    warning: str | None = None
    """Said once, on stderr, at the first event appended (config.toml's roles differ)."""
    ledger: Ledger | None = None
    """The ledger appended to, where an inherited hold must find the hold it inherits."""

    def __call__(self, event: CustodyEvent) -> None:
        if self.warning is not None and event.action != ROLES_SET:
            logging.getLogger("custody.actors").warning("custody: warning: %s", self.warning)
        self.warning = None
        if not self.policy.allows(self.person.role, event.action):
            raise PolicyRefused(
                f"{self.person.name} ({self.person.role}) may not record {event.action!r}: the role "
                f"{self.person.role} does not allow it in the roles recorded in the ledger "
                "('custody actor roles show'); ask a person whose role allows it",
                refused_by=RefusedBy.ROLE,
                subject=event.subject,
            )
        if self.ledger is not None:
            refuse_uninherited(self.ledger, event)


def refuse_uninherited(ledger: Ledger, event: CustodyEvent) -> None:
    """Refuse a ``hold-inherited`` event that does not follow from a hold on its incident in
    force in ``ledger`` (a hold of the linker's own choosing passed off as the incident's)."""
    problem = inheritance_problem(ledger, event)
    if problem is not None:
        raise PolicyRefused(
            f"{event.actor} may not record this 'hold-inherited': it {problem}; a hold of one's own "
            "choosing is 'custody hold place', for a role that may place holds",
            refused_by=RefusedBy.POLICY,
            subject=event.subject,
        )


def resolve_person(ledger: Ledger, signer: EventSigner) -> Person:
    """The active enrollment of ``signer``'s key; ``PolicyRefused`` (exit 4) if there is none."""
    roster = current_roster(ledger)
    fingerprint = signer.public_key.fingerprint
    person = roster.by_fingerprint(fingerprint)
    if person is not None:
        return person
    former = roster.ever(fingerprint)
    if former is not None:
        raise PolicyRefused(
            f"the key {fingerprint} of {former.name} was revoked at event {former.revoked_seq} "
            f"({former.revoke_reason}); ask an administrator to enroll a new key",
            refused_by=RefusedBy.ENROLLMENT,
            target={"key": fingerprint},
        )
    raise PolicyRefused(
        f"the key {fingerprint} is not enrolled in this ledger; ask an administrator to run "
        f"'custody actor enroll NAME --role ROLE --key KEY.pub'",
        refused_by=RefusedBy.ENROLLMENT,
        target={"key": fingerprint},
    )


def act_as(workspace: Workspace, key_path: Path) -> Person:
    """Make ``workspace`` act as the person ``key_path`` is enrolled as: their name and role in
    its settings, their signature on every event, their role's permissions enforced."""
    signer = load_signer("", key_path)
    ledger: Ledger = workspace.ledger
    person = resolve_person(ledger, signer)
    signer.name = person.name
    workspace.settings = replace(workspace.settings, actor=person.name, role=person.role)
    ledger.event_signer = signer
    in_force = roles_in_force(ledger, workspace.settings.config)
    ledger.append_policy = SignedActor(person, in_force.policy, config_difference(workspace.settings.config, in_force), ledger)
    return person


@dataclass
class UnsignedStation:
    """The append policy without a key: refuses what only an enrolled person may do, once
    anyone is enrolled (the roster and the roles in force are read once, at the first append)."""

    ledger: Ledger
    config: Mapping[str, Any]
    """config.toml: its roles are in force until the ledger's first ``roles-set``."""
    roster: Roster | None = None
    policy: RolePolicy | None = None

    def __call__(self, event: CustodyEvent) -> None:
        self.admit(event)
        refuse_uninherited(self.ledger, event)

    def admit(self, event: CustodyEvent) -> None:
        """Refuse an action a station without a key may not record (what ``require_allowed``
        asks before anything changes)."""
        if self.roster is None:
            self.roster = current_roster(self.ledger)
        if not self.roster.people or event.action in ALWAYS_ALLOWED:
            return
        if self.policy is None:
            self.policy = roles_in_force(self.ledger, self.config).policy
        if self.roster.ever_named(event.actor):
            raise PolicyRefused(
                f"{event.actor} is a person enrolled in this ledger: events in their name must be "
                "signed with their key; give it with --key (or CUSTODY_KEY)",
                refused_by=RefusedBy.ENROLLMENT,
                subject=event.subject,
            )
        if event.action in NEEDS_ENROLLED:
            raise PolicyRefused(
                f"{event.action!r} needs an enrolled person: give your enrolled key with --key "
                "(or CUSTODY_KEY); unsigned station events cannot do this",
                refused_by=RefusedBy.ENROLLMENT,
                subject=event.subject,
            )
        if not self.policy.station_allows(event.action):
            allowed = ", ".join(sorted(self.policy.roles.get(STATION, ()))) or "nothing"
            raise PolicyRefused(
                f"{event.actor} ({STATION}, no key) may not record {event.action!r}: once people are enrolled, "
                f"a station without a person's key records only {allowed} (the {STATION} role in the roles "
                "recorded in the ledger); give your enrolled key with --key (or CUSTODY_KEY)",
                refused_by=RefusedBy.ROLE,
                subject=event.subject,
            )


def unsigned_station(config: Mapping[str, Any]) -> Callable[[Ledger], None]:
    """A ledger hook (``custody.workspace.LedgerHook``) that installs ``UnsignedStation``."""

    def install(ledger: Ledger) -> None:
        ledger.append_policy = UnsignedStation(ledger, config)

    return install


def require_allowed(workspace: Workspace, action: str, subject: dict[str, str] | None = None) -> None:
    """Refuse now, before any side effect in the store, an action the acting person's role may
    not record (the same check the ledger makes when the event is appended); ``subject`` is
    what the refused event names."""
    ledger = workspace.ledger_or_opening()
    policy = ledger.append_policy if isinstance(ledger, Ledger) else None  # still opening: checked at append
    if isinstance(policy, SignedActor) and not policy.policy.allows(policy.person.role, action):
        policy(CustodyEvent(0, "", policy.person.name, policy.person.role, action, dict(subject or {}), {}, "", "", ""))
    if isinstance(policy, UnsignedStation) and action not in NEEDS_ENROLLED:  # those commands name the key they need
        settings = workspace.settings
        policy.admit(CustodyEvent(0, "", settings.actor, settings.role, action, dict(subject or {}), {}, "", "", ""))
