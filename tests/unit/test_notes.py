"""Tests for custody.ledger.notes: C2SP signed notes and Ed25519 note keys."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from custody.ledger.checkpoint import parse_checkpoint
from custody.ledger.notes import (
    MAX_SIGNATURES,
    InvalidSignature,
    KeyFormatError,
    NoteError,
    Signer,
    UnverifiedNote,
    Verifier,
    compute_key_id,
    generate_signer,
    open_note,
    sign_note,
)

DATA = Path(__file__).resolve().parent.parent / "data"
NOTES: dict[str, Any] = json.loads((DATA / "signed_note_ed25519.json").read_text())

KEYS = {k["name"]: k for k in NOTES["keys"]}
NOTE_CASES = {n["label"]: n for n in NOTES["notes"]}
ED25519_KEYS = [k for k in NOTES["keys"] if k["sig_type"] == 1]
SIGNER_KEYS = [k for k in NOTES["keys"] if "skey" in k]
PETER_TEXT = NOTE_CASES["go-note-peter"]["note_text"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def vkey(name: str) -> Verifier:
    return Verifier.from_text(KEYS[name]["vkey"])


def skey(name: str) -> Signer:
    return Signer.from_text(KEYS[name]["skey"])


# --- keys ---------------------------------------------------------------------


def test_vector_key_counts() -> None:
    assert len(ED25519_KEYS) == 8
    assert len(SIGNER_KEYS) == 5


@pytest.mark.parametrize("key", ED25519_KEYS, ids=lambda k: k["name"])
def test_verifier_key_parses_and_key_id_recomputes(key: dict[str, Any]) -> None:
    v = Verifier.from_text(key["vkey"])
    pub = bytes.fromhex(key["public_key_hex"])
    assert v.name == key["name"]
    assert v.public_key == pub
    assert v.key_id == int(key["key_id_hex"], 16)
    assert compute_key_id(key["name"], pub) == v.key_id
    expected_id = hashlib.sha256(key["name"].encode() + b"\n\x01" + pub).digest()[:4]
    assert v.key_id.to_bytes(4, "big") == expected_id
    assert v.to_text() == key["vkey"]


@pytest.mark.parametrize("key", SIGNER_KEYS, ids=lambda k: k["name"])
def test_signer_key_derives_verifier(key: dict[str, Any]) -> None:
    s = Signer.from_text(key["skey"])
    assert s.verifier() == Verifier.from_text(key["vkey"])
    assert s.verifier().to_text() == key["vkey"]
    assert s.to_text() == key["skey"]
    seed = bytes.fromhex(key["ed25519_seed_hex"])
    assert key["skey"].endswith(b64(b"\x01" + seed))
    assert key["ed25519_seed_hex"] not in repr(s)
    assert b64(b"\x01" + seed) not in repr(s)


def test_sum_golang_org_key_with_plus_in_base64() -> None:
    text = KEYS["sum.golang.org"]["vkey"]
    assert text.count("+") > 2
    assert Verifier.from_text(text).public_key.hex() == KEYS["sum.golang.org"]["public_key_hex"]


def test_ecdsa_key_type_is_rejected_as_unsupported() -> None:
    with pytest.raises(KeyFormatError, match="0x02"):
        Verifier.from_text(KEYS["rekor.sigstore.dev"]["vkey"])


PETER_V = KEYS["PeterNeumann"]["vkey"]
PETER_PUB = bytes.fromhex(KEYS["PeterNeumann"]["public_key_hex"])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "+c74f20a3+" + b64(b"\x01" + PETER_PUB),
        "Peter Neumann+c74f20a3+" + b64(b"\x01" + PETER_PUB),
        "Peter\tNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB),
        "Peter\u00a0Neumann+c74f20a3+" + b64(b"\x01" + PETER_PUB),
        "PeterNeumann+c74f20a4+" + b64(b"\x01" + PETER_PUB),
        "PeterNeumann+C74F20A3+" + b64(b"\x01" + PETER_PUB),
        "PeterNeumann+c74f20a+" + b64(b"\x01" + PETER_PUB),
        "PeterNeumann+c74f20a3+" + b64(b"\x02" + PETER_PUB),
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB[:31]),
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB + b"\x00"),
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB) + "=",
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB)[:-4],
        "PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB)[:-1] + "!",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",
        "PeterNeumann+c74f20a3+" + b64(b""),
        PETER_V + "\n",
    ],
)
def test_bad_verifier_keys_rejected(text: str) -> None:
    with pytest.raises(KeyFormatError):
        Verifier.from_text(text)


def test_good_verifier_key_baseline() -> None:
    assert Verifier.from_text("PeterNeumann+c74f20a3+" + b64(b"\x01" + PETER_PUB)).key_id == 0xC74F20A3


def test_verifier_constructor_validates() -> None:
    with pytest.raises(KeyFormatError):
        Verifier("PeterNeumann", 0xC74F20A4, PETER_PUB)
    with pytest.raises(KeyFormatError):
        Verifier.from_public_key("a+b", PETER_PUB)
    with pytest.raises(KeyFormatError):
        Verifier.from_public_key("ok", PETER_PUB[:16])
    assert Verifier("PeterNeumann", 0xC74F20A3, PETER_PUB).to_text() == PETER_V


def test_bad_signer_keys_rejected() -> None:
    good = KEYS["PeterNeumann"]["skey"]
    seed = bytes.fromhex(KEYS["PeterNeumann"]["ed25519_seed_hex"])
    bad = [
        good[len("PRIVATE+KEY+"):],
        good.replace("PRIVATE+KEY+", "PRIVATE+KEX+"),
        good.replace("c74f20a3", "c74f20a4"),
        good.replace("PeterNeumann", "PeterNeuman"),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+" + b64(b"\x02" + seed),
        "PRIVATE+KEY+PeterNeumann+c74f20a3+" + b64(b"\x01" + seed[:31]),
        "PRIVATE+KEY+Peter Neumann+c74f20a3+" + b64(b"\x01" + seed),
    ]
    for text in bad:
        with pytest.raises(KeyFormatError):
            Signer.from_text(text)
    assert Signer.from_text(good).key_id == 0xC74F20A3


def test_generate_signer_round_trip() -> None:
    skey_text, vkey_text = generate_signer("example.com/custody")
    s = Signer.from_text(skey_text)
    v = Verifier.from_text(vkey_text)
    assert skey_text.startswith("PRIVATE+KEY+example.com/custody+")
    assert s.verifier() == v
    note = sign_note("hello\n", [s])
    assert open_note(note, [v]).text == "hello\n"
    other_skey, other_vkey = generate_signer("example.com/custody")
    assert other_skey != skey_text
    with pytest.raises(UnverifiedNote):
        open_note(note, [Verifier.from_text(other_vkey)])
    for name in ("", "a b", "a+b", "a\nb"):
        with pytest.raises(KeyFormatError):
            generate_signer(name)


# --- signed notes -------------------------------------------------------------


def _loadable_verifiers(case: dict[str, Any]) -> list[Verifier]:
    out = []
    for text in case["vkeys"]:
        name = text.split("+", 1)[0]
        if KEYS[name]["sig_type"] == 1:
            out.append(Verifier.from_text(text))
    return out


@pytest.mark.parametrize("case", NOTES["notes"], ids=lambda c: c["label"])
def test_vector_notes(case: dict[str, Any]) -> None:
    verifiers = _loadable_verifiers(case)
    expected = {(s["key_name"], int(s["key_id_hex"], 16)): s["expected_valid"] for s in case["signature_lines"]}
    if any(v is False for v in expected.values()):
        with pytest.raises(InvalidSignature) as bad:
            open_note(case["signed_note"], verifiers)
        assert expected[(bad.value.name, bad.value.key_id)] is False
        return
    if not verifiers:
        with pytest.raises(UnverifiedNote) as unv:
            open_note(case["signed_note"], verifiers)
        assert {(s.name, s.key_id) for s in unv.value.unverified} == set(expected)
        return
    for note_input in (case["signed_note"], case["signed_note"].encode()):
        note = open_note(note_input, verifiers)
        assert note.text == case["note_text"]
        assert {(s.name, s.key_id) for s in note.signatures} == {k for k, v in expected.items() if v is True}
        assert {(s.name, s.key_id) for s in note.unverified} == {k for k, v in expected.items() if v is None}
        assert "".join(s.line() for s in note.signatures + note.unverified) == case["signed_note"][len(case["note_text"]) + 1 :]


def test_rekor_ecdsa_note_counts_as_unknown_key() -> None:
    case = NOTE_CASES["rekor-v1-ecdsa-checkpoint (sig type 0x02; key ID = SHA256(DER SPKI)[:4])"]
    with pytest.raises(UnverifiedNote) as info:
        open_note(case["signed_note"], [vkey("PeterNeumann")])
    assert [(s.name, s.key_id) for s in info.value.unverified] == [("rekor.sigstore.dev", 0xC0D23D6A)]
    cp = parse_checkpoint(case["note_text"])
    assert (cp.origin, cp.size) == ("Rekor", 798034)


def test_peter_and_enoch_signatures_each_verify_alone() -> None:
    both = NOTE_CASES["go-note-peter-enoch"]["signed_note"]
    peter_only = open_note(both, [vkey("PeterNeumann")])
    enoch_only = open_note(both, [vkey("EnochRoot")])
    assert [s.name for s in peter_only.signatures] == ["PeterNeumann"]
    assert [s.name for s in peter_only.unverified] == ["EnochRoot"]
    assert [s.name for s in enoch_only.signatures] == ["EnochRoot"]
    with pytest.raises(UnverifiedNote):
        open_note(both, [vkey("logandmap")])


def test_deterministic_resign_golden() -> None:
    signed = sign_note(PETER_TEXT, [skey("PeterNeumann")])
    assert signed == NOTE_CASES["go-note-peter"]["signed_note"]
    for label in ("witness-test checkpoint size 5", "witness-test checkpoint size 8"):
        case = NOTE_CASES[label]
        assert sign_note(case["note_text"], [skey("monkeys")]) == case["signed_note"]


def test_c2sp_example_note() -> None:
    case = NOTE_CASES["c2sp-signed-note-example"]
    note = open_note(case["signed_note"], [vkey("example.com/foo")])
    assert note.text == "This is an example message.\n"
    tampered = case["signed_note"].replace("example message", "exemplary message")
    with pytest.raises(InvalidSignature):
        open_note(tampered, [vkey("example.com/foo")])


def test_corrupted_signature_rejected_even_with_other_good_signature() -> None:
    bad_line = NOTE_CASES["go-note-corrupted-sig (must reject)"]["signed_note"].split("\n\n", 1)[1]
    good = sign_note(PETER_TEXT, [skey("logandmap")])
    with pytest.raises(InvalidSignature):
        open_note(good + bad_line, [vkey("logandmap"), vkey("PeterNeumann")])
    assert open_note(good + bad_line, [vkey("logandmap")]).unverified[0].name == "PeterNeumann"


@pytest.mark.parametrize(
    "case", NOTES["malformed_notes_must_reject"]["cases_hex"], ids=lambda c: c["why"]
)
def test_malformed_vector_notes_rejected(case: dict[str, str]) -> None:
    raw = bytes.fromhex(case["bytes_hex"])
    with pytest.raises(NoteError):
        open_note(raw, [vkey("PeterNeumann")])
    with pytest.raises(NoteError):
        open_note(raw, [])
    text = raw.decode("utf-8", errors="surrogateescape")
    with pytest.raises(NoteError):
        open_note(text, [vkey("PeterNeumann")])


def test_malformed_vector_count() -> None:
    assert len(NOTES["malformed_notes_must_reject"]["cases_hex"]) == 7


def _peter_sig_line() -> str:
    signed: str = NOTE_CASES["go-note-peter"]["signed_note"]
    return signed.split("\n\n", 1)[1]


@pytest.mark.parametrize(
    "note",
    [
        PETER_TEXT + "\n" + _peter_sig_line().replace("\u2014 ", "- "),
        PETER_TEXT + "\n" + _peter_sig_line().replace("\u2014 ", "\u2014"),
        PETER_TEXT + "\n" + _peter_sig_line().replace("\u2014 ", "\u2014  "),
        PETER_TEXT + "\n" + _peter_sig_line().replace("PeterNeumann ", "PeterNeumann"),
        PETER_TEXT + "\n" + _peter_sig_line().replace("PeterNeumann", "Peter+Neumann"),
        PETER_TEXT + "\n" + _peter_sig_line().replace("=\n", "\n"),
        PETER_TEXT + "\n" + _peter_sig_line().replace("=\n", "= \n"),
        PETER_TEXT + "\n" + "\u2014 PeterNeumann " + b64(b"\xc7\x4f\x20\xa3") + "\n",
        PETER_TEXT + "\n" + _peter_sig_line().replace("\n", "\r\n"),
        PETER_TEXT + "\n" + _peter_sig_line() + "\n",
        PETER_TEXT.replace("\n", "\r\n", 1) + "\n" + _peter_sig_line(),
        PETER_TEXT + _peter_sig_line(),
        PETER_TEXT + "\n" + _peter_sig_line() * (MAX_SIGNATURES + 1),
        "\ud800" + PETER_TEXT + "\n" + _peter_sig_line(),
    ],
)
def test_more_malformed_notes_rejected(note: str) -> None:
    with pytest.raises(NoteError):
        open_note(note, [vkey("PeterNeumann")])


def test_signature_count_limits() -> None:
    many = PETER_TEXT + "\n" + _peter_sig_line() * MAX_SIGNATURES
    assert len(open_note(many, [vkey("PeterNeumann")]).signatures) == 1
    signers = [Signer.from_text(generate_signer(f"w{i}")[0]) for i in range(16)]
    note = sign_note(PETER_TEXT, signers)
    opened = open_note(note, [s.verifier() for s in signers])
    assert [s.name for s in opened.signatures] == [f"w{i}" for i in range(16)]


def test_non_canonical_base64_signature_rejected() -> None:
    line = _peter_sig_line()
    sig_b64 = line.split(" ")[2].strip()
    raw = base64.b64decode(sig_b64)
    assert len(raw) == 68
    noncanon = sig_b64[:-2] + chr(ord(sig_b64[-2]) + 1) + "="
    assert base64.b64decode(noncanon) == raw
    with pytest.raises(NoteError):
        open_note(PETER_TEXT + "\n\u2014 PeterNeumann " + noncanon + "\n", [vkey("PeterNeumann")])


def test_wrong_length_signature_from_known_key_is_invalid() -> None:
    raw = base64.b64decode(_peter_sig_line().split(" ")[2])
    for blob in (raw[:-1], raw + b"\x00", raw[:5]):
        with pytest.raises(InvalidSignature):
            open_note(PETER_TEXT + "\n\u2014 PeterNeumann " + b64(blob) + "\n", [vkey("PeterNeumann")])


def test_signature_from_same_name_other_id_or_same_id_other_name_is_ignored() -> None:
    raw = base64.b64decode(_peter_sig_line().split(" ")[2])
    other_id = b"\x00\x00\x00\x01" + raw[4:]
    lines = "\u2014 PeterNeumann " + b64(other_id) + "\n" + "\u2014 NotPeter " + b64(raw) + "\n"
    with pytest.raises(UnverifiedNote) as info:
        open_note(PETER_TEXT + "\n" + lines, [vkey("PeterNeumann")])
    assert {(s.name, s.key_id) for s in info.value.unverified} == {("PeterNeumann", 1), ("NotPeter", 0xC74F20A3)}
    note = open_note(PETER_TEXT + "\n" + lines + _peter_sig_line(), [vkey("PeterNeumann")])
    assert len(note.signatures) == 1 and len(note.unverified) == 2


def test_text_with_blank_lines_round_trips() -> None:
    text = "para one\n\npara two\n\n\u2014 looks like a signature AAAA\n"
    signed = sign_note(text, [skey("logandmap")])
    assert open_note(signed, [vkey("logandmap")]).text == text
    assert open_note(sign_note("\n", [skey("logandmap")]), [vkey("logandmap")]).text == "\n"


def test_sign_note_rejects_bad_text() -> None:
    for text in ("no newline", "", "tab\there\n", "cr\r\n", "nul\x00\n", "\udc80\n"):
        with pytest.raises(NoteError):
            sign_note(text, [skey("logandmap")])
    with pytest.raises(ValueError):
        sign_note("ok\n", [])

