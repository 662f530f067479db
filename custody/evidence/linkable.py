"""Whether the acting person may link evidence to an incident, asked before anything is stored
or changed (``custody link`` and ``custody ingest --incident``)."""

from __future__ import annotations

from custody.actors.identity import require_allowed
from custody.cases.holds import incident_holds
from custody.errors import PolicyRefused
from custody.workspace import Workspace


def require_linkable(ws: Workspace, incident_id: str, blake3: str | None = None) -> None:
    """Refuse, before anything is stored or changed, a link the acting person's role cannot
    complete: linking records ``linked`` and, when the incident is under a legal hold, gives the
    object that hold (``hold-inherited``, the action of the roles that link), so a role that
    may link but not inherit a hold is refused here rather than leave a hold in the store that
    the ledger does not record."""
    subject = {"incident": incident_id, **({"evidence": blake3} if blake3 else {})}
    require_allowed(ws, "linked", subject)
    holds = incident_holds(ws.ledger, incident_id)
    if not holds:
        return
    try:
        require_allowed(ws, "hold-inherited", subject)
    except PolicyRefused as exc:
        names = ", ".join(hold.name for hold in holds)
        raise PolicyRefused(
            f"{exc}; incident {incident_id} is under legal hold {names}, which linking gives the object: "
            "ask an administrator to add 'hold-inherited' to the roles that link ('custody actor roles set')",
            refused_by=exc.refused_by, subject=exc.subject, target=exc.target,
        ) from exc
