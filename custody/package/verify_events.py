"""Verification steps 4-6: the verifier key (and the trusted key), the checkpoint's signature,
and each custody event: its canonical bytes, its hash and its tlog-proof."""

from __future__ import annotations

import json

from custody.errors import FindingKind
from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.canonical import canonical_bytes
from custody.package.layout import CHECKPOINT, EVENT_FIELDS, EVENTS, PROOFS, VERIFIER_KEY, proof_path
from custody.package.verification import VerifiedEvent, Verification, unique_keys


def check_signature(state: Verification) -> None:
    check = state.begin("checkpoint signature")
    key_text = state.read_text(VERIFIER_KEY, limit=4096)
    if key_text is not None:
        try:
            state.key = notes.Verifier.from_text(key_text.strip())
        except notes.TlogError as exc:
            state.finding(FindingKind.MALFORMED, VERIFIER_KEY, f"is not a verifier key: {exc}")
    if state.key is not None:
        state.report.key = state.key.to_text()
    verifier = state.trusted or state.key
    if state.trusted is not None:
        if state.key is not None and state.key != state.trusted:
            state.finding(
                FindingKind.UNTRUSTED_KEY, VERIFIER_KEY,
                f"is {state.key.to_text()}, not the trusted key {state.trusted.to_text()}: "
                "this package was not signed by the ledger you expect",
                expected=state.trusted.to_text(), found=state.key.to_text(),
            )
        else:
            state.report.key_trusted = True
    text = state.read_text(CHECKPOINT, limit=1 << 16)
    if text is None or verifier is None:
        return
    state.checkpoint_text = text
    try:
        checkpoint, _ = notes.open_checkpoint(text, [verifier], origin=verifier.name)
    except notes.UnverifiedNote:
        state.finding(FindingKind.BAD_SIGNATURE, CHECKPOINT, f"is not signed by {'the trusted' if state.trusted else 'the package'} key {verifier.to_text()}")
        return
    except notes.InvalidSignature:
        state.finding(FindingKind.BAD_SIGNATURE, CHECKPOINT, f"its signature by {verifier.to_text()} does not verify (altered)")
        return
    except notes.OriginMismatch as exc:
        state.finding(FindingKind.MALFORMED, CHECKPOINT, f"is for the log {exc.actual!r}, not {exc.expected!r}")
        return
    except notes.TlogError as exc:
        state.finding(FindingKind.MALFORMED, CHECKPOINT, f"is not a signed checkpoint: {exc}")
        return
    state.checkpoint = checkpoint
    state.report.checkpoint = {"origin": checkpoint.origin, "size": checkpoint.size, "root": checkpoint.root.hex()}
    check.detail = f"tree of {checkpoint.size} events signed by {verifier.to_text()}" + (
        " (the trusted key)" if state.trusted and state.report.key_trusted else " (the package's own key; pin it with --trust-key)"
    )


def check_events(state: Verification) -> None:
    check = state.begin("custody events and proofs")
    text = state.read_text(EVENTS)
    referenced: set[str] = set()
    if text is not None:
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            event = _event_line(state, number, line)
            if event is None:
                continue
            seq = event.record["seq"]
            if seq in state.events:
                state.finding(FindingKind.MALFORMED, event.where, f"event {seq} appears twice")
                continue
            state.events[seq] = event
            referenced.add(proof_path(seq))
            _prove(state, event)
    for name in sorted(state.entries):
        if name.startswith(PROOFS + "/") and name not in referenced:
            state.finding(FindingKind.UNEXPECTED, name, f"a proof of no event in {EVENTS}")
    state.report.events = len(state.events)
    state.report.proved_events = sum(1 for e in state.events.values() if e.proved)
    size = state.checkpoint.size if state.checkpoint else "?"
    check.detail = f"{state.report.proved_events} of {len(state.events)} event(s) proved in the tree of {size}"


def _event_line(state: Verification, number: int, line: str) -> VerifiedEvent | None:
    where = f"{EVENTS}:{number}"
    try:
        record = json.loads(line, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):
        state.finding(FindingKind.MALFORMED, where, "is not JSON (or repeats a key, or nests too deeply)")
        return None
    if not isinstance(record, dict) or not isinstance(record.get("leaf"), str) or isinstance(record.get("seq"), bool) \
            or not isinstance(record.get("seq"), int) or record["seq"] < 0:
        state.finding(FindingKind.MALFORMED, where, "is not an event with 'seq' and 'leaf'")
        return None
    event = VerifiedEvent(number, record)
    leaf = record["leaf"]
    try:
        body = json.loads(leaf, object_pairs_hook=unique_keys)
        canonical = canonical_bytes(body)
    except (ValueError, TypeError, RecursionError):
        state.finding(FindingKind.MALFORMED, event.where, "its 'leaf' is not canonical JSON")
        return None
    if canonical != leaf.encode("utf-8", "surrogatepass"):
        state.finding(FindingKind.MALFORMED, event.where, "its 'leaf' is not in canonical form")
    if not isinstance(body, dict) or body.get("seq") != record["seq"]:
        state.finding(FindingKind.MISMATCH, event.where, "its 'leaf' is not the event with this seq")
        return event
    event.body_ok = True
    shown = {name: record.get(name) for name in EVENT_FIELDS}
    if shown != {name: body.get(name) for name in EVENT_FIELDS}:
        changed = sorted(name for name in EVENT_FIELDS if record.get(name) != body.get(name))
        state.finding(FindingKind.MISMATCH, event.where,
                      f"its fields {', '.join(changed)} differ from its canonical bytes ('leaf'): the line was edited")
    digest = tree.leaf_hash(leaf.encode("utf-8", "surrogatepass")).hex()
    if record.get("hash") != digest:
        state.finding(FindingKind.MISMATCH, event.where, "its 'hash' is not SHA-256(0x00 || leaf): the line was edited",
                      "sha256", str(record.get("hash")), digest)
    return event


def _prove(state: Verification, event: VerifiedEvent) -> None:
    seq = event.record["seq"]
    name = proof_path(seq)
    text = state.read_text(name)
    if text is None:
        return
    try:
        proof = notes.parse_tlog_proof(text)
    except notes.TlogError as exc:
        state.finding(FindingKind.MALFORMED, name, f"is not a C2SP tlog-proof: {exc}")
        return
    if proof.index != seq:
        state.finding(FindingKind.MISMATCH, name, f"proves index {proof.index}, not event {seq}")
        return
    if state.checkpoint_text is not None and proof.checkpoint != state.checkpoint_text:
        state.finding(FindingKind.MISMATCH, name, f"is against another checkpoint than {CHECKPOINT}")
        return
    if state.checkpoint is None:
        return
    if seq >= state.checkpoint.size:
        state.finding(FindingKind.UNPROVED, event.where, f"event {seq} is beyond the checkpoint's {state.checkpoint.size} events")
        return
    leaf = tree.leaf_hash(event.record["leaf"].encode("utf-8", "surrogatepass"))
    if not tree.verify_inclusion(leaf, seq, state.checkpoint.size, proof.proof, state.checkpoint.root):
        state.finding(
            FindingKind.UNPROVED, event.where,
            f"is not in the signed tree: {name} does not prove it against {CHECKPOINT} "
            "(the event or its proof was altered)",
            proof=name,
        )
        return
    event.proved = True
