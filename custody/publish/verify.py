"""Checking a release: offline (no database) against its event and proofs, and, with access
to the ledger, by recomputing every count at the release's checkpoint.

Offline, every finding is collected: the event's hash is recomputed from its canonical bytes;
its tlog-proof must verify against a checkpoint signed by the verifier key (the one given, else
the release's own, which the report says); the release's checkpoint must be signed by the same
key, be the one the event names, and be consistent with the proof's checkpoint; every file the
event names must be present (a regular file, not a link) with that SHA-256, and nothing else may
be in the directory. Recomputing compares every published value, cell by cell.

This module imports no database code: ``recompute`` receives the ledger from its caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custody.anchors.cosign import CosignerVerifier
from custody.errors import BadInput, Finding, FindingKind
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.canonical import canonical_bytes
from custody.publish.release import ACTION, CHECKPOINT, CONSISTENCY, ENVELOPE, EVENT, PROOF, VERIFIER_KEY
from custody.publish.witnessed import check_witnesses

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

MAX_FILE = 256 * 1024 * 1024
MAX_SMALL = 4 * 1024 * 1024
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class ReleaseCheck:
    root: Path
    key: str | None = None
    key_source: str = "release"
    event: dict[str, Any] | None = None
    files_checked: int = 0
    cells_compared: int = 0
    mismatched_cells: list[dict[str, Any]] = field(default_factory=list)
    recomputed: bool = False
    cosigned_by: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def finding(self, kind: FindingKind, subject: str, message: str, **extra: Any) -> None:
        self.findings.append(Finding(kind, subject, message, extra=extra))

    def as_dict(self) -> dict[str, Any]:
        details = (self.event or {}).get("details", {})
        return {
            "ok": self.ok,
            "release": str(self.root),
            "event": (self.event or {}).get("seq"),
            "checkpoint": details.get("checkpoint", {}).get("size") if isinstance(details, dict) else None,
            "verifier_key": self.key,
            "verifier_key_from": self.key_source,
            "files_checked": self.files_checked,
            "cosigned_by": self.cosigned_by,
            "recomputed": self.recomputed,
            "cells_compared": self.cells_compared,
            "mismatched_cells": self.mismatched_cells,
            "findings": [f.as_dict() for f in self.findings],
        }


def _read(check: ReleaseCheck, name: str, limit: int = MAX_SMALL) -> bytes | None:
    """A file of the release: a regular file directly in it, not a link, at most ``limit`` bytes."""
    path = check.root / name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        check.finding(FindingKind.MISSING, name, "missing from the release")
        return None
    if not stat.S_ISREG(info.st_mode):
        check.finding(FindingKind.UNEXPECTED, name, "is not a regular file (a link or special file); it was not read")
        return None
    if info.st_size > limit:
        check.finding(FindingKind.MISMATCH, name, f"is larger than {limit} bytes; it was not read")
        return None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit + 1)[:limit]


def _event(check: ReleaseCheck) -> tuple[dict[str, Any], bytes] | None:
    raw = _read(check, EVENT)
    if raw is None:
        return None
    try:
        event = json.loads(raw)
        body = {k: event[k] for k in ("seq", "time", "actor", "role", "action", "subject", "details", "tool", "prev_hash")}
        leaf = canonical_bytes(body)
    except (ValueError, KeyError, TypeError) as exc:
        check.finding(FindingKind.MISMATCH, EVENT, f"is not a ledger event: {exc}")
        return None
    if not isinstance(event, dict) or not isinstance(event.get("details"), dict):
        check.finding(FindingKind.MISMATCH, EVENT, "is not a ledger event")
        return None
    digest = hashlib.sha256(b"\x00" + leaf).hexdigest()
    if event.get("hash") != digest:
        check.finding(FindingKind.MISMATCH, EVENT, "its hash does not match its content (the event was altered)",
                      expected=str(event.get("hash")), found=digest)
    if event.get("action") != ACTION:
        check.finding(FindingKind.MISMATCH, EVENT, f"is a {event.get('action')!r} event, not {ACTION!r}")
    check.event = event
    return event, hashlib.sha256(b"\x00" + leaf).digest()


def _verifier(check: ReleaseCheck, trusted: notes.Verifier | None) -> notes.Verifier | None:
    if trusted is not None:
        check.key, check.key_source = trusted.to_text(), "given"
        return trusted
    raw = _read(check, VERIFIER_KEY)
    if raw is None:
        return None
    try:
        verifier = notes.Verifier.from_text(raw.decode("utf-8").strip())
    except (UnicodeDecodeError, notes.TlogError) as exc:
        check.finding(FindingKind.MISMATCH, VERIFIER_KEY, f"is not a verifier key: {exc}")
        return None
    check.key = verifier.to_text()
    return verifier


def _proofs(check: ReleaseCheck, event: Mapping[str, Any], leaf: bytes, verifier: notes.Verifier) -> None:
    proof_text = _read(check, PROOF)
    checkpoint_text = _read(check, CHECKPOINT)
    proved: notes.VerifiedTlogProof | None = None
    if proof_text is not None:
        try:
            proved = notes.verify_tlog_proof(proof_text, [verifier], leaf_hash=leaf, origin=verifier.name)
        except (notes.TlogError, ValueError) as exc:
            check.finding(FindingKind.MISMATCH, PROOF, f"does not prove the event in a checkpoint signed by the key: {exc}")
        else:
            if proved.index != event.get("seq"):
                check.finding(FindingKind.MISMATCH, PROOF, f"proves index {proved.index}, but the event is {event.get('seq')}")
    if checkpoint_text is None:
        return
    try:
        point, _ = notes.open_checkpoint(checkpoint_text, [verifier], origin=verifier.name)
    except notes.TlogError as exc:
        check.finding(FindingKind.MISMATCH, CHECKPOINT, f"is not a checkpoint signed by the key: {exc}")
        return
    named = event.get("details", {}).get("checkpoint", {})
    if named.get("size") != point.size or named.get("root") != point.root.hex():
        check.finding(FindingKind.MISMATCH, CHECKPOINT, f"is checkpoint {point.size}, but the event names {named.get('size')}")
    if proved is None:
        return
    raw = _read(check, CONSISTENCY)
    if raw is None:
        return
    try:
        lines = raw.decode("ascii").split("\n")
        old, new = int(lines[0]), int(lines[1])
        hashes = [base64.b64decode(line, validate=True) for line in lines[2:] if line]
    except (UnicodeDecodeError, ValueError, IndexError, binascii.Error) as exc:
        check.finding(FindingKind.MISMATCH, CONSISTENCY, f"is malformed: {exc}")
        return
    later = proved.checkpoint
    if (old, new) != (point.size, later.size) or not tree.verify_consistency(
        point.size, later.size, point.root, later.root, hashes
    ):
        check.finding(FindingKind.MISMATCH, CONSISTENCY,
                      f"does not prove checkpoint {point.size} is part of checkpoint {later.size}")


def _files(check: ReleaseCheck, event: Mapping[str, Any]) -> None:
    named = event.get("details", {}).get("files")
    if not isinstance(named, dict) or not named:
        check.finding(FindingKind.MISMATCH, EVENT, "names no files")
        return
    for name, expected in sorted(named.items()):
        if not isinstance(name, str) or not FILE_NAME.match(name) or name in ENVELOPE:
            check.finding(FindingKind.MISMATCH, EVENT, f"names an unacceptable file {name!r}")
            continue
        data = _read(check, name, MAX_FILE)
        if data is None:
            continue
        check.files_checked += 1
        found = hashlib.sha256(data).hexdigest()
        if found != expected:
            check.finding(FindingKind.MISMATCH, name, "its SHA-256 is not the one the published event records (the file was changed)",
                          algorithm="sha256", expected=str(expected), found=found)
    try:
        present = sorted(os.listdir(check.root))
    except OSError as exc:
        check.finding(FindingKind.MISSING, str(check.root), f"cannot be listed: {exc.strerror}")
        return
    for name in present:
        if name not in named and name not in ENVELOPE:
            check.finding(FindingKind.UNEXPECTED, name, "is in the release directory but not named by its event")


def verify_release(root: Path, trusted: notes.Verifier | None = None, witnesses: Sequence[CosignerVerifier] = (),
                   quorum: int = 0) -> ReleaseCheck:
    """Check a release directory offline; every finding is collected. With ``witnesses``, at
    least ``quorum`` of them must have cosigned the checkpoint the event is proved in."""
    if root.is_symlink() or not root.is_dir():
        raise BadInput(f"{root}: not a release directory")
    check = ReleaseCheck(root)
    verifier = _verifier(check, trusted)
    loaded = _event(check)
    if loaded is None:
        return check
    event, leaf = loaded
    if verifier is not None:
        _proofs(check, event, leaf, verifier)
    proof_path = root / PROOF  # read again without findings: _proofs reported any problem with it
    proof = None
    if witnesses and proof_path.is_file() and not proof_path.is_symlink():
        with proof_path.open("rb") as handle:
            proof = handle.read(MAX_SMALL).decode("utf-8", "replace")
    check.cosigned_by, found = check_witnesses(root, proof, witnesses, quorum)
    check.findings.extend(found)
    _files(check, event)
    return check


def release_cells(check: ReleaseCheck) -> dict[tuple[str, str, str], int | None] | None:
    """The published values in the release's ``data.json``."""
    raw = _read(check, "data.json", MAX_FILE)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        cells: dict[tuple[str, str, str], int | None] = {}
        for table in data["tables"]:
            dimension = table["column_dimension"]
            for cell in table["cells"]:
                cells[(table["name"], cell["period"], cell[dimension])] = cell["count"]
        return cells
    except (ValueError, KeyError, TypeError) as exc:
        check.finding(FindingKind.MISMATCH, "data.json", f"is malformed: {exc}")
        return None


