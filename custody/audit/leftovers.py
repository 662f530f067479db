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
from datetime import timedelta
from typing import Protocol, runtime_checkable

from custody.errors import Finding, FindingKind
from storage.base import ObjectStore
from storage.staging import Leftover


@runtime_checkable
class Sweeping(Protocol):
    """A store with a staging area whose writers hold locks (the local store)."""

    def sweep_staging(self, remove: bool = True) -> list[Leftover]: ...


@runtime_checkable
class SweepingUploads(Protocol):
    """A store whose writers leave unfinished uploads when they die (S3): told by age only."""

    def sweep_uploads(self, older_than: timedelta, remove: bool = True) -> list[Leftover]: ...


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


def leftover_findings(store: ObjectStore, grace: timedelta) -> list[Finding]:
    """Sweep ``store``'s staging area (on S3: its unfinished uploads begun more than ``grace``
    ago) and report each leftover found as a finding."""
    found = sweep_leftovers(store)
    if isinstance(store, SweepingUploads):
        found += store.sweep_uploads(grace)
    findings = []
    for item in found:
        if item.kind == "upload":
            what = (f"an unfinished multipart upload begun more than {int(grace.total_seconds())} s ago "
                    "(--in-flight-grace): its writer died or gave up")
            fix = "abort it (aws s3api abort-multipart-upload), or give the bucket a lifecycle rule that does"
        else:
            what = f"a staging file of {item.size} bytes whose writer is gone (killed while it wrote)"
            if item.linked:
                what += "; it was also linked as a stored object, which stays as stored"
            fix = "remove it by hand"
        done = "it was aborted" if item.kind == "upload" else "it was removed"
        outcome = done if item.removed else f"it could not be removed ({item.error}): {fix}"
        extra = {"size": item.size, "removed": item.removed}
        findings.append(Finding(FindingKind.STAGING_LEFTOVER, item.path, f"{what}; {outcome}", extra=extra))
    return findings
