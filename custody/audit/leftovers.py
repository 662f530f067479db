"""Leftovers of writers that died (killed, lost power) in the store's staging area: found,
removed, and reported as ``staging-leftover`` findings.

On the local store a staging file is locked by its writer for as long as it lives
(``storage.staging``), so a file whose lock is free is known to be a leftover, whatever its age;
a live writer's file is never touched. The sweep is done by ingest (before it stages anything)
and by audit (which also reports each leftover, so that an operator learns that a writer died
mid-write, and where). A leftover is never evidence: the bytes of a stored object stay under
their key, and an object a writer stored without recording is an ``unrecorded`` finding (and
re-running its ingest records it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from custody.errors import Finding, FindingKind
from storage.base import ObjectStore
from storage.staging import Leftover

@runtime_checkable
class Sweeping(Protocol):
    def sweep_staging(self, remove: bool = True) -> list[Leftover]: ...


def sweep_leftovers(store: ObjectStore) -> list[Leftover]:
    """Remove the staging files of dead writers from ``store`` (none on a store without a
    staging area); what was found."""
    return store.sweep_staging() if isinstance(store, Sweeping) else []


def describe_leftovers(leftovers: Sequence[Leftover]) -> str:
    """One line for people: how many leftovers were removed, and how many bytes."""
    removed = [item for item in leftovers if item.removed]
    kept = [item for item in leftovers if not item.removed]
    text = f"removed {len(removed)} staging file(s) ({sum(i.size for i in removed)} bytes) left by a writer that was killed"
    if kept:
        text += f"; {len(kept)} could not be removed: " + "; ".join(f"{i.path}: {i.error}" for i in kept)
    return text


def leftover_findings(store: ObjectStore) -> list[Finding]:
    """Sweep ``store``'s staging area and report each leftover found as a finding."""
    findings = []
    for item in sweep_leftovers(store):
        what = f"a staging file of {item.size} bytes whose writer is gone (killed while it wrote)"
        if item.linked:
            what += "; it was also linked as a stored object, which stays as stored"
        outcome = "it was removed" if item.removed else f"it could not be removed ({item.error}): remove it by hand"
        extra = {"size": item.size, "removed": item.removed}
        findings.append(Finding(FindingKind.STAGING_LEFTOVER, item.path, f"{what}; {outcome}", extra=extra))
    return findings
