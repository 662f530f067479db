"""Checking a release: offline (no database) against its event and proofs, and, with access
to the ledger, by recomputing every count at the release's checkpoint.

Offline, every finding is collected: the event's hash is recomputed from its canonical bytes;
its tlog-proof must verify against a checkpoint signed by the verifier key (the one given, else
the release's own, which the report says); the release's checkpoint must be signed by the same
key, be the one the event names, and be consistent with the proof's checkpoint; every file the
event names must be present (a regular file, not a link) with that SHA-256, and nothing else may
be in the directory; and every CSV must say what data.json says (the same tables, rows, columns,
counts and suppressions), since the digests prove only that the files are as published.
Recomputing compares every published value, cell by cell, and makes the release's revision
statement again (the earlier release, its digest, every changed value).

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
    from custody.publish.release import Made
    from custody.publish.stats import Table

DATA = "data.json"
MAX_FILE = 256 * 1024 * 1024
MAX_CELL_FINDINGS = 20
"""Differing cells reported one by one per file; beyond that, one finding says how many more."""
MAX_SMALL = 4 * 1024 * 1024
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class ReleaseCheck:
    root: Path
    key: str | None = None
    key_source: str = "release"
    event: dict[str, Any] | None = None
    files_checked: int = 0
    csv_cells_checked: int = 0
    cells_compared: int = 0
    mismatched_cells: list[dict[str, Any]] = field(default_factory=list)
    recomputed: bool = False
    revision_checked: bool = False
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
            "csv_cells_checked": self.csv_cells_checked,
            "cosigned_by": self.cosigned_by,
            "recomputed": self.recomputed,
            "revision_checked": self.revision_checked,
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


def _files(check: ReleaseCheck, event: Mapping[str, Any]) -> dict[str, bytes]:
    """Check every file the event names; returns the content of its CSV files and data.json."""
    kept: dict[str, bytes] = {}
    named = event.get("details", {}).get("files")
    if not isinstance(named, dict) or not named:
        check.finding(FindingKind.MISMATCH, EVENT, "names no files")
        return kept
    for name, expected in sorted(named.items()):
        if not isinstance(name, str) or not FILE_NAME.match(name) or name in ENVELOPE:
            check.finding(FindingKind.MISMATCH, EVENT, f"names an unacceptable file {name!r}")
            continue
        data = _read(check, name, MAX_FILE)
        if data is None:
            continue
        check.files_checked += 1
        if name.endswith(".csv") or name == DATA:
            kept[name] = data
        found = hashlib.sha256(data).hexdigest()
        if found != expected:
            check.finding(FindingKind.MISMATCH, name, "its SHA-256 is not the one the published event records (the file was changed)",
                          algorithm="sha256", expected=str(expected), found=found)
    try:
        present = sorted(os.listdir(check.root))
    except OSError as exc:
        check.finding(FindingKind.MISSING, str(check.root), f"cannot be listed: {exc.strerror}")
        return kept
    for name in present:
        if name not in named and name not in ENVELOPE:
            check.finding(FindingKind.UNEXPECTED, name, "is in the release directory but not named by its event")
    return kept


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
    kept = _files(check, event)
    if DATA in kept:
        _tables_agree(check, kept)
    return check


def _data_tables(check: ReleaseCheck, raw: bytes) -> list[dict[str, Any]] | None:
    """The tables of data.json, each with a safe name, a column dimension and its cells."""
    try:
        data = json.loads(raw)
        tables = data["tables"]
        if not isinstance(tables, list):
            raise TypeError("'tables' is not a list")
        for table in tables:
            if not FILE_NAME.match(f"{table['name']}.csv") or not isinstance(table["column_dimension"], str):
                raise ValueError(f"a table is named {table['name']!r}")
            fields = ("period", table["column_dimension"], "count", "suppressed")
            if not all(isinstance(cell, dict) and all(f in cell for f in fields) for cell in table["cells"]):
                raise ValueError(f"a cell of table {table['name']!r} lacks one of {', '.join(fields)}")
        return tables
    except (ValueError, KeyError, TypeError) as exc:
        check.finding(FindingKind.MISMATCH, DATA, f"is malformed: {exc}")
        return None


def _tables_agree(check: ReleaseCheck, kept: Mapping[str, bytes]) -> None:
    """Every CSV says what data.json says: one CSV per table of data.json (and no other), the
    header ``period,<dimension>,count,suppressed``, the same rows, and in each the same count
    (empty when suppressed) and the same reason for a suppression. Within data.json, a cell has
    a count or a reason for its suppression, never both, never neither. The event's digests
    prove the files are as published; this proves they say the same thing."""
    tables = _data_tables(check, kept[DATA])
    if tables is None:
        return
    names = {f"{t['name']}.csv" for t in tables}
    for name in sorted(set(kept) - names - {DATA}):
        check.finding(FindingKind.UNEXPECTED, name, "is a CSV the release's event names, but data.json has no such table")
    for table in tables:
        name, dimension = f"{table['name']}.csv", table["column_dimension"]
        if name not in kept:
            check.finding(FindingKind.MISSING, name, f"data.json has table {table['name']!r}, but the release's event "
                          "names no such CSV")
            continue
        expected: dict[tuple[str, str], tuple[str, str]] = {}
        for cell in table["cells"]:
            count, reason = cell["count"], cell["suppressed"]
            key = (str(cell["period"]), str(cell[dimension]))
            if (count is None) == (reason is None) or (count is not None and (isinstance(count, bool)
                                                                                or not isinstance(count, int))):
                check.finding(FindingKind.MISMATCH, DATA, f"table {table['name']!r}, row {key[0]}, column {key[1]}: "
                              f"count {count!r} with suppressed {reason!r} (a cell has a count or a reason for "
                              "its suppression)")
            expected[key] = ("" if count is None else str(count), "" if reason is None else str(reason))
        _csv_agrees(check, name, dimension, kept[name], expected)


def _csv_agrees(check: ReleaseCheck, name: str, dimension: str, raw: bytes,
                expected: Mapping[tuple[str, str], tuple[str, str]]) -> None:
    import csv
    import io

    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        check.finding(FindingKind.MISMATCH, name, f"is not a UTF-8 CSV file: {exc}")
        return
    header = ["period", dimension, "count", "suppressed"]
    if not rows or rows[0] != header:
        check.finding(FindingKind.MISMATCH, name, f"its header is {rows[0] if rows else []}, not {header} as data.json says")
        return
    differing: list[str] = []
    seen: set[tuple[str, str]] = set()
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 4:
            differing.append(f"line {number} has {len(row)} fields, not 4")
            continue
        key = (row[0], row[1])
        if key in seen:
            differing.append(f"row {key[0]}, column {key[1]} appears twice (line {number})")
        elif key not in expected:
            differing.append(f"row {key[0]}, column {key[1]} (line {number}) is not a cell of data.json")
        elif (row[2], row[3]) != expected[key]:
            want = expected[key]
            differing.append(f"row {key[0]}, column {key[1]} (line {number}): count {row[2] or 'empty'}"
                             f"{f' ({row[3]})' if row[3] else ''}, but data.json says {want[0] or 'empty'}"
                             f"{f' ({want[1]})' if want[1] else ''}")
        seen.add(key)
    differing += [f"row {r}, column {c} of data.json is missing" for r, c in expected if (r, c) not in seen]
    for message in differing[:MAX_CELL_FINDINGS]:
        check.finding(FindingKind.MISMATCH, name, message + " (the CSV and data.json disagree)")
    if len(differing) > MAX_CELL_FINDINGS:
        check.finding(FindingKind.MISMATCH, name, f"and {len(differing) - MAX_CELL_FINDINGS} more cell(s) differ from data.json")
    check.csv_cells_checked += len(rows) - 1


def release_data(check: ReleaseCheck) -> tuple[dict[tuple[str, str, str], int | None], Any] | None:
    """The published values in the release's ``data.json``, and the revision it states."""
    raw = _read(check, DATA, MAX_FILE)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        cells: dict[tuple[str, str, str], int | None] = {}
        for table in data["tables"]:
            dimension = table["column_dimension"]
            for cell in table["cells"]:
                cells[(table["name"], cell["period"], cell[dimension])] = cell["count"]
        return cells, data.get("revision")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        check.finding(FindingKind.MISMATCH, DATA, f"is malformed: {exc}")
        return None


