"""Tests for custody.ledger.checkpoint: C2SP checkpoints and tlog proofs (signed notes)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.ledger.checkpoint import (
    TLOG_PROOF_HEADER,
    Checkpoint,
    CheckpointError,
    OriginMismatch,
    ProofFormatError,
    ProofVerificationError,
    format_checkpoint,
    format_tlog_proof,
    open_checkpoint,
    parse_checkpoint,
    parse_tlog_proof,
    sign_checkpoint,
    verify_tlog_proof,
)
from custody.ledger.notes import (
    InvalidSignature,
    KeyFormatError,
    NoteError,
    Signer,
    TlogError,
    UnverifiedNote,
    Verifier,
    generate_signer,
    sign_note,
)
from custody.ledger.tree import (
    EMPTY_ROOT,
    MemoryNodeStore,
    append_leaf,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    root_from_leaves,
    verify_consistency,
)

DATA = Path(__file__).resolve().parent.parent / "data"
NOTES: dict[str, Any] = json.loads((DATA / "signed_note_ed25519.json").read_text())
TESSERA: dict[str, Any] = json.loads((DATA / "tessera_tiled_log_testdata.json").read_text())
SUMDB: dict[str, Any] = json.loads((DATA / "sumdb_tlog.json").read_text())

KEYS = {k["name"]: k for k in NOTES["keys"]}
NOTE_CASES = {n["label"]: n for n in NOTES["notes"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def vkey(name: str) -> Verifier:
    return Verifier.from_text(KEYS[name]["vkey"])


def skey(name: str) -> Signer:
    return Signer.from_text(KEYS[name]["skey"])


def test_exception_hierarchy() -> None:
    for exc in (KeyFormatError, NoteError, UnverifiedNote, InvalidSignature, CheckpointError, OriginMismatch, ProofFormatError, ProofVerificationError):
        assert issubclass(exc, TlogError)


# --- checkpoints ----------------------------------------------------------------


def test_witness_checkpoints_and_consistency_proof() -> None:
    w = NOTES["witness_consistency_proof_5_to_8"]
    cp5, _ = open_checkpoint(NOTE_CASES["witness-test checkpoint size 5"]["signed_note"], [vkey("monkeys")], origin="monkeys")
    cp8, _ = open_checkpoint(NOTE_CASES["witness-test checkpoint size 8"]["signed_note"], [vkey("monkeys")], origin="monkeys")
    assert (cp5.size, cp5.root.hex()) == (w["size1"], w["root1_hex"])
    assert (cp8.size, cp8.root.hex()) == (w["size2"], w["root2_hex"])
    proof = [bytes.fromhex(h) for h in w["proof"]]
    assert len(proof) == 4
    assert verify_consistency(cp5.size, cp8.size, cp5.root, cp8.root, proof) is w["expected_valid"]
    assert not verify_consistency(cp5.size, cp8.size, cp8.root, cp5.root, proof)
    assert not verify_consistency(cp5.size, cp8.size, cp5.root, cp8.root, proof[:3])
    with pytest.raises(UnverifiedNote):
        open_checkpoint(NOTE_CASES["witness-test checkpoint size 5"]["signed_note"], [vkey("witness"), vkey("bananas")])


def test_witness_cosigned_checkpoint() -> None:
    text = NOTE_CASES["witness-test checkpoint size 8"]["note_text"]
    cosigned = sign_note(text, [skey("monkeys"), skey("witness"), skey("bananas")])
    cp, note = open_checkpoint(cosigned, [vkey("monkeys")])
    assert cp.size == 8 and [s.name for s in note.unverified] == ["witness", "bananas"]
    _, all_three = open_checkpoint(cosigned, [vkey("monkeys"), vkey("witness"), vkey("bananas")])
    assert [s.name for s in all_three.signatures] == ["monkeys", "witness", "bananas"]


TESSERA_V = Verifier.from_text(TESSERA["log_key"]["vkey"])
TESSERA_S = Signer.from_text(TESSERA["log_key"]["skey"])
TESSERA_LEAVES = [leaf_hash(e.encode()) for e in TESSERA["entries_utf8"]]


def test_tessera_key() -> None:
    lk = TESSERA["log_key"]
    assert TESSERA_V.key_id == int(lk["key_id_hex"], 16)
    assert TESSERA_V.public_key.hex() == lk["public_key_hex"]
    assert TESSERA_S.verifier() == TESSERA_V
    assert TESSERA_S.to_text() == lk["skey"]


@pytest.mark.parametrize("cp", TESSERA["checkpoints"], ids=lambda c: str(c["tree_size"]))
def test_tessera_checkpoints(cp: dict[str, Any]) -> None:
    checkpoint, note = open_checkpoint(cp["checkpoint"], [TESSERA_V], origin=TESSERA["origin"])
    n = cp["tree_size"]
    assert checkpoint.size == n
    assert checkpoint.origin == "example.com/log/testdata"
    assert checkpoint.root.hex() == cp["root_hex"]
    assert checkpoint.root == root_from_leaves(TESSERA_LEAVES[:n])
    assert format_checkpoint(checkpoint) == note.text
    assert sign_checkpoint(checkpoint, [TESSERA_S]) == cp["checkpoint"]
    with pytest.raises(OriginMismatch):
        open_checkpoint(cp["checkpoint"], [TESSERA_V], origin="example.com/log/other")


def test_tessera_has_all_sixteen_checkpoints() -> None:
    assert [c["tree_size"] for c in TESSERA["checkpoints"]] == list(range(16))
    assert parse_checkpoint(TESSERA["checkpoints"][0]["checkpoint"].split("\n\n")[0] + "\n").root == EMPTY_ROOT


def test_sumdb_tree_note_golden() -> None:
    f = SUMDB["tree_note_fields"]
    cp = Checkpoint(f["header"], f["N"], base64.b64decode(f["hash_b64"]))
    assert format_checkpoint(cp) == SUMDB["tree_note_text_golden"]
    assert parse_checkpoint(SUMDB["tree_note_text_golden"]) == cp
    assert cp.root == leaf_hash(SUMDB["record_hash"]["data_utf8"].encode())


def test_checkpoint_extensions_round_trip() -> None:
    cp = Checkpoint("example.com/log", 3, b"\x11" * 32, ("ext one", "ext two"))
    text = format_checkpoint(cp)
    assert text == "example.com/log\n3\n" + b64(b"\x11" * 32) + "\next one\next two\n"
    assert parse_checkpoint(text) == cp


ROOT_B64 = b64(b"\x22" * 32)


@pytest.mark.parametrize(
    "text",
    [
        f"origin\n5\n{ROOT_B64}",
        f"origin\n5\n",
        f"\n5\n{ROOT_B64}\n",
        f"origin\n05\n{ROOT_B64}\n",
        f"origin\n00\n{ROOT_B64}\n",
        f"origin\n+5\n{ROOT_B64}\n",
        f"origin\n-1\n{ROOT_B64}\n",
        f"origin\n 5\n{ROOT_B64}\n",
        f"origin\n5 \n{ROOT_B64}\n",
        f"origin\n1_000\n{ROOT_B64}\n",
        f"origin\n\u0665\n{ROOT_B64}\n",
        f"origin\n\n{ROOT_B64}\n",
        f"origin\n18446744073709551616\n{ROOT_B64}\n",
        f"origin\n5\n{b64(b'x' * 31)}\n",
        f"origin\n5\n{b64(b'x' * 33)}\n",
        f"origin\n5\n{ROOT_B64.rstrip('=')}\n",
        f"origin\n5\n{ROOT_B64[:-2]}J=\n",
        f"origin\n5\n{ROOT_B64}\n\n",
        f"origin\n5\n{ROOT_B64}\next\n\n",
        f"origin\n5\n{ROOT_B64}\r\n",
        f"ori\x01gin\n5\n{ROOT_B64}\n",
    ],
)
def test_strict_checkpoint_parse_rejects(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


def test_checkpoint_parse_boundaries_accepted() -> None:
    assert parse_checkpoint(f"o\n0\n{ROOT_B64}\n").size == 0
    assert parse_checkpoint(f"o\n18446744073709551615\n{ROOT_B64}\n").size == 2**64 - 1
    assert parse_checkpoint(f"Rekor log\n5\n{ROOT_B64}\n").origin == "Rekor log"


def test_checkpoint_constructor_validates() -> None:
    for args in [("", 1, b"\x00" * 32), ("o", -1, b"\x00" * 32), ("o", 2**64, b"\x00" * 32), ("o", 1, b"\x00" * 31), ("a\nb", 1, b"\x00" * 32)]:
        with pytest.raises(CheckpointError):
            Checkpoint(*args)
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, b"\x00" * 32, ("",))


# --- tlog-proof -------------------------------------------------------------------


def _tessera_store() -> MemoryNodeStore:
    store = MemoryNodeStore()
    for i, h in enumerate(TESSERA_LEAVES):
        store.add_nodes(append_leaf(store, i, h))
    return store


STORE = _tessera_store()
CP15 = TESSERA["checkpoints"][15]["checkpoint"]


def _proof_for(index: int, extra: bytes | None = None) -> str:
    return format_tlog_proof(index, inclusion_proof(STORE, index, 15), CP15, extra)


def test_tlog_proof_layout() -> None:
    hashes = inclusion_proof(STORE, 7, 15)
    text = format_tlog_proof(7, hashes, CP15, extra=b"context")
    expected = (
        "c2sp.org/tlog-proof@v1\n"
        + "extra " + b64(b"context") + "\n"
        + "index 7\n"
        + "".join(b64(h) + "\n" for h in hashes)
        + "\n"
        + CP15
    )
    assert text == expected
    assert TLOG_PROOF_HEADER == "c2sp.org/tlog-proof@v1"
    assert format_tlog_proof(0, [], CP15) == "c2sp.org/tlog-proof@v1\nindex 0\n\n" + CP15


def test_tlog_proof_round_trip_and_verify_every_entry() -> None:
    derived = {
        p["leaf_index"]: p["path"]
        for p in TESSERA["derived_proofs_checked_against_signed_roots"]["proofs"]
        if p["type"] == "inclusion" and p["tree_size"] == 15
    }
    for i, word in enumerate(TESSERA["entries_utf8"]):
        text = _proof_for(i, extra=word.encode() if i % 2 else None)
        parsed = parse_tlog_proof(text)
        assert parsed.index == i
        assert parsed.checkpoint == CP15
        assert parsed.extra == (word.encode() if i % 2 else None)
        if i in derived:
            assert [h.hex() for h in parsed.proof] == derived[i]
        by_entry = verify_tlog_proof(text, [TESSERA_V], entry=word.encode(), origin=TESSERA["origin"])
        by_hash = verify_tlog_proof(text.encode(), [TESSERA_V], leaf_hash=TESSERA_LEAVES[i])
        assert by_entry.leaf_hash == by_hash.leaf_hash == TESSERA_LEAVES[i]
        assert by_entry.checkpoint.size == 15 and by_entry.index == i
        assert [s.name for s in by_entry.note.signatures] == [TESSERA["origin"]]


def test_tlog_proof_verification_failures() -> None:
    text = _proof_for(7)
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(text, [TESSERA_V], entry=b"eight")
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(text, [TESSERA_V], leaf_hash=TESSERA_LEAVES[6])
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(text.replace("index 7\n", "index 6\n"), [TESSERA_V], entry=b"eit")
    hashes = inclusion_proof(STORE, 7, 15)
    for j in range(len(hashes)):
        bad = list(hashes)
        bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
        with pytest.raises(ProofVerificationError):
            verify_tlog_proof(format_tlog_proof(7, bad, CP15), [TESSERA_V], entry=b"eit")
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(format_tlog_proof(7, hashes[:-1], CP15), [TESSERA_V], entry=b"eit")
    older = TESSERA["checkpoints"][14]["checkpoint"]
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(format_tlog_proof(7, hashes, older), [TESSERA_V], entry=b"eit")
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(format_tlog_proof(0, [], TESSERA["checkpoints"][0]["checkpoint"]), [TESSERA_V], leaf_hash=EMPTY_ROOT)
    with pytest.raises(UnverifiedNote):
        verify_tlog_proof(text, [vkey("monkeys")], entry=b"eit")
    with pytest.raises(OriginMismatch):
        verify_tlog_proof(text, [TESSERA_V], entry=b"eit", origin="example.com/other")
    forged = format_tlog_proof(7, hashes, CP15.replace("\n15\n", "\n16\n"))
    with pytest.raises(InvalidSignature):
        verify_tlog_proof(forged, [TESSERA_V], entry=b"eit")
    with pytest.raises(ValueError):
        verify_tlog_proof(text, [TESSERA_V])
    with pytest.raises(ValueError):
        verify_tlog_proof(text, [TESSERA_V], entry=b"eit", leaf_hash=TESSERA_LEAVES[7])
    assert verify_tlog_proof(text, [TESSERA_V], entry=b"eit").index == 7


def test_tlog_proof_with_cosigned_checkpoint_and_wrong_length_leaf() -> None:
    body = TESSERA["checkpoints"][15]["checkpoint"].split("\n\n")[0] + "\n"
    cosigned = sign_note(body, [TESSERA_S, skey("witness")])
    text = format_tlog_proof(3, inclusion_proof(STORE, 3, 15), cosigned)
    result = verify_tlog_proof(text, [TESSERA_V], entry=b"four")
    assert [s.name for s in result.note.unverified] == ["witness"]
    with pytest.raises(ProofVerificationError):
        verify_tlog_proof(text, [TESSERA_V], leaf_hash=TESSERA_LEAVES[3] + b"\x00")


H32 = b64(b"\x33" * 32)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "c2sp.org/tlog-proof@v1\nindex 0\n" + CP15,
        "c2sp.org/tlog-proof@v2\nindex 0\n\n" + CP15,
        "c2sp.org/tlog-proof@v1 \nindex 0\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 00\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 01\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex -1\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex  1\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nIndex 1\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 1\nextra AAAA\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nextra AAA\nindex 1\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nextra !!!!\nindex 1\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 1\n" + b64(b"\x33" * 31) + "\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 1\n" + H32.rstrip("=") + "\n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 1\n" + H32 + " \n\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 1\n" + (H32 + "\n") * 65 + "\n" + CP15,
        "c2sp.org/tlog-proof@v1\nindex 1\n\n" + CP15.split("\n\n")[0] + "\n",
        "c2sp.org/tlog-proof@v1\nindex 1\n\n",
        "c2sp.org/tlog-proof@v1\r\nindex 1\n\n" + CP15,
    ],
)
def test_malformed_tlog_proofs_rejected(text: str) -> None:
    with pytest.raises(ProofFormatError):
        parse_tlog_proof(text)
    with pytest.raises(ProofFormatError):
        verify_tlog_proof(text, [TESSERA_V], leaf_hash=TESSERA_LEAVES[1])


def test_malformed_tlog_proof_bytes() -> None:
    with pytest.raises(ProofFormatError):
        parse_tlog_proof(b"\xffc2sp.org/tlog-proof@v1\nindex 1\n\n" + CP15.encode())


def test_format_tlog_proof_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        format_tlog_proof(-1, [], CP15)
    with pytest.raises(ValueError):
        format_tlog_proof(1, [b"\x00" * 31], CP15)
    with pytest.raises(NoteError):
        format_tlog_proof(1, [], "not a note\n")
    assert parse_tlog_proof(format_tlog_proof(1, [], CP15, extra=b"")).extra == b""


SIGNER = Signer.from_text(generate_signer("example.com/custody-test")[0])


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=120), st.data())
def test_prop_tlog_proofs_for_random_logs(size: int, data: st.DataObject) -> None:
    entries = [f"event-{i}".encode() for i in range(size)]
    store = MemoryNodeStore()
    for i, e in enumerate(entries):
        store.add_nodes(append_leaf(store, i, leaf_hash(e)))
    n = data.draw(st.integers(min_value=1, max_value=size), label="checkpoint size")
    cp = Checkpoint("example.com/custody-test", n, root(store, n))
    signed = sign_checkpoint(cp, [SIGNER])
    assert open_checkpoint(signed, [SIGNER.verifier()])[0] == cp
    i = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    text = format_tlog_proof(i, inclusion_proof(store, i, n), signed)
    assert verify_tlog_proof(text, [SIGNER.verifier()], entry=entries[i]).index == i
    if n > 1:
        with pytest.raises(ProofVerificationError):
            verify_tlog_proof(text, [SIGNER.verifier()], entry=entries[(i + 1) % n])
    m = data.draw(st.integers(min_value=0, max_value=n), label="old size")
    assert verify_consistency(m, n, root(store, m), cp.root, consistency_proof(store, m, n))
