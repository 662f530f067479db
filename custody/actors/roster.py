"""Enrolled people, as the ledger's ``actor-enrolled`` and ``actor-revoked`` events say.

An enrollment names a person, a role and an OpenSSH Ed25519 public key; only an administrator
enrolls or revokes (their own signed events). The first administrator enrolls themself, at
``custody init --admin NAME --admin-key KEY``: that event is signed by the key it enrolls, and
is accepted only while no administrator is enrolled. A revoked key never counts again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

ENROLL = "actor-enrolled"
REVOKE = "actor-revoked"
ROSTER_ACTIONS = (ENROLL, REVOKE)
NEEDS_ENROLLED = frozenset(
    {*ROSTER_ACTIONS, "roles-set", "disposed", "hold-released", "disposal-requested", "hold-release-requested", "approved"}
)
"""Actions only an enrolled person (a signed event) may cause once anyone is enrolled."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""An enrolled name: what allowed_signers and the ledger can hold without quoting."""
ROLES = ("technician", "supervisor", "auditor", "admin")
"""The roles the command line offers; config.toml may define others."""


class RosterEvent(Protocol):
    """What the roster reads of an event: a ledger ``CustodyEvent`` or a package's event body.
    (Read-only properties, so that frozen records fit too.)"""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


@dataclass
class Person:
    name: str
    role: str
    key: str
    """``ssh-ed25519 BASE64``"""
    fingerprint: str
    enrolled_seq: int
    enrolled_by: str
    revoked_seq: int | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    enrolled_at: str = ""
    """The time of the enrollment event (RFC 3339)."""
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_seq is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "active": self.active,
            "enrolled_seq": self.enrolled_seq,
            "enrolled_by": self.enrolled_by,
            "revoked_seq": self.revoked_seq,
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
            "enrolled_at": self.enrolled_at,
            "revoked_at": self.revoked_at,
        }


@dataclass
class Roster:
    """Everyone ever enrolled, in enrollment order, as of some point in the log."""

    people: list[Person] = field(default_factory=list)

    def active(self) -> list[Person]:
        return [person for person in self.people if person.active]

    def by_name(self, name: str) -> Person | None:
        """The active enrollment of ``name``."""
        return next((p for p in self.people if p.active and p.name == name), None)

    def by_fingerprint(self, fingerprint: str) -> Person | None:
        """The active enrollment of a key."""
        return next((p for p in self.people if p.active and p.fingerprint == fingerprint), None)

    def ever_named(self, name: str) -> bool:
        """Whether ``name`` was ever enrolled (an unsigned event may not use it)."""
        return any(p.name == name for p in self.people)

    def ever(self, fingerprint: str) -> Person | None:
        """The latest enrollment of a key, revoked or not."""
        return next((p for p in reversed(self.people) if p.fingerprint == fingerprint), None)

    def has_admin(self) -> bool:
        return any(p.role == "admin" for p in self.active())

    def apply(self, event: RosterEvent) -> None:
        """Take one roster event into account (the caller decides whether it counts)."""
        details = event.details
        if event.action == ENROLL:
            self.people.append(
                Person(
                    str(details.get("name", "")),
                    str(details.get("role", "")),
                    str(details.get("key", "")),
                    str(details.get("fingerprint", "")),
                    event.seq,
                    event.actor,
                    enrolled_at=event.time,
                )
            )
        elif event.action == REVOKE:
            person = self.by_name(str(details.get("name", "")))
            if person is not None:
                person.revoked_seq = event.seq
                person.revoked_by = event.actor
                person.revoke_reason = str(details.get("reason", ""))
                person.revoked_at = event.time


def build_roster(events: Iterable[RosterEvent]) -> Roster:
    roster = Roster()
    for event in events:
        roster.apply(event)
    return roster


def current_roster(ledger: Ledger) -> Roster:
    """The roster now, from every roster event in the ledger (validity is ``ledger verify``'s
    business: an enrollment recorded here was accepted when it was appended)."""
    return build_roster(ledger.events(actions=ROSTER_ACTIONS))
