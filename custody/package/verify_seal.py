"""Verification step 8: the seal (``custody/seal.txt``). Its signature by the ledger's key
(the trusted key when one is given) must verify, it must name this package and its
checkpoint, and every file outside ``data/`` must be the one it lists: an edited, added or
removed file is a finding naming it."""

from __future__ import annotations

from custody.errors import FindingKind
from custody.ledger import checkpoint as notes
from custody.package.layout import BAG_INFO, CHECKPOINT, PAYLOAD_DIR, SEAL
from custody.package.seal import SealFormatError, parse_seal
from custody.package.verification import Verification
from custody.package.verify_bag import file_digest


def check_seal(state: Verification) -> None:
    check = state.begin("package seal")
    text = state.read_text(SEAL, limit=16 << 20)
    verifier = state.trusted or state.key
    if text is None or verifier is None:
        check.detail = "not checked"
        return
    whose = f"{'the trusted' if state.trusted else 'the package'} key {verifier.to_text()}"
    try:
        note = notes.open_note(text, [verifier])
    except notes.UnverifiedNote:
        state.finding(FindingKind.BAD_SIGNATURE, SEAL, f"is not signed by {whose}")
        return
    except notes.InvalidSignature:
        state.finding(FindingKind.BAD_SIGNATURE, SEAL, f"its signature by {whose} does not verify (the seal was altered)")
        return
    except (notes.TlogError, ValueError) as exc:
        state.finding(FindingKind.MALFORMED, SEAL, f"is not a signed note: {exc}")
        return
    if note.unverified:
        state.finding(FindingKind.MALFORMED, SEAL, "carries signatures by other keys than the ledger's (added)")
    try:
        body = parse_seal(note.text)
    except SealFormatError as exc:
        state.finding(FindingKind.MALFORMED, SEAL, str(exc))
        return
    if body.incident != state.report.incident:
        state.finding(FindingKind.MISMATCH, BAG_INFO, f"names incident {state.report.incident!r}, the seal {body.incident!r}")
    if body.package_id != state.report.package_id:
        state.finding(FindingKind.MISMATCH, BAG_INFO, f"names package {state.report.package_id!r}, the seal {body.package_id!r}")
    if state.checkpoint is not None:
        ours = f"{state.checkpoint.origin} {state.checkpoint.size} {state.checkpoint.root.hex()}"
        if body.checkpoint != ours:
            state.finding(FindingKind.MISMATCH, CHECKPOINT, f"is not the checkpoint the seal names ({body.checkpoint})")
    present = {n for n, e in state.entries.items() if not n.startswith(PAYLOAD_DIR + "/") and n != SEAL}
    for name in sorted(present - set(body.files)):
        if state.entries[name].kind == "file":
            state.finding(FindingKind.UNEXPECTED, name, f"is not one of the files {SEAL} lists (added after the package was sealed)")
    for name, expected in sorted(body.files.items()):
        if name not in state.entries:
            if not state.has_finding(name):
                state.finding(FindingKind.MISSING, name, f"listed in {SEAL} but not in the package (removed)")
            continue
        if state.entries[name].kind != "file":
            continue
        found = file_digest(state, name, "sha256")
        if found is not None and found != expected:
            state.finding(FindingKind.MISMATCH, name, f"is not the file the ledger's key sealed (edited after export; {SEAL})",
                          "sha256", expected, found, manifest=SEAL)
    if not check.findings:
        state.report.sealed = True
    check.detail = f"{len(body.files)} file(s) sealed by {whose}"
