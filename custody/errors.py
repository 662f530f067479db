"""Errors of the custody core. Each carries the exit code the command line maps it to.

    CustodyError               1  base; never raised for a deliberate failure
    ├── BadInput               2  a path, reference or value the user gave is not usable
    ├── IntegrityFailure       3  findings: mismatch, missing, unreadable, unrecorded (all of them)
    ├── LedgerCorrupt          3  the custody ledger does not verify
    ├── PolicyRefused          4  refused by role, enrollment, two-person rule, lock, retention or policy
    ├── ConfigError            5  configuration or data directory unusable
    └── LedgerUnavailable      5  the database cannot be opened, is locked, or is of another schema

Store errors (``storage.errors``) carry their own exit codes and pass through unchanged.

A command that has already rendered its outcome (a report and its findings, on stdout or
stderr) ends with the error marked ``already_shown()``: the command line then sets the exit code
and prints nothing more. No command exits with a literal code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self


class CustodyError(Exception):
    exit_code = 1
    shown = False
    """True when the command has rendered this outcome itself; only the exit code is left to set."""

    def already_shown(self) -> Self:
        """This error, marked as rendered already: ``raise IntegrityFailure(findings).already_shown()``."""
        self.shown = True
        return self


class BadInput(CustodyError):
    exit_code = 2


class RefusedBy(StrEnum):
    """What refused an action: the ``refused_by`` of a ``refused`` event."""

    ROLE = "role"
    """the acting person's role may not take the action (the roles recorded in the ledger: roles-set)"""
    ENROLLMENT = "enrollment"
    """the act needs an enrolled person's key: none given, not enrolled, or revoked"""
    TWO_PERSON = "two-person"
    INHERITED_HOLD = "inherited-hold"
    """an irreversible act's approval by its own requester, or a second approval"""
    LOCK = "lock"
    """the stored object is locked: Object Lock retention or a legal hold (our check or the store's)"""
    RETENTION = "retention"
    """retention is only ever lengthened: a shortening, or a change after disposal"""
    STORE = "store"
    """the store did not do or confirm what was asked, for no reason it named"""
    POLICY = "policy"
    """any other rule (the ledger's key chain, the first administrator, ...)"""


class PolicyRefused(CustodyError):
    """An action refused by a rule. ``refused_by`` says which kind of rule; ``subject`` the
    evidence object and/or incident it targeted, ``target`` anything else it named (a request,
    a key). ``recorded`` is the sequence number of the ``refused`` event when the core has
    recorded it already (a refusal inside a batch), so that it is not recorded twice."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        refused_by: RefusedBy = RefusedBy.POLICY,
        subject: dict[str, str] | None = None,
        target: dict[str, Any] | None = None,
        recorded: int | None = None,
    ) -> None:
        super().__init__(message)
        self.refused_by = RefusedBy(refused_by)
        self.subject = dict(subject or {})
        self.target = dict(target or {})
        self.recorded = recorded


class ConfigError(CustodyError):
    exit_code = 5


class LedgerUnavailable(CustodyError):
    exit_code = 5


class FindingKind(StrEnum):
    """Every kind of integrity finding, as ``--json`` output, ledger events and metrics name it.

    docs/findings.md says what each means and which check reports it; a test keeps the two
    lists, and every kind the code produces, the same."""

    # objects, files and their bytes
    MISSING = "missing"
    UNREADABLE = "unreadable"
    MISMATCH = "mismatch"
    UNRECORDED = "unrecorded"
    WEAK_RETENTION = "weak-retention"
    HOLD_MISMATCH = "hold-mismatch"
    STORE_NOT_ENFORCING = "store-not-enforcing"
    STAGING_LEFTOVER = "staging-leftover"
    NOT_PRESERVED = "not-preserved"
    DISPOSED = "disposed"
    BAD_REFERENCE = "bad-reference"
    # a previous system's manifest (ingest --expect)
    ABSENT = "absent"
    MANIFEST_CHANGED = "manifest-changed"
    # the ledger and its signatures
    LEDGER_CORRUPT = "ledger-corrupt"
    BAD_SIGNATURE = "bad-signature"
    UNSIGNED = "unsigned"
    UNSIGNED_CLAIM = "unsigned-claim"
    SIGNER_NOT_ENROLLED = "signer-not-enrolled"
    SIGNER_REVOKED = "signer-revoked"
    ACTOR_MISMATCH = "actor-mismatch"
    ROLE_MISMATCH = "role-mismatch"
    ROLE_NOT_PERMITTED = "role-not-permitted"
    TWO_PERSON = "two-person"
    INHERITED_HOLD = "inherited-hold"
    # packages and releases checked offline
    NOT_A_PACKAGE = "not-a-package"
    MALFORMED = "malformed"
    UNSAFE = "unsafe"
    UNEXPECTED = "unexpected"
    UNTRUSTED_KEY = "untrusted-key"
    UNPROVED = "unproved"
    INCOMPLETE = "incomplete"
    INCONSISTENT = "inconsistent"
    UNDER_QUORUM = "under-quorum"
    # clips checked against their original
    NOT_DERIVED = "not-derived"
    ALTERED = "altered"
    GAP = "gap"
    OUT_OF_ORDER = "out-of-order"
    MISALIGNED = "misaligned"
    EMPTY = "empty"


@dataclass(frozen=True)
class Finding:
    """One integrity problem about one thing (a file, an object, an event)."""

    kind: FindingKind
    subject: str
    message: str
    algorithm: str | None = None
    expected: str | None = None
    found: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a kind computed at run time (a manifest's verdict) must still be one of FindingKind
        object.__setattr__(self, "kind", FindingKind(self.kind))

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": self.kind.value, "subject": self.subject, "message": self.message}
        for name in ("algorithm", "expected", "found"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        record.update(self.extra)
        return record


class IntegrityFailure(CustodyError):
    exit_code = 3

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = [f"{f.subject}: {f.message}" for f in self.findings]
        super().__init__(f"{len(lines)} integrity finding(s):\n" + "\n".join(lines))


class LedgerCorrupt(IntegrityFailure):
    exit_code = 3
