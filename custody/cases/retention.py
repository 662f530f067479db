"""Retention categories (data, in TOML) and the only-ever-lengthen rule.

An object's retention is first set at ingest (category ``unflagged``). Flagging or a change of
category computes a new retain-until date; it is applied to the stored object itself (server-side
on S3), confirmed, and only then recorded as a ``retention-extended`` event. A change that would
shorten the retention is refused and nothing changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, TYPE_CHECKING

from custody import times
from custody.errors import BadInput, ConfigError, PolicyRefused, RefusedBy
from custody.refusals import stopped_batch
from custody.workspace import Workspace
from storage.errors import RetentionViolation

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

DEFAULT_CATEGORY = "unflagged"
STARTS = ("ingest", "recorded", "flagging")
"""What a category's minimum is counted from: when the recording was preserved, when it was
recorded (its ingest event's ``recorded.start``: the camera's own time, a vendor's sidecar, or
the file's modification time, whichever was best), or when it was first flagged."""
FLAGGED_CATEGORY = "flagged"


@dataclass(frozen=True)
class RetentionCategory:
    name: str
    duration: timedelta | None
    starts: str
    after: str
    legal_hold: bool
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "days": None if self.duration is None else self.duration.days,
            "seconds": None if self.duration is None else self.duration.seconds,
            "starts": self.starts,
            "after": self.after,
            "legal_hold": self.legal_hold,
            "source": self.source,
        }


def _category(name: str, spec: Mapping[str, Any]) -> RetentionCategory:
    where = f"retention category {name!r}"
    legal_hold = bool(spec.get("legal_hold", False))
    duration = None
    if not legal_hold:
        days, seconds = spec.get("days", 0), spec.get("seconds", 0)
        if not isinstance(days, int) or not isinstance(seconds, int) or days < 0 or seconds < 0 or days + seconds == 0:
            raise ConfigError(f"{where}: give a positive whole number of days (or seconds)")
        duration = timedelta(days=days, seconds=seconds)
    starts = spec.get("starts", "ingest")
    after = spec.get("after", "review")
    if starts not in STARTS:
        raise ConfigError(f"{where}: starts must be one of {', '.join(STARTS)}, not {starts!r}")
    if after not in ("destroy", "review"):
        raise ConfigError(f"{where}: after must be 'destroy' or 'review', not {after!r}")
    return RetentionCategory(name, duration, starts, after, legal_hold, str(spec.get("source", "agency policy")))


def load_categories(config: Mapping[str, Any]) -> dict[str, RetentionCategory]:
    """The shipped defaults, overridden and extended by ``config['retention']['categories']``."""
    shipped = tomllib.loads(resources.files("custody.cases").joinpath("retention.toml").read_text(encoding="utf-8"))
    specs: dict[str, dict[str, Any]] = {name: dict(spec) for name, spec in shipped["categories"].items()}
    agency = config.get("retention", {}).get("categories", {})
    for name, spec in agency.items():
        specs[name] = {**specs.get(name, {}), **spec}
    categories = {name: _category(name, spec) for name, spec in specs.items()}
    for required in (DEFAULT_CATEGORY, FLAGGED_CATEGORY):
        if categories[required].duration is None:
            raise ConfigError(f"retention category {required!r} must have a duration")
    return categories


@dataclass
class ObjectRetention:
    """An object's retention as the ledger records it."""

    blake3: str
    category: str
    until: datetime
    ingested_at: datetime
    flagged_at: datetime | None
    disposed: bool = False
    recorded_at: datetime | None = None
    recorded_source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "blake3": self.blake3,
            "category": self.category,
            "until": times.format_utc(self.until),
            "ingested_at": times.format_utc(self.ingested_at),
            "flagged_at": times.format_utc(self.flagged_at) if self.flagged_at else None,
            "disposed": self.disposed,
            "recorded_at": times.format_utc(self.recorded_at) if self.recorded_at else None,
            "recorded_source": self.recorded_source,
        }


def object_retention(ledger: Ledger, blake3: str) -> ObjectRetention:
    """Replay the object's ingest, retention and disposal events."""
    state: ObjectRetention | None = None
    for event in ledger.events(evidence=blake3, actions=("ingested", "retention-extended", "disposed")):
        if event.action == "ingested" and state is None:
            retention = event.details.get("retention", {})
            category = retention.get("category", DEFAULT_CATEGORY)
            state = ObjectRetention(
                blake3,
                DEFAULT_CATEGORY if category == "default" else category,
                times.parse_utc(retention["until"]),
                times.parse_utc(event.time),
                None,
            )
            recorded = event.details.get("recorded")
            if isinstance(recorded, dict) and isinstance(recorded.get("start"), str):
                try:
                    state.recorded_at = times.parse_utc(recorded["start"])
                    state.recorded_source = str(recorded.get("source"))
                except ValueError:
                    pass
        elif event.action == "retention-extended" and state is not None:
            state.category = event.details["category"]
            state.until = max(state.until, times.parse_utc(event.details["until"]))
            if event.details.get("flagged_at") and state.flagged_at is None:
                state.flagged_at = times.parse_utc(event.details["flagged_at"])
        elif event.action == "disposed" and state is not None:
            state.disposed = True
    if state is None:
        raise BadInput(f"{blake3}: not a preserved object")
    return state


