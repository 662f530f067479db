"""Refused attempts are events too: an action refused by role, enrollment, the two-person rule,
a lock or retention is recorded as a ``refused`` event (who, what, why), so the log shows
attempts, not only successes.

A ``refused`` event's actor and role are the acting person's (signed with their key when they
act with one); its subject is the evidence object and/or incident the action targeted; its
details are

    command      the command line that was refused ("custody approve")
    refused_by   what refused it (``custody.errors.RefusedBy``: role, enrollment, two-person,
                 lock, retention, store, policy)
    reason       the refusal's message
    target       what else it named, if anything: a request, a key, an attachment
    key          the fingerprint of the acting person's key, when they acted with one

A refusal that ends a command is recorded once by the command line; one inside a batch (an
approved disposal of which one object is held) is recorded where it happens, and the batch
goes on or stops as its operation says, never leaving its earlier steps unsaid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from custody.errors import PolicyRefused, RefusedBy
from custody.ledger.database import CustodyEvent, Ledger
from custody.workspace import Workspace
from storage.errors import ObjectExists, RetentionViolation, StorageError

MAX_REASON = 2000
REFUSED = "refused"


def record_refusal(
    workspace: Workspace,
    reason: str,
    refused_by: RefusedBy,
    *,
    subject: Mapping[str, str] | None = None,
    target: Mapping[str, Any] | None = None,
    seal: bool = True,
) -> CustodyEvent:
    """Append a ``refused`` event by the acting person (signed when they act with a key) for
    the workspace's command; with ``seal``, sign a checkpoint."""
    details: dict[str, Any] = {
        "command": workspace.settings.command,
        "refused_by": RefusedBy(refused_by).value,
        "reason": reason[:MAX_REASON],
    }
    if target:
        details["target"] = dict(target)
    signer = workspace.ledger.event_signer
    if signer is not None:
        details["key"] = signer.public_key.fingerprint
    event: CustodyEvent = workspace.ledger.append(
        REFUSED,
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject=dict(subject) if subject else None,
        details=details,
    )
    if seal:
        workspace.seal()
    return event


def refused_by(error: BaseException) -> RefusedBy:
    """What refused, for an error of exit code 4: the core's ``PolicyRefused`` says so itself;
    the store's ``RetentionViolation`` (a delete, overwrite or shortening refused by Object Lock
    or a legal hold) and ``ObjectExists`` are a lock; any other store refusal is the store's."""
    if isinstance(error, PolicyRefused):
        return error.refused_by
    if isinstance(error, (RetentionViolation, ObjectExists)):
        return RefusedBy.LOCK
    return RefusedBy.STORE if isinstance(error, StorageError) else RefusedBy.POLICY


def record_error(workspace: Workspace, error: BaseException) -> CustodyEvent | None:
    """Record the refusal that ended a command, unless the core recorded it already (a
    ``PolicyRefused`` with ``recorded``): then None."""
    if isinstance(error, PolicyRefused):
        if error.recorded is not None:
            return None
        return record_refusal(workspace, str(error), error.refused_by, subject=error.subject, target=error.target)
    return record_refusal(workspace, str(error), refused_by(error))


def describe(event: CustodyEvent) -> str:
    """One line for people: ``refused (lock): custody approve evidence 1f0c3a9e… by sup-2: why``."""
    details = event.details
    about = " ".join(f"{name} {value[:16] + '…' if name == 'evidence' else value}" for name, value in sorted(event.subject.items()))
    target = details.get("target")
    if isinstance(target, Mapping) and target:
        about = " ".join(filter(None, [about, *(f"{name} {value}" for name, value in sorted(target.items()))]))
    what = " ".join(filter(None, [str(details.get("command", "")), about]))
    return f"refused ({details.get('refused_by', 'policy')}): {what} by {event.actor}: {details.get('reason', '')}"


def refusal_counts(ledger: Ledger) -> dict[str, Any]:
    """Every ``refused`` event of the ledger: how many by kind, and their sequence numbers."""
    kinds: dict[str, int] = {}
    seqs: list[int] = []
    for event in ledger.events(actions=(REFUSED,)):
        kind = str(event.details.get("refused_by", RefusedBy.POLICY.value))
        kinds[kind] = kinds.get(kind, 0) + 1
        seqs.append(event.seq)
    return {"count": len(seqs), "by_kind": dict(sorted(kinds.items())), "events": seqs}


def stopped_batch(workspace: Workspace, error: PolicyRefused | StorageError, done: Sequence[str], total: int) -> PolicyRefused:
    """The refusal that stopped a batch after the objects ``done`` were changed: their events
    are sealed here, and the refusal (recorded by the command line) names them, so that the
    log never holds half a batch without saying so."""
    workspace.seal()
    names = ", ".join(blake3[:16] for blake3 in done)
    message = (f"{error}; the {len(done)} object(s) before it were changed and recorded ({names}), "
               f"the {total - len(done) - 1} after it were not tried")
    if isinstance(error, PolicyRefused):
        return PolicyRefused(message, refused_by=error.refused_by, subject=error.subject, target=error.target)
    return PolicyRefused(message, refused_by=refused_by(error))
