"""What makes a package complete and consistent, on the export side.

``prepare`` appends the package's ``export-prepared`` event, which lists every event the
package must hold and every object linked to the incident, and signs a checkpoint that ends
with it; ``previous_consistency`` proves that checkpoint extends the one of the last package
sent to the same recipient. The rule a verifier applies is in ``docs/design-packages.md``
("Complete packages") and ``custody.package.verify_complete``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custody.actors.roles import ROLES_SET
from custody.actors.approvals import authorizing
from custody.actors.inherited import INHERITED, PLACED, RELEASED
from custody.actors.roster import ROSTER_ACTIONS
from custody.actors.two_person import APPROVED, REQUEST_KINDS
from custody.errors import ConfigError
from custody.ledger import tree
from custody.ledger.consistency import format_consistency
from custody.ledger.queries import signatures_for
from custody.package.layout import PREPARED
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.cases.incident_state import IncidentState
    from custody.ledger.database import CustodyEvent, Ledger
    from custody.ledger.seal import SignedCheckpoint

ATTEMPTS = 5


@dataclass
class Prepared:
    """The signed checkpoint (its last event is ``event``), the incident's state then, and the
    events the package carries (``event`` last)."""

    checkpoint: SignedCheckpoint
    state: IncidentState
    events: list[CustodyEvent]
    event: CustodyEvent
    objects: dict[str, str]


def prepare(workspace: Workspace, incident_id: str, blake3s: Sequence[str], package_id: str, recipient: str) -> Prepared:
    """Append the ``export-prepared`` event of a package and sign a checkpoint whose last
    event it is. Its details list ``events`` (``[seq, hash]`` of every event about the
    incident, about each exported object, and each disposal of a linked object, before it)
    and ``objects`` (every object linked to the incident: ``included``, ``disposed`` or
    ``excluded`` by the export's selection). The events include every enrollment and
    revocation of people and every ``roles-set`` before it (who could sign what, when), the
    placings and releases of holds over each other incident an inherited hold it carries comes
    from (what the hold follows from), the request
    and approval events that cover each disposal or hold release it carries (the two-person rule), and ``signed`` lists those events
    that carry a person's signature (the package must hold each). The list is made while holding the ledger's
    append lock; if another writer appends before the checkpoint is signed, a new event is
    prepared (``ConfigError`` after a few attempts)."""
    from custody.cases.incident_state import require_incident

    ledger = workspace.ledger
    settings = workspace.settings
    for _ in range(ATTEMPTS):
        with ledger.transaction() as tx:
            size, _ = tx.head()
            state = require_incident(ledger, incident_id)
            found = {e.seq: e for e in ledger.events(incident=incident_id) if e.seq < size}
            for blake3 in blake3s:
                found.update({e.seq: e for e in ledger.events(evidence=blake3) if e.seq < size})
            disposed = {}
            for event in ledger.events(actions=("disposed",)):
                if event.seq < size and event.subject.get("evidence") in state.evidence:
                    disposed[event.subject["evidence"]] = event
                    found[event.seq] = event
            for event in ledger.events(actions=(*ROSTER_ACTIONS, ROLES_SET)):
                if event.seq < size:
                    found[event.seq] = event
            for other in sorted({str(e.details.get("incident")) for e in found.values() if e.action == INHERITED} - {incident_id}):
                found.update({e.seq: e for e in ledger.events(incident=other, actions=(PLACED, RELEASED)) if e.seq < size})
            covering = authorizing(ledger, list(found.values()), size)
            if covering:
                found.update({e.seq: e for e in ledger.events(actions=(*REQUEST_KINDS, APPROVED)) if e.seq in covering})
            objects = {
                blake3: "included" if blake3 in blake3s else "disposed" if blake3 in disposed else "excluded"
                for blake3 in sorted(state.evidence)
            }
            objects.update({b: "included" for b in blake3s if b not in objects})  # sidecars of included objects
            events = [found[seq] for seq in sorted(found)]
            signed = sorted(signatures_for(ledger, sorted(found)))
            event = tx.append(
                PREPARED, actor=settings.actor, role=settings.role, subject={"incident": incident_id},
                details={"package": package_id, "recipient": recipient,
                         "events": [[e.seq, e.hash] for e in events], "objects": objects, "signed": signed},
            )
        checkpoint = workspace.seal(force=True)
        if checkpoint is not None and checkpoint.size == event.seq + 1:
            return Prepared(checkpoint, state, events + [event], event, objects)
    raise ConfigError("the ledger kept changing while the package was prepared; try again")


def previous_consistency(ledger: Ledger, recipient: str, checkpoint: SignedCheckpoint) -> str | None:
    """The consistency proof (``custody.ledger.consistency`` layout) from the checkpoint of
    the last package exported to ``recipient`` to ``checkpoint``; None for a first package
    (or an unnamed recipient)."""
    if recipient == "not stated":
        return None
    sizes = []
    for event in ledger.events(actions=("exported",)):
        package = event.details.get("package")
        if event.details.get("recipient") != recipient or not isinstance(package, dict):
            continue
        size = (package.get("checkpoint") or {}).get("size")
        if isinstance(size, int) and 0 < size < checkpoint.size:
            sizes.append(size)
    if not sizes:
        return None
    old = max(sizes)
    proof: list[bytes] = ledger.with_nodes(lambda nodes: tree.consistency_proof(nodes, old, checkpoint.size))
    return format_consistency(old, proof, checkpoint.note)