def recompute(check: ReleaseCheck, ledger: Ledger) -> None:
    """Compute the release again from the ledger at its checkpoint, with the rules its event
    states, and compare every published value; then its revision statement
    (``revision_agrees``)."""
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
    rules = PublishRules.from_dict(details["rules"])
    made: Made = {}
    tables = compute_at(ledger, size, rules, check.event["seq"], made)
    expected = published_cells(tables)
    loaded = release_data(check)
    if loaded is None:
        return
    found, revision = loaded
    for key in sorted(set(expected) | set(found)):
        check.cells_compared += 1
        if expected.get(key, "absent") != found.get(key, "absent"):
            check.mismatched_cells.append({"table": key[0], "period": key[1], "column": key[2],
                                           "recomputed": expected.get(key, "absent"), "release": found.get(key, "absent")})
    if check.mismatched_cells:
        check.finding(FindingKind.MISMATCH, DATA,
                      f"{len(check.mismatched_cells)} of {check.cells_compared} value(s) differ from the recomputation")
    revision_agrees(check, ledger, tables, rules.period, revision, histories=made)


def revision_agrees(check: ReleaseCheck, ledger: Ledger, tables: Sequence[Table], period: str, stated: Any,
                    histories: Made | None = None) -> None:
    """The revision the release states, made again from the ledger: the earlier release is the
    latest ``published`` event of the same period before the release's own event; the revision
    names its event, checkpoint, data package digest and edition, and lists every published
    value of an earlier period that changed since (the earlier release recomputed at its
    checkpoint with its rules). The event's ``previous`` and ``changed_values`` must agree. Its
    link (``url``) comes from the publisher's configuration and is not recomputed."""
    from custody.publish.release import previous_release, revision_against

    assert check.event is not None
    seq, details = check.event["seq"], check.event["details"]
    check.revision_checked = True
    earlier = previous_release(ledger, period, before=seq)
    if earlier is None:
        if stated is not None or "previous" in details:
            check.finding(FindingKind.MISMATCH, DATA, f"states a revision of an earlier release, but the ledger holds no "
                          f"earlier {period} release before event {seq}")
        return
    if not isinstance(stated, dict) or not isinstance(stated.get("previous"), dict):
        check.finding(FindingKind.MISMATCH, DATA, f"states no earlier release, but ledger event {earlier.seq} is the "
                      f"earlier {period} release; its changes are not stated")
        return
    made = revision_against(ledger, earlier, tables, None, histories)
    previous = stated["previous"]
    for key in ("event", "checkpoint", "datapackage_sha256", "edition"):
        if previous.get(key) != made.previous[key]:
            check.finding(FindingKind.MISMATCH, DATA, f"its revision names the earlier release's {key} "
                          f"{previous.get(key)!r}, but it is {made.previous[key]!r}")
    want = {(c["table"], c["period"], c["column"]): (c["before"], c["after"]) for c in made.changes}
    try:
        said = {(c["table"], c["period"], c["column"]): (c["before"], c["after"]) for c in stated["changes"]}
    except (KeyError, TypeError) as exc:
        check.finding(FindingKind.MISMATCH, DATA, f"its revision's changes are malformed: {exc}")
        return
    differing = [f"does not state that {t} {p} {c} changed from {_shown(b)} to {_shown(a)}"
                 for (t, p, c), (b, a) in sorted(want.items()) if (t, p, c) not in said]
    differing += [f"states that {t} {p} {c} changed from {_shown(b)} to {_shown(a)}, but "
                  + (f"it changed from {_shown(want[(t, p, c)][0])} to {_shown(want[(t, p, c)][1])}"
                     if (t, p, c) in want else "it did not change")
                  for (t, p, c), (b, a) in sorted(said.items(), key=repr) if want.get((t, p, c)) != (b, a)]
    for message in differing[:MAX_CELL_FINDINGS]:
        check.finding(FindingKind.MISMATCH, DATA, "its revision " + message)
    if len(differing) > MAX_CELL_FINDINGS:
        check.finding(FindingKind.MISMATCH, DATA, f"its revision: and {len(differing) - MAX_CELL_FINDINGS} more")
    if details.get("previous") != {"event": earlier.seq, "checkpoint": made.previous["checkpoint"]} or details.get(
            "changed_values") != len(made.changes):
        check.finding(FindingKind.MISMATCH, EVENT, f"names earlier release {details.get('previous')!r} with "
                      f"{details.get('changed_values')!r} changed value(s); recomputed: event {earlier.seq} with "
                      f"{len(made.changes)}")


def _shown(value: Any) -> str:
    return "suppressed" if value is None else str(value)
