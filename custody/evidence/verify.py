"""Verify stored bytes against the ledger (references resolved by ``custody.evidence.references``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import blake3 as blake3_mod

from custody.ledger.canonical import printable_path
from custody.errors import BadInput, Finding, FindingKind
from custody.evidence.hashing import blake3_file
from custody.evidence.references import Resolved, resolve
from custody.ledger.database import Ledger
from custody.workspace import Workspace
from storage.base import LocalPaths, ObjectStore
from storage.errors import ObjectNotFound, StorageError

@dataclass
class VerifyResult:
    ref: str
    blake3: str | None
    ok: bool
    store_key: str | None = None
    file_matches: bool | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "blake3": self.blake3,
            "ok": self.ok,
            "store_key": self.store_key,
            "file_matches": self.file_matches,
            "findings": [f.as_dict() for f in self.findings],
        }


def stored_blake3(store: ObjectStore, key: str, version: str | None) -> str:
    """BLAKE3 of a stored object's bytes, re-read from the store (memory-mapped when local)."""
    if isinstance(store, LocalPaths):
        return blake3_file(store.local_path(key, version))
    hasher = blake3_mod.blake3()
    with store.open(key, version) as stream:
        while chunk := stream.read(8 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify_object(ledger: Ledger, store: ObjectStore, resolved: Resolved) -> VerifyResult:
    result = VerifyResult(resolved.ref, resolved.blake3, ok=True)
    row = ledger.evidence_row(resolved.blake3) if resolved.blake3 else None
    subject = printable_path(resolved.ref)
    if row is None:
        result.ok = False
        result.file_matches = False
        result.findings.append(
            Finding(
                FindingKind.NOT_PRESERVED,
                subject,
                f"these bytes (BLAKE3 {resolved.blake3}) are not a preserved object",
            )
        )
        return result
    result.store_key = row["store_key"]
    if resolved.path is not None:
        result.file_matches = True
    # every event about the object is read (not only a disposal), so that one altered outside
    # custody is named (LedgerCorrupt) rather than trusted
    disposed = next((e for e in ledger.events(evidence=row["blake3"]) if e.action == "disposed"), None)
    if disposed is not None:
        result.ok = False
        result.findings.append(
            Finding(
                FindingKind.DISPOSED,
                subject,
                f"the object was destroyed under its retention rules on {disposed.time} (event {disposed.seq}); "
                "its digests remain in the ledger",
            )
        )
        return result
    try:
        found = stored_blake3(store, row["store_key"], row["version"])
    except ObjectNotFound:
        result.ok = False
        result.findings.append(
            Finding(FindingKind.MISSING, subject, f"the stored object {row['store_key']} (version {row['version']}) is missing")
        )
        return result
    except (OSError, StorageError) as exc:
        result.ok = False
        result.findings.append(
            Finding(FindingKind.UNREADABLE, subject, f"the stored object {row['store_key']} could not be read: {exc}")
        )
        return result
    if found != row["blake3"]:
        result.ok = False
        result.findings.append(
            Finding(
                FindingKind.MISMATCH,
                subject,
                f"the stored object {row['store_key']} no longer has the recorded content",
                "blake3",
                row["blake3"],
                found,
            )
        )
    return result


def expand_directories(refs: list[str]) -> list[tuple[str, str | None]]:
    """References with each directory replaced by the files in it, walked as ``ingest`` walks
    (recursively, in name order, links to directories not followed), each with None; what
    ingest would skip there (FIFOs, devices, sockets, broken links) comes with the reason."""
    from custody.evidence.ingest import Candidate, collect

    expanded: list[tuple[str, str | None]] = []
    for ref in refs:
        if not os.path.isdir(ref):
            expanded.append((ref, None))
            continue
        for item in collect([ref]).items:
            if isinstance(item, Candidate):
                expanded.append((item.path, None))
            else:
                expanded.append((item.path, item.reason))
    return expanded


def verify_refs(ledger: Ledger, store: ObjectStore, refs: list[str]) -> list[VerifyResult]:
    """Verify every reference (a directory: every file in it); a bad reference becomes a
    finding, the others are still checked."""
    results = []
    for ref, skipped in expand_directories(refs):
        if skipped is not None:
            shown = printable_path(ref)
            results.append(VerifyResult(ref, None, ok=False, findings=[Finding(FindingKind.BAD_REFERENCE, shown, f"{shown}: {skipped}")]))
            continue
        try:
            resolved = resolve(ledger, ref)
        except BadInput as exc:
            results.append(VerifyResult(ref, None, ok=False, findings=[Finding(FindingKind.BAD_REFERENCE, printable_path(ref), str(exc))]))
            continue
        results.append(verify_object(ledger, store, resolved))
    return results


def verify_and_record(workspace: Workspace, refs: list[str]) -> list[VerifyResult]:
    """Verify references and record a ``verified`` event (with the outcome) per preserved object."""
    results = verify_refs(workspace.ledger, workspace.store, refs)
    recorded = False
    for result in results:
        if result.blake3 and workspace.ledger.evidence_row(result.blake3) is not None:
            workspace.ledger.append(
                "verified",
                actor=workspace.settings.actor,
                role=workspace.settings.role,
                subject={"evidence": result.blake3},
                details={"ok": result.ok, "algorithm": "blake3", "findings": [f.as_dict() for f in result.findings]},
            )
            recorded = True
    if recorded:
        workspace.seal()
    return results
