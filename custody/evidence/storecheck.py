"""What the object store really enforces, established by a canary and recorded in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.base import LockProbe, ObjectStore
from storage.errors import StorageError
from custody.workspace import Workspace


@dataclass
class StoreCheck:
    store: str
    worm: str
    probes: list[LockProbe]
    seq: int | None = None
    seal_error: str | None = None
    """Set when the checkpoint after the check could not be written (a defective store may
    refuse it); the check itself is recorded in the ledger either way."""

    @property
    def enforced(self) -> bool:
        return bool(self.probes) and all(p.refused for p in self.probes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "worm": self.worm,
            "enforced": self.enforced,
            "probes": [{"action": p.action, "refused": p.refused, "detail": p.detail} for p in self.probes],
            "seq": self.seq,
            "seal_error": self.seal_error,
        }


def check_store(workspace: Workspace) -> StoreCheck:
    """Run the store's lock self-test, append a ``store-checked`` event, sign a checkpoint.

    ``workspace`` is a ``custody.home.Workspace``."""
    store: ObjectStore = workspace.store
    result = StoreCheck(store.describe(), store.capabilities.worm, store.lock_self_test())
    event = workspace.ledger.append(
        "store-checked",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        details={
            "store": result.store,
            "worm": result.worm,
            "enforced": result.enforced,
            "probes": [{"action": p.action, "refused": p.refused, "detail": p.detail} for p in result.probes],
        },
    )
    result.seq = event.seq
    try:
        workspace.seal()
    except StorageError as exc:
        if result.enforced:
            raise
        result.seal_error = str(exc)
    return result