def recompute(check: ReleaseCheck, ledger: Ledger) -> None:
    """Compute the release again from the ledger at its checkpoint, with the rules its event
    states, and compare every published value."""
    from custody.publish.release import compute_at
    from custody.publish.rules import PublishRules
    from custody.publish.stats import published_cells

    if check.event is None:
        return
    details = check.event["details"]
    size, root = details["checkpoint"]["size"], details["checkpoint"]["root"]
    head, _ = ledger.head()
    if size > head:
        check.finding(FindingKind.MISMATCH, "ledger", f"has {head} events, fewer than the release's checkpoint {size}")
        return
    actual = ledger.with_nodes(lambda nodes: tree.root(nodes, size)).hex()
    if actual != root:
        check.finding(FindingKind.MISMATCH, "ledger", f"its first {size} events do not have the root the release names",
                      expected=root, found=actual)
        return
    check.recomputed = True
    expected = published_cells(compute_at(ledger, size, PublishRules.from_dict(details["rules"])))
    found = release_cells(check)
    if found is None:
        return
    for key in sorted(set(expected) | set(found)):
        check.cells_compared += 1
        if expected.get(key, "absent") != found.get(key, "absent"):
            check.mismatched_cells.append({"table": key[0], "period": key[1], "column": key[2],
                                           "recomputed": expected.get(key, "absent"), "release": found.get(key, "absent")})
    if check.mismatched_cells:
        check.finding(FindingKind.MISMATCH, "data.json",
                      f"{len(check.mismatched_cells)} of {check.cells_compared} value(s) differ from the recomputation")