def _apply(workspace: Workspace, blake3: str, until: datetime) -> datetime:
    """Extend the stored object's retention to ``until`` (never shorter) and confirm it."""
    row = workspace.ledger.evidence_row(blake3)
    if row is None:
        raise BadInput(f"{blake3}: not a preserved object")
    try:
        info = workspace.store.extend_retention(row["store_key"], row["version"], until)
    except RetentionViolation as exc:  # the stored lock is later than the ledger says: a shortening
        raise PolicyRefused(f"{blake3}: {exc}; nothing was changed for it", refused_by=RefusedBy.RETENTION,
                            subject={"evidence": blake3}) from exc
    if info.retention is None or info.retention.mode != "COMPLIANCE" or info.retention.until < until - timedelta(seconds=1):
        raise PolicyRefused(f"{blake3}: the store did not confirm the new retention until {times.format_utc(until)}",
                            refused_by=RefusedBy.STORE, subject={"evidence": blake3})
    return info.retention.until


def _extend(workspace: Workspace, blake3: str, category: str, until: datetime, reason: str, flagged_at: datetime | None) -> dict[str, Any]:
    current = object_retention(workspace.ledger, blake3)
    if current.disposed:
        raise PolicyRefused(f"{blake3}: was disposed of; its retention cannot change", refused_by=RefusedBy.RETENTION,
                            subject={"evidence": blake3})
    if until < current.until:
        raise PolicyRefused(
            f"{blake3}: category {category!r} would shorten the retention from {times.format_utc(current.until)} to "
            f"{times.format_utc(until)}; retention is only ever lengthened, nothing was changed",
            refused_by=RefusedBy.RETENTION,
            subject={"evidence": blake3},
        )
    confirmed = _apply(workspace, blake3, until)
    details: dict[str, Any] = {
        "category": category,
        "until": times.format_utc(confirmed),
        "previous_until": times.format_utc(current.until),
        "previous_category": current.category,
        "reason": reason,
    }
    if flagged_at is not None:
        details["flagged_at"] = times.format_utc(flagged_at)
    workspace.ledger.append(
        "retention-extended",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        subject={"evidence": blake3},
        details=details,
    )
    return {"blake3": blake3, **details}


def flag_objects(workspace: Workspace, blake3s: Sequence[str], *, reason: str, seal: bool = True) -> list[dict[str, Any]]:
    """Flag objects: retained at least the ``flagged`` duration from their first flagging.
    Objects already flagged keep their flagging date (nothing is recorded for them). With
    ``seal``, a checkpoint is signed if anything was recorded (callers that go on appending
    pass False and seal at their end)."""
    flagged = load_categories(workspace.settings.config)[FLAGGED_CATEGORY]
    assert flagged.duration is not None
    now = workspace.store.now()
    plan = []
    for blake3 in blake3s:
        current = object_retention(workspace.ledger, blake3)
        if current.flagged_at is not None or current.disposed:
            continue
        plan.append((blake3, FLAGGED_CATEGORY, max(current.until, now + flagged.duration), now))
    changes = _extend_each(workspace, plan, reason)
    if seal and changes:
        workspace.seal()
    return changes


def set_category(workspace: Workspace, blake3s: Sequence[str], category_name: str, reason: str) -> list[dict[str, Any]]:
    """Put objects in a category. Every object is checked before any is changed: one that
    would be shortened refuses the whole command (exit 4)."""
    categories = load_categories(workspace.settings.config)
    if category_name not in categories:
        raise BadInput(f"--category: unknown category {category_name!r}; see 'custody retention categories'")
    category = categories[category_name]
    if category.legal_hold:
        raise BadInput(
            f"--category: {category_name!r} is kept by a legal hold until final disposition; use "
            "'custody hold place NAME --authority ... --reason ...' for it"
        )
    assert category.duration is not None
    now = workspace.store.now()
    plan = []
    for blake3 in blake3s:
        current = object_retention(workspace.ledger, blake3)
        flagged_at = None
        if category.starts == "ingest":
            until = current.ingested_at + category.duration
        elif category.starts == "recorded":
            until = (current.recorded_at or current.ingested_at) + category.duration
        else:
            flagged_at = current.flagged_at or now
            until = flagged_at + category.duration
        if until < current.until:
            raise PolicyRefused(
                f"{blake3}: category {category_name!r} would shorten the retention from {times.format_utc(current.until)} "
                f"to {times.format_utc(until)}; retention is only ever lengthened, nothing was changed",
                refused_by=RefusedBy.RETENTION,
                subject={"evidence": blake3},
            )
        plan.append((blake3, until, flagged_at if current.flagged_at is None else None))
    changes = _extend_each(workspace, [(b3, category_name, until, flagged) for b3, until, flagged in plan], reason)
    workspace.seal()
    return changes


def _extend_each(
    workspace: Workspace, plan: Sequence[tuple[str, str, datetime, datetime | None]], reason: str
) -> list[dict[str, Any]]:
    """``_extend`` each (blake3, category, until, flagged_at) in order. A refusal (the store's
    lock is later than the ledger says) stops the batch; what was changed before it stays
    changed and recorded (sealed), and the refusal says which objects those were."""
    changes: list[dict[str, Any]] = []
    for blake3, category, until, flagged_at in plan:
        try:
            changes.append(_extend(workspace, blake3, category, until, reason, flagged_at))
        except PolicyRefused as exc:
            if not changes:
                raise
            raise stopped_batch(workspace, exc, [change["blake3"] for change in changes], len(plan)) from exc
    return changes
