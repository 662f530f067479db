"""Objects in the store that the ledger does not account for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custody.audit.recorded import LedgerState
from custody.audit.shards import HEX64, Shard, key_digest
from custody.errors import Finding
from storage.base import ObjectStore

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

CANARY_PREFIX = "canary/"
"""The canaries of the lock self-test; with ``custody.ledger.seal.CHECKPOINT_PREFIX``, the tool's own
objects, which are not evidence (checkpoints are checked by the ledger verification)."""


def unrecorded_findings(store: ObjectStore, state: LedgerState, shard: Shard, ledger: Ledger) -> tuple[list[Finding], int]:
    """List the whole store; a finding for every key of this shard the ledger does not account
    for, and for every recorded evidence key of this shard whose current version is not the
    recorded one. Returns (findings, number of keys listed)."""
    from custody.ledger.seal import CHECKPOINT_PREFIX

    own = (CHECKPOINT_PREFIX, CANARY_PREFIX)
    recorded = state.recorded_keys
    findings: list[Finding] = []
    listed = 0
    for info in store.list(""):
        listed += 1
        if info.key.startswith(own):
            continue
        owner = recorded.get(info.key)
        if owner is not None:
            obj = state.objects[owner]
            if info.key == obj.key and info.version and obj.version and info.version != obj.version \
                    and shard.contains(owner) and not obj.disposed:
                findings.append(Finding(
                    "unrecorded", info.key,
                    f"{info.key} has a newer version {info.version} that the ledger does not know; the recorded "
                    f"version is {obj.version} (a plain read of the key returns the unrecorded bytes)",
                    extra={"key": info.key, "version": info.version, "size": info.size}))
            continue
        digest = key_digest(info.key)
        if not shard.contains(digest):
            continue
        if HEX64.match(digest):
            row = ledger.evidence_row(digest)
            if row is not None and int(row["first_seq"]) >= state.through_seq:
                continue
        findings.append(Finding(
            "unrecorded", info.key,
            f"{info.key} is in the store but not in the ledger (a crash before its ingest was recorded, or "
            "put there by something other than this tool); run 'custody ingest' on the original to record it",
            extra={"key": info.key, "version": info.version or None, "size": info.size}))
    return findings, listed
