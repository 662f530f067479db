"""Disposition: destroying what the law says must be destroyed, and nothing else.

A candidate is an object whose category says it must be destroyed once its retention has
passed (``after = "destroy"``), whose retain-until date (as the store reports it, and as the
ledger records it) has passed, and that carries no legal hold (in the store, or in the ledger).
Objects under retention or hold are never asked to be deleted. Each deletion is recorded as a
``disposed`` event that keeps the object's digests, size and location forever.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from custody.cases.holds import holds_on
from custody import times
from custody.cases.retention import load_categories, object_retention
from custody.workspace import Workspace
from storage.errors import ObjectNotFound


@dataclass
class Disposition:
    blake3: str
    sha256: str
    size: int
    store_key: str
    version: str
    category: str
    retained_until: str
    attachments: list[str] = field(default_factory=list)
    done: bool = False
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def expired(workspace: Workspace) -> list[Disposition]:
    """Every object that must now be destroyed (dry run: nothing is changed)."""
    categories = load_categories(workspace.settings.config)
    now = workspace.store.now()
    due = []
    for row in workspace.ledger.all_evidence():
        state = object_retention(workspace.ledger, row["blake3"])
        category = categories.get(state.category)
        if state.disposed or category is None or category.after != "destroy":
            continue
        if state.until > now or holds_on(workspace.ledger, row["blake3"]):
            continue
        try:
            info = workspace.store.stat(row["store_key"], row["version"])
        except ObjectNotFound:
            continue
        if info.legal_hold or info.retention is None or info.retention.until > now:
            continue
        attachments = [
            spec["key"]
            for event in workspace.ledger.events(evidence=row["blake3"], actions=("ingested",))
            for spec in event.details.get("attachments", {}).values()
        ]
        due.append(
            Disposition(
                row["blake3"], row["sha256"], row["size"], row["store_key"], row["version"],
                state.category, times.format_utc(info.retention.until), attachments,
            )
        )
    return due


def dispose_expired(
    workspace: Workspace, *, confirm: bool, reason: str | None = None, only: Collection[str] | None = None
) -> list[Disposition]:
    """List the objects due for destruction; with ``confirm``, delete each version and record a
    ``disposed`` event for it. With ``only`` (an approved request's list), nothing outside that
    list is touched, and an object of the list no longer due (held since) is kept."""
    due = expired(workspace)
    if only is not None:
        allowed = set(only)
        due = [item for item in due if item.blake3 in allowed]
    if not confirm:
        return due
    for item in due:
        workspace.store.delete(item.store_key, item.version)
        for key in item.attachments:
            try:
                attachment = workspace.store.stat(key)
                workspace.store.delete(key, attachment.version)
            except ObjectNotFound:
                pass
        event = workspace.ledger.append(
            "disposed",
            actor=workspace.settings.actor,
            role=workspace.settings.role,
            subject={"evidence": item.blake3},
            details={
                "blake3": item.blake3,
                "sha256": item.sha256,
                "size": item.size,
                "store": {"location": workspace.store.describe(), "key": item.store_key, "version": item.version},
                "category": item.category,
                "retained_until": item.retained_until,
                "reason": reason or f"retention expired; category {item.category!r} requires destruction",
                "attachments": item.attachments,
            },
        )
        item.done = True
        item.seq = event.seq
    if due:
        workspace.seal()
    return due
