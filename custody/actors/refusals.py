"""Refused attempts are events too: an action refused by role, by a lock or by retention is
recorded as ``refused`` (who, what, why), so the log shows attempts, not only successes."""

from __future__ import annotations



from custody.ledger.database import CustodyEvent
from custody.workspace import Workspace

MAX_REASON = 2000


def record_refusal(workspace: Workspace, command: str, reason: str, kind: str = "policy") -> CustodyEvent:
    """Append a ``refused`` event by the acting person (signed when they act with a key) and
    seal it."""
    event: CustodyEvent = workspace.ledger.append(
        "refused",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        details={"command": command, "reason": reason[:MAX_REASON], "refused_by": kind},
    )
    workspace.seal()
    return event
