"""Enrolled people, as the ledger's ``actor-enrolled`` and ``actor-revoked`` events say.

An enrollment names a person, a role and an OpenSSH Ed25519 public key; only an administrator
enrolls or revokes (their own signed events). The first administrator enrolls themself, at
``custody init --admin NAME --admin-key KEY``: that event is signed by the key it enrolls, and
is accepted only while no administrator is enrolled. A revoked key never counts again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from custody.ledger.database import CustodyEvent, Ledger

ENROLL = "actor-enrolled"
REVOKE = "actor-revoked"
ROSTER_ACTIONS = (ENROLL, REVOKE)
ROLES = ("technician", "supervisor", "auditor", "admin")
"""The roles the command line offers; config.toml may define others."""


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

    def apply(self, event: CustodyEvent) -> None:
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
                )
            )
        elif event.action == REVOKE:
            person = self.by_name(str(details.get("name", "")))
            if person is not None:
                person.revoked_seq = event.seq
                person.revoked_by = event.actor
                person.revoke_reason = str(details.get("reason", ""))


def build_roster(events: Iterable[CustodyEvent]) -> Roster:
    roster = Roster()
    for event in events:
        roster.apply(event)
    return roster


def current_roster(ledger: Ledger) -> Roster:
    """The roster now, from every roster event in the ledger (validity is ``ledger verify``'s
    business: an enrollment recorded here was accepted when it was appended)."""
    return build_roster(ledger.events(actions=ROSTER_ACTIONS))
