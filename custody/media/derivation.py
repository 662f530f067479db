"""Derivatives: ingesting a redacted or transcoded copy of a preserved object, recorded as
derived from it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from custody.errors import BadInput
from custody.evidence.ingest import IngestResult
from custody.evidence.references import resolve_preserved
from custody.ledger.canonical import printable_path
from custody.media.inspection import MediaInspector
from custody.media.tools import _clean
from custody.workspace import Workspace

@dataclass
class Derived:
    """The ingest of a derivative and the derivation recorded with it."""

    result: IngestResult
    derived_from: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.result.as_dict(), "derived_from": self.derived_from}


def derive(workspace: Workspace, path: str, ref: str, *, tool: str, params: str, note: str | None = None,
           inspector: MediaInspector | None = None) -> Derived:
    """Ingest ``path`` as a derivative (redacted or transcoded copy) of the preserved object
    ``ref``: its ingest event's ``derived_from`` names the parent's BLAKE3 and SHA-256, the tool
    and its parameters. Bytes that are already preserved are recorded as another acquisition,
    without a derivation: that is ``BadInput``, after the acquisition is recorded."""
    from custody.evidence.ingest import ingest_paths

    if not os.path.isfile(path):
        raise BadInput(f"{printable_path(path)}: not a regular file")
    found = resolve_preserved(workspace.ledger, ref)
    parent = found.blake3
    derivation = {"parent": parent, "parent_sha256": str(found.row["sha256"]), "tool": _clean(tool), "params": _clean(params)}
    inspector = inspector or MediaInspector()
    try:
        results = ingest_paths(workspace, [path], derivation=derivation, inspector=inspector, note=note)
    finally:
        inspector.close()
    inspector.annotate(results)
    result = results[0]
    if result.status == "already-stored":
        raise BadInput(
            f"{printable_path(path)}: these bytes are already preserved (BLAKE3 {result.blake3}); the acquisition "
            f"was recorded as event {result.seq}, but not as derived from {parent}"
        )
    if result.status != "recorded":
        raise BadInput(f"{result.path}: {result.status}: {result.reason}")
    return Derived(result, derivation)
