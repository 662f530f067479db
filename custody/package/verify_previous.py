"""Verification step 10: consistency with an earlier package (``--previous``).

The earlier package's checkpoint must be signed by the same key, and this package's
``custody/consistency.txt`` (``custody.ledger.consistency`` layout) must prove, by RFC 9162's
algorithm, that this checkpoint's tree extends the earlier one: nothing in the ledger before
the earlier package was changed or removed, and the two do not come from forked ledgers."""

from __future__ import annotations

from pathlib import Path

from custody.errors import FindingKind
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.consistency import ConsistencyFormatError, parse_consistency
from custody.package.layout import CHECKPOINT, CONSISTENCY
from custody.package.reading import PackageFiles, UnsafeEntry
from custody.package.verification import Verification


def check_consistency_file(state: Verification) -> None:
    """Without ``--previous``: a consistency proof, when present, is well formed and ends with
    this package's checkpoint."""
    if CONSISTENCY not in state.entries:
        return
    check = state.begin("consistency proof")
    text = state.read_text(CONSISTENCY, limit=1 << 16)
    if text is None:
        return
    try:
        proof = parse_consistency(text)
    except ConsistencyFormatError as exc:
        state.finding(FindingKind.MALFORMED, CONSISTENCY, str(exc))
        return
    if state.checkpoint_text is not None and proof.checkpoint != state.checkpoint_text:
        state.finding(FindingKind.MISMATCH, CONSISTENCY, f"ends with another checkpoint than {CHECKPOINT}")
        return
    check.detail = (f"from the recipient's previous package's checkpoint ({proof.old_size} events); "
                    "check it with --previous")


def check_previous(state: Verification, previous: Path) -> None:
    check = state.begin("consistency with the previous package")
    verifier = state.trusted or state.key
    if state.checkpoint is None or verifier is None:
        check.detail = "not checked (no verified checkpoint)"
        return
    where = f"{previous}/{CHECKPOINT}"
    try:
        with PackageFiles(str(previous)) as files:
            old_text = files.read(CHECKPOINT, 1 << 16).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.reason if isinstance(exc, UnsafeEntry) else getattr(exc, "strerror", None) or str(exc)
        state.finding(FindingKind.UNREADABLE, where, f"the previous package's checkpoint cannot be read: {reason}")
        return
    try:
        old, _ = notes.open_checkpoint(old_text, [verifier], origin=verifier.name)
    except notes.TlogError as exc:
        state.finding(FindingKind.BAD_SIGNATURE, where, f"is not a checkpoint signed by {verifier.to_text()} ({exc})")
        return
    new = state.checkpoint
    state.report.previous = {"path": str(previous), "size": old.size, "root": old.root.hex(), "consistent": False}
    if old.size > new.size:
        state.finding(FindingKind.INCONSISTENT, CHECKPOINT,
                      f"covers {new.size} events, fewer than the previous package's {old.size}: give the older package "
                      "as --previous")
        return
    proof: tuple[bytes, ...] = ()
    if old.size < new.size:
        text = state.read_text(CONSISTENCY, required=False, limit=1 << 16)
        parsed = None
        if text is not None:
            try:
                parsed = parse_consistency(text)
            except ConsistencyFormatError:
                parsed = None
        if parsed is None or parsed.old_size != old.size:
            state.finding(FindingKind.MISSING, CONSISTENCY,
                          f"the package carries no consistency proof from the previous package's checkpoint "
                          f"({old.size} events); ask the sender for 'custody ledger consistency {old.size} {new.size}'")
            return
        proof = parsed.proof
    if not tree.verify_consistency(old.size, new.size, old.root, new.root, proof):
        state.finding(FindingKind.INCONSISTENT, CHECKPOINT,
                      f"its tree of {new.size} events does not extend the previous package's tree of {old.size} "
                      "events: the ledger was rewritten or forked between the two packages")
        return
    state.report.previous["consistent"] = True
    check.detail = f"the tree of {new.size} events extends the previous package's {old.size}"
