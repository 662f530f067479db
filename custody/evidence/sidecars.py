"""Sidecar files: what a vendor or a camera wrote about a recording (an audit-trail PDF or CSV,
a metadata JSON or XML). A sidecar is preserved like any evidence (its own object, its own
ingest event) and tied to the recording it describes by a ``sidecar-linked`` event:

    subject  {"evidence": <the recording's BLAKE3>}
    details  {"sidecar": {"blake3", "sha256", "size", "name"}, "how": "rule" | "link",
              "rule": <the pattern, for "rule">}

Links are made at ingest by name rules (``--sidecar '{stem}.json'``: the file named so, next
to a recording, is its sidecar) or afterwards (``custody link --sidecar FILE --to REF``).
A rule names a file in the recording's own folder: ``{stem}`` is the recording's name without
its last extension, ``{name}`` its whole name; a rule holding ``/``, ``..`` or any other field
is refused. A file that is some recording's sidecar is not itself a recording for the rules.
"""

from __future__ import annotations

import os
import stat as stat_mod
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from custody.errors import BadInput
from custody.ledger.canonical import printable_path
from custody.workspace import Workspace

if TYPE_CHECKING:
    from custody.ledger.database import CustodyEvent, Ledger

ACTION = "sidecar-linked"
FIELDS = ("stem", "name")


