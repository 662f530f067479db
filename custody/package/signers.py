"""Who acted, in a package: each carried event's SSH signature by the enrolled person who
caused it (``custody/signatures/event-<seq>.sig``), the OpenSSH ``allowed_signers`` of the
keys enrolled by the roster events the package carries, and the roles in force at its
checkpoint (``custody/roles.json``, for reading), so that a recipient can check each signature
with ``ssh-keygen -Y verify`` alone, and ``verify-package`` can check the signer's enrollment
and role at that point in the log (``custody.package.verify_signers``).

``allowed_signers`` and ``roles.json`` are derived from the package's own events (its roster
and ``roles-set`` events) by the same replay the verifier runs (``custody.actors.replay``), so
the verifier re-derives them and any edit is a finding. A ledger with no ``roles-set`` before
the checkpoint (made before roles were recorded) gives a package with none: its ``roles.json``
is then config.toml's roles, those the ledger is judged by (what custody wrote before roles were
recorded), and the verifier judges the package by it, sealed by the signed tag manifests.
A ledger where nobody is enrolled and nothing is signed gets none of these files.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from custody.actors.replay import ActorReplay, allowed_signers
from custody.actors.roles import ROLES_SET, initial_roles, roles_before_recorded
from custody.actors.verify import act_of
from custody.ledger.queries import signatures_for
from custody.package import layout
from custody.package.model import ExportContext
from custody.package.writer import BagWriter

if TYPE_CHECKING:
    from custody.ledger.database import Ledger


def write_signers(bag: BagWriter, context: ExportContext, ledger: Ledger) -> None:
    """Write the signatures of ``context.events``, ``allowed_signers`` and ``roles.json``, and
    note in ``context.signed`` (seq, signer, time) each signed event, for the README."""
    events = [e for e in context.events if e.seq < context.checkpoint.size]
    stored = signatures_for(ledger, [e.seq for e in events])
    first = next((e for e in events if e.action == ROLES_SET), None)
    policy, source = initial_roles(None if first is None else (first.seq, first.details),
                                   roles_before_recorded(context.workspace.settings.config))
    replay = ActorReplay(policy, initial_source=source)
    for event in events:
        signature = stored.get(event.seq)
        for problem in replay.check(act_of(event), signature.signature if signature else None):
            context.signature_problems.setdefault(event.seq, problem.message)
        if signature is not None:
            bag.text(layout.signature_path(event.seq), signature.signature)
            context.signed.append((event.seq, event.actor, event.time))
    if not replay.roster.people and not stored:
        return
    bag.text(layout.ALLOWED_SIGNERS, allowed_signers(replay.roster.people))
    bag.text(layout.ROLES, roles_json(replay))


def roles_json(replay: ActorReplay) -> str:
    """``custody/roles.json``: the roles in force after the replayed events (config.toml's if
    they carry no ``roles-set``)."""
    return json.dumps(replay.policy.as_dict(), indent=2, sort_keys=True) + "\n"
