"""Disposition: destroying what the law says must be destroyed, and nothing else.

A candidate is an object whose category says it must be destroyed once its retention has
passed (``after = "destroy"``), whose retain-until date (as the store reports it, and as the
ledger records it) has passed, and that carries no legal hold (in the store, or in the ledger).
Objects under retention or hold are never asked to be deleted. Each deletion is recorded as a
``disposed`` event that keeps the object's digests, size and location forever.

Refusals are recorded (``refused`` events, ``custody.refusals``): an object an approved request
named that is no longer due (held since: a lock; its retention lengthened since: retention),
and a deletion the store itself refuses (its Object Lock or legal hold: a lock). The others
of the batch go on; ``DisposalRun.refusals`` lists what was refused.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from custody import times
from custody.cases.holds import holds_on
from custody.cases.retention import RetentionCategory, load_categories, object_retention
from custody.errors import PolicyRefused, RefusedBy
from custody.refusals import record_refusal
from custody.workspace import Workspace
from storage.errors import ObjectNotFound, RetentionViolation


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
    attachments_kept: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Refusal:
    """An object (or one of its attachments) that was not destroyed, why, and the ``refused``
    event that says so."""

    blake3: str
    refused_by: RefusedBy
    reason: str
    seq: int
    attachment: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"blake3": self.blake3, "refused_by": self.refused_by.value, "reason": self.reason, "seq": self.seq,
                "attachment": self.attachment}


@dataclass
class DisposalRun:
    """What a disposal destroyed (``items``, each ``done`` with its event), what it refused,
    and what a request named that no longer needs destroying (``gone``: disposed already, or
    missing from the store)."""

    items: list[Disposition]
    refusals: list[Refusal] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    def refused(self) -> PolicyRefused | None:
        """The error that ends the command with exit 4 when anything was refused (recorded
        already), or None."""
        if not self.refusals:
            return None
        last = self.refusals[-1]
        lines = [f"{r.blake3}{' attachment ' + r.attachment if r.attachment else ''}: refused ({r.refused_by}) "
                 f"event {r.seq}: {r.reason}" for r in self.refusals]
        return PolicyRefused(f"{len(self.refusals)} disposal(s) refused:\n" + "\n".join(lines),
                             refused_by=last.refused_by, recorded=last.seq)


def _why_kept(
    workspace: Workspace, row: Mapping[str, Any], categories: Mapping[str, RetentionCategory], now: datetime
) -> Disposition | tuple[RefusedBy, str] | None:
    """The object as a disposal candidate, or why it must be kept (what refuses its
    destruction), or None when there is nothing to destroy (disposed already, not in the store)."""
    blake3 = row["blake3"]
    state = object_retention(workspace.ledger, blake3)
    if state.disposed:
        return None
    held = holds_on(workspace.ledger, blake3)
    if held:
        return RefusedBy.LOCK, f"it is under legal hold {', '.join(held)}"
    if state.until > now:
        return RefusedBy.RETENTION, f"its retention ({state.category}) runs until {times.format_utc(state.until)}"
    category = categories.get(state.category)
    if category is None or category.after != "destroy":
        return RefusedBy.RETENTION, f"its category {state.category!r} is kept for review, not destroyed, after its retention"
    try:
        info = workspace.store.stat(row["store_key"], row["version"])
    except ObjectNotFound:
        return None
    if info.legal_hold:
        return RefusedBy.LOCK, "the store holds it under a legal hold"
    if info.retention is None:
        return RefusedBy.LOCK, "the store reports no retention on it"
    if info.retention.until > now:
        return RefusedBy.LOCK, f"the store's Object Lock retains it until {times.format_utc(info.retention.until)}"
    attachments = [
        spec["key"]
        for event in workspace.ledger.events(evidence=blake3, actions=("ingested",))
        for spec in event.details.get("attachments", {}).values()
    ]
    return Disposition(
        blake3, row["sha256"], row["size"], row["store_key"], row["version"],
        state.category, times.format_utc(info.retention.until), attachments,
    )


def expired(workspace: Workspace) -> list[Disposition]:
    """Every object that must now be destroyed (dry run: nothing is changed)."""
    categories = load_categories(workspace.settings.config)
    now = workspace.store.now()
    assessed = (_why_kept(workspace, row, categories, now) for row in workspace.ledger.all_evidence())
    return [item for item in assessed if isinstance(item, Disposition)]


def dispose_expired(
    workspace: Workspace, *, confirm: bool, reason: str | None = None, only: Collection[str] | None = None,
    request: int | None = None,
) -> DisposalRun:
    """List the objects due for destruction; with ``confirm``, delete each version and record a
    ``disposed`` event for it. With ``only`` (an approved request's list), nothing outside that
    list is touched, and an object of the list no longer due (held or retained since) is kept
    and its refusal recorded; ``request`` (that request's event) is named in each ``disposed``."""
    run = DisposalRun([])
    if only is None:
        run.items = expired(workspace)
    else:
        categories = load_categories(workspace.settings.config)
        now = workspace.store.now()
        for blake3 in sorted(set(only)):
            row = workspace.ledger.evidence_row(blake3)
            found = None if row is None else _why_kept(workspace, row, categories, now)
            if isinstance(found, Disposition):
                run.items.append(found)
            elif found is None:
                run.gone.append(blake3)
            elif confirm:
                kind, why = found
                run.refusals.append(_refuse(workspace, blake3, kind, f"{blake3}: not destroyed: {why}"))
    if not confirm:
        return run
    for item in run.items:
        try:
            workspace.store.delete(item.store_key, item.version)
        except RetentionViolation as exc:
            run.refusals.append(_refuse(workspace, item.blake3, RefusedBy.LOCK, f"{item.blake3}: the store refused to delete it: {exc}"))
            continue
        for key in item.attachments:
            try:
                attachment = workspace.store.stat(key)
                workspace.store.delete(key, attachment.version)
            except ObjectNotFound:
                pass
            except RetentionViolation as exc:
                item.attachments_kept.append(key)
                run.refusals.append(_refuse(workspace, item.blake3, RefusedBy.LOCK,
                                            f"{item.blake3}: the store refused to delete its attachment {key}: {exc}", key))
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
                **({"attachments_kept": item.attachments_kept} if item.attachments_kept else {}),
                **({"request": request} if request is not None else {}),
            },
        )
        item.done = True
        item.seq = event.seq
    if run.items or run.refusals:
        workspace.seal()
    return run


def _refuse(workspace: Workspace, blake3: str, kind: RefusedBy, reason: str, attachment: str | None = None) -> Refusal:
    event = record_refusal(workspace, reason, kind, subject={"evidence": blake3},
                           target={"attachment": attachment} if attachment else None, seal=False)
    return Refusal(blake3, kind, reason, event.seq, attachment)
