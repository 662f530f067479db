"""What a package may say about where the retention lock is enforced: the store's own claim
(``capabilities.worm``) is only a claim. The last ``store-checked`` event for this store
(``custody store check``: a canary the server was asked to delete, shorten and weaken) says
whether the server really refused; the certification and the report say which of the three
holds: confirmed (with the event), found NOT enforced (with the event), or not tested."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custody.workspace import Workspace


NOT_ENFORCED = "Where the lock is enforced: NOT by the storage server, as tested."
"""How the statement begins when the last store check found the server's lock not enforced."""


@dataclass(frozen=True)
class LockCheck:
    """The last lock self-test of a store, as recorded in the ledger."""

    seq: int
    time: str
    enforced: bool
    allowed: tuple[str, ...]
    """The probes the server accepted (empty when enforced)."""


def last_lock_check(workspace: Workspace, before: int | None = None) -> LockCheck | None:
    """The last ``store-checked`` event for this store (by its description), before event
    ``before`` when given; None when the store was never checked."""
    store = workspace.store.describe()
    found = None
    for event in workspace.ledger.events(actions=("store-checked",)):
        if before is not None and event.seq >= before:
            break
        if event.details.get("store") != store:
            continue
        probes = event.details.get("probes", [])
        allowed = tuple(str(p.get("action")) for p in probes if isinstance(p, dict) and not p.get("refused"))
        found = LockCheck(event.seq, event.time, bool(event.details.get("enforced")), allowed)
    return found


def lock_check_sentence(worm: str | None, check: LockCheck | None) -> str:
    """One or two sentences on whether the server's lock was tested, for a server-locked store
    (empty for a local store: there the program is the lock, and says so)."""
    if worm != "server":
        return ""
    if check is None:
        return ("This was not tested: no 'custody store check' of this store is recorded in the ledger "
                "before this package was made, so it rests on the store's configuration.")
    if check.enforced:
        return (f"Confirmed by 'custody store check' (ledger event {check.seq}, {check.time}): the server refused "
                "to delete a locked version, to shorten its retention and to switch it to GOVERNANCE mode.")
    return (f"{NOT_ENFORCED} The store is S3 with Object Lock in COMPLIANCE mode, but 'custody store check' "
            f"(ledger event {check.seq}, {check.time}) found that the server accepted "
            f"{', '.join(check.allowed) or 'a forbidden request'}. Locked copies could be deleted or weakened there; "
            "a change would be detected by comparing them with the signed ledger, not prevented.")


def lock_tested(workspace: Workspace) -> str:
    """``lock_check_sentence`` for the workspace's store (the ledger is read only for a store
    that claims a server-enforced lock)."""
    worm = workspace.store.capabilities.worm
    return lock_check_sentence(worm, last_lock_check(workspace) if worm == "server" else None)