class Outcome(Protocol):
    """What is read of an ingest's result (custody.evidence.ingest.IngestResult)."""

    @property
    def path(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def blake3(self) -> str | None: ...


@dataclass(frozen=True)
class SidecarRule:
    pattern: str

    def name_for(self, recording: str) -> str:
        base = os.path.basename(recording)
        return self.pattern.format(stem=os.path.splitext(base)[0], name=base)


def parse_rules(patterns: Iterable[str]) -> list[SidecarRule]:
    """Check each ``--sidecar`` pattern (BadInput naming the faulty one)."""
    rules = []
    for pattern in patterns:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        except ValueError as exc:
            raise BadInput(f"--sidecar {pattern!r}: {exc}; write e.g. '{{stem}}.json'") from None
        if not fields or any(f not in FIELDS for f in fields):
            raise BadInput(f"--sidecar {pattern!r}: use {{stem}} or {{name}} (and nothing else in braces), e.g. '{{stem}}.json'")
        if "/" in pattern or os.sep in pattern or pattern.startswith("..") or "\x00" in pattern:
            raise BadInput(f"--sidecar {pattern!r}: a sidecar is named in its recording's own folder; no '/' or '..'")
        rules.append(SidecarRule(pattern))
    return rules


class SidecarRules:
    """The ``--sidecar`` rules of one ingest command, applied to its plan."""

    def __init__(self, rules: Sequence[SidecarRule]) -> None:
        self.rules = list(rules)
        self.pairs: list[tuple[str, str, SidecarRule]] = []
        """(recording path, sidecar path, rule), both as the plan names them."""
        self.linked: dict[str, dict[str, Any]] = {}
        """Printable sidecar path -> ``recording`` (BLAKE3), ``recording_path``, ``rule`` and
        ``seq`` (the ``sidecar-linked`` event; None when the link was recorded before)."""

    def planned(self, files: Sequence[str]) -> list[tuple[str, os.stat_result]]:
        """Find the sidecars of the files an ingest will read; the path and ``stat`` of each
        one that exists next to its recording but is not among ``files``, for the ingest to
        add (it is preserved too). Only regular files are added."""
        planned = {os.path.abspath(path): path for path in files}
        added: list[tuple[str, os.stat_result]] = []
        found: list[tuple[str, str, SidecarRule]] = []
        for path in files:
            for rule in self.rules:
                sibling = os.path.join(os.path.dirname(path), rule.name_for(path))
                if os.path.abspath(sibling) == os.path.abspath(path):
                    continue
                if os.path.abspath(sibling) in planned:
                    found.append((path, planned[os.path.abspath(sibling)], rule))
                    continue
                try:
                    st = os.stat(sibling)
                except OSError:
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    added.append((sibling, st))
                    planned[os.path.abspath(sibling)] = sibling
                    found.append((path, sibling, rule))
        sidecars = {s for _, s, _ in found}
        self.pairs = [(r, s, rule) for r, s, rule in found if r not in sidecars]
        return added

    def link(self, workspace: Workspace, results: Sequence[Outcome]) -> list[int]:
        """Append a ``sidecar-linked`` event for each pair whose files are both preserved;
        the events' numbers."""
        preserved = {
            r.path: r for r in results if r.blake3 and r.status in ("recorded", "already-stored")
        }
        seqs = []
        for recording, sidecar, rule in self.pairs:
            parent, child = preserved.get(printable_path(recording)), preserved.get(printable_path(sidecar))
            if parent is None or child is None or parent.blake3 == child.blake3:
                continue
            assert parent.blake3 is not None
            event = link_sidecar(workspace, parent.blake3, child, how="rule", rule=rule.pattern)
            if event is not None:
                seqs.append(event.seq)
            self.linked[child.path] = {"recording": parent.blake3, "recording_path": parent.path, "rule": rule.pattern,
                                       "seq": event.seq if event is not None else None}
        return seqs


def _already(ledger: Ledger, recording: str, sidecar: str) -> CustodyEvent | None:
    for event in ledger.events(evidence=recording, actions=(ACTION,)):
        if (event.details.get("sidecar") or {}).get("blake3") == sidecar:
            return event
    return None


def link_sidecar(
    workspace: Workspace, recording: str, sidecar: Outcome | Mapping[str, Any], *, how: str, rule: str | None = None
) -> CustodyEvent | None:
    """Record that the preserved object ``sidecar`` (with ``blake3``, ``sha256``, ``size`` and
    ``path`` attributes, or an evidence row) describes the recording ``recording``. None if
    that link is already recorded (a second ingest of the same folder adds no second link)."""
    ledger = workspace.ledger

    def get(key: str) -> Any:
        return sidecar.get(key) if isinstance(sidecar, Mapping) else getattr(sidecar, key, None)

    blake3 = str(get("blake3"))
    if blake3 == recording:
        raise BadInput("a file cannot be its own sidecar")
    if _already(ledger, recording, blake3) is not None:
        return None
    details: dict[str, Any] = {
        "sidecar": {"blake3": blake3, "sha256": get("sha256"), "size": get("size"),
                    "name": printable_path(os.path.basename(str(get("path") or get("name") or "")))},
        "how": how,
    }
    if rule is not None:
        details["rule"] = rule
    settings = workspace.settings
    return ledger.append(ACTION, actor=settings.actor, role=settings.role, subject={"evidence": recording},
                         details=details)


def sidecars_of(ledger: Ledger, recording: str, before: int | None = None) -> list[dict[str, Any]]:
    """The sidecars linked to ``recording`` (each once, oldest link first): ``blake3``,
    ``sha256``, ``size``, ``name``, ``how``, ``rule``, ``seq``, ``time``, ``actor``."""
    found: dict[str, dict[str, Any]] = {}
    for event in ledger.events(evidence=recording, actions=(ACTION,)):
        if before is not None and event.seq >= before:
            continue
        sidecar = event.details.get("sidecar") or {}
        if not isinstance(sidecar, dict) or not isinstance(sidecar.get("blake3"), str):
            continue
        found.setdefault(sidecar["blake3"], {
            **{k: sidecar.get(k) for k in ("blake3", "sha256", "size", "name")},
            "how": event.details.get("how"), "rule": event.details.get("rule"),
            "seq": event.seq, "time": event.time, "actor": event.actor,
        })
    return list(found.values())


def recordings_described_by(ledger: Ledger, sidecar: str) -> list[dict[str, Any]]:
    """The recordings ``sidecar`` is linked to (a scan of every ``sidecar-linked`` event)."""
    return [
        {"blake3": event.subject.get("evidence"), "seq": event.seq, "time": event.time}
        for event in ledger.events(actions=(ACTION,))
        if (event.details.get("sidecar") or {}).get("blake3") == sidecar
    ]


def with_sidecars(ledger: Ledger, blake3s: Sequence[str], before: int | None = None) -> dict[str, str | None]:
    """``blake3s`` and their sidecars that still have an evidence row: object -> the recording
    it is carried as a sidecar of, None for a recording. An object asked for that is also a
    sidecar of another one asked for is carried as that sidecar; a sidecar of a sidecar is
    not carried (unless asked for, then as a recording)."""
    selected = set(blake3s)
    disposed = {e.subject.get("evidence") for e in ledger.events(actions=("disposed",))}
    out: dict[str, str | None] = {b: None for b in blake3s}
    for recording in blake3s:
        for sidecar in sidecars_of(ledger, recording, before):
            found = sidecar["blake3"]
            if found == recording or out.get(found) is not None or (found in disposed and found not in selected):
                continue
            if found in selected or ledger.evidence_row(found) is not None:
                out[found] = recording
    for blake3, described in list(out.items()):
        if described is not None and out.get(described) is not None:
            if blake3 in selected:
                out[blake3] = None
            else:
                del out[blake3]
    return out


def sidecar_names(recordings: list[Any], names: list[str], sidecars: list[Any],
                  carried: Mapping[str, str | None]) -> tuple[list[Any], list[str]]:
    """A package's payload plan with each sidecar right after its recording, named after it:
    ``<recording name without extension>.sidecar-<n><the sidecar's extension>``. Each plan
    entry is a tuple whose first element is the evidence row and whose seventh the source."""
    by_recording: dict[str, list[Any]] = {}
    for entry in sidecars:
        by_recording.setdefault(str(carried[entry[0]["blake3"]]), []).append(entry)
    plan: list[Any] = []
    out: list[str] = []
    for entry, name in zip(recordings, names):
        plan.append(entry)
        out.append(name)
        stem = os.path.splitext(name)[0]
        for number, sidecar in enumerate(by_recording.get(entry[0]["blake3"], []), 1):
            extension = os.path.splitext(str(sidecar[6].get("name", "")))[1].lower()
            extension = "".join(c for c in extension if c.isascii() and (c.isalnum() or c == "."))[:12]
            plan.append(sidecar)
            out.append(f"{stem}.sidecar-{number}{extension if len(extension) > 1 else '.bin'}")
    return plan, out
