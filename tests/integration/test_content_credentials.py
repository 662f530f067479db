"""Content credentials (C2PA) read and validated at ingest, with the C2PA project's own library.

A real ffmpeg-made MP4 is signed with ``c2pa-python`` using an ES256 chain made by openssl (a
root CA and a leaf for signing, as the library requires); the signed file, the same file with one
byte of its media data changed after signing, and an unsigned clip are ingested. Each outcome is
what a prosecutor must be able to rely on: valid and bound to the bytes, invalid because the
bytes changed, and absent (no manifest: not a fault).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from custody.media.credentials import CredentialReader
from tests.conftest import Custody, make_clip, require_tool

pytestmark = pytest.mark.integration

EXTENSIONS = """
[root_ext]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[leaf_ext]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=emailProtection
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require_tool("openssl"), *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ES256 (P-256) root CA and a leaf signing certificate it issued, made by openssl."""
    pki = tmp_path_factory.mktemp("pki")
    (pki / "ext.cnf").write_text(EXTENSIONS)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root.key", cwd=pki)
    _openssl("req", "-new", "-x509", "-key", "root.key", "-sha256", "-days", "30", "-subj",
             "/CN=Custody Test Root/O=Custody Tests", "-config", "ext.cnf", "-extensions", "root_ext",
             "-out", "root.pem", cwd=pki)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "leaf.key", cwd=pki)
    _openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=Test Camera Signer/O=Custody Tests",
             "-out", "leaf.csr", cwd=pki)
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
             "-days", "30", "-sha256", "-extfile", "ext.cnf", "-extensions", "leaf_ext", "-out", "leaf.pem", cwd=pki)
    (pki / "chain.pem").write_bytes((pki / "leaf.pem").read_bytes() + (pki / "root.pem").read_bytes())
    return pki


def sign_clip(source: Path, target: Path, pki: Path) -> None:
    """Sign ``source`` into ``target`` with c2pa-python: a c2pa.created action, ES256."""
    import c2pa

    info = c2pa.C2paSignerInfo(b"es256", (pki / "chain.pem").read_bytes(), (pki / "leaf.key").read_bytes(), None)
    signer = c2pa.Signer.from_info(info)
    manifest = {
        "claim_generator_info": [{"name": "BWC-4 firmware", "version": "7.2"}],
        "title": source.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
        }]}}],
    }
    with c2pa.Builder(manifest) as builder, source.open("rb") as src, target.open("wb") as dst:
        builder.sign(signer, "video/mp4", src, dst)


def change_media_data(source: Path, target: Path) -> int:
    """Copy ``source`` with one byte in the middle of its ``mdat`` box inverted; its offset."""
    data = bytearray(source.read_bytes())
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"mdat":
            changed = offset + size // 2
            data[changed] ^= 0xFF
            target.write_bytes(bytes(data))
            return changed
        assert size >= 8, "unexpected box layout"
        offset += size
    raise AssertionError("no mdat box")


@pytest.fixture(scope="module")
def signed_clips(tmp_path_factory: pytest.TempPathFactory, test_pki: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("c2pa-clips")
    unsigned = make_clip(base / "BWC-100.mp4", seconds=2, serial="SN-0100")
    signed = base / "BWC-101.mp4"
    sign_clip(make_clip(base / "raw-101.mp4", seconds=2, serial="SN-0101"), signed, test_pki)
    tampered = base / "BWC-102.mp4"
    change_media_data(signed, tampered)
    (base / "raw-101.mp4").unlink()
    return {"absent": unsigned, "valid": signed, "tampered": tampered}


def test_library_outcomes(signed_clips: dict[str, Path], test_pki: Path) -> None:
    reader = CredentialReader()
    valid = reader.read(str(signed_clips["valid"]))
    assert valid["status"] == "valid" and valid["hard_binding"] == "match"
    assert valid["validation_state"] == "Valid" and valid["trusted"] is False  # no trust anchors given
    assert valid["signer"]["common_name"] == "Test Camera Signer"
    assert valid["signer"]["issuer"] == "Custody Tests"
    assert valid["claim_generator"] == "BWC-4 firmware/7.2"
    assert valid["embedded"] is True and valid["manifests"] == 1
    assert [e["code"] for e in valid["errors"]] == ["signingCredential.untrusted"]
    assert "finding" not in valid

    tampered = reader.read(str(signed_clips["tampered"]))
    assert tampered["status"] == "invalid" and tampered["hard_binding"] == "mismatch"
    assert "assertion.bmffHash.mismatch" in [e["code"] for e in tampered["errors"]]
    assert "no longer match" in tampered["finding"]
    assert tampered["signer"]["common_name"] == "Test Camera Signer"  # the claim itself is still signed

    assert reader.read(str(signed_clips["absent"])) == {"status": "absent", "tool": reader.tool}

    anchored = CredentialReader(trust_anchors=(test_pki / "root.pem").read_text())
    trusted = anchored.read(str(signed_clips["valid"]))
    assert trusted["status"] == "valid" and trusted["trusted"] is True and trusted["validation_state"] == "Trusted"
    assert trusted["errors"] == []
    assert anchored.read(str(signed_clips["tampered"]))["status"] == "invalid"


def test_broken_manifest_is_a_finding_not_a_traceback(signed_clips: dict[str, Path], tmp_path: Path) -> None:
    data = signed_clips["valid"].read_bytes()
    uuid_at = data.index(b"uuid") - 4
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: uuid_at + 200])  # the manifest box ends past the end of the file
    record = CredentialReader().read(str(cut))
    assert record["status"] == "error"
    assert "could not read the content credentials" in record["finding"]
    text = tmp_path / "notes.txt"
    text.write_text("officer's notes\n")
    assert CredentialReader().read(str(text))["status"] == "unsupported"
    fifo = tmp_path / "swapped.mp4"
    os.mkfifo(fifo)  # a named pipe put where a file was: reported, never waited on
    assert CredentialReader().read(str(fifo)) == {"status": "error", "tool": CredentialReader().tool,
                                                   "finding": "not a regular file; not read"}


def _event(custody: Custody, blake3: str) -> dict[str, Any]:
    log = custody.json("log")
    return next(e for e in log if e["action"] == "ingested" and e["subject"].get("evidence") == blake3)


def test_ingest_records_and_show_displays(initialized: Custody, signed_clips: dict[str, Path]) -> None:
    result = initialized("ingest", "--json", *(str(signed_clips[k]) for k in ("valid", "tampered", "absent")))
    assert result.exit_code == 0, result.output
    records = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert all(r["status"] == "recorded" for r in records.values())
    tampered_name = signed_clips["tampered"].name
    assert "content credentials (C2PA) INVALID" in records[tampered_name]["warning"]
    assert "INVALID" in result.stderr and tampered_name in result.stderr
    assert "warning" not in records[signed_clips["valid"].name]
    assert "warning" not in records[signed_clips["absent"].name]

    by_kind = {kind: records[path.name]["blake3"] for kind, path in signed_clips.items()}
    valid = _event(initialized, by_kind["valid"])["details"]["content_credentials"]
    assert (valid["status"], valid["hard_binding"], valid["signer"]["common_name"]) == ("valid", "match", "Test Camera Signer")
    tampered = _event(initialized, by_kind["tampered"])["details"]["content_credentials"]
    assert (tampered["status"], tampered["hard_binding"]) == ("invalid", "mismatch")
    absent = _event(initialized, by_kind["absent"])["details"]["content_credentials"]
    assert absent["status"] == "absent" and "finding" not in absent

    shown = initialized.json("show", by_kind["tampered"][:16])
    assert shown["content_credentials"]["hard_binding"] == "mismatch"
    text = initialized("show", by_kind["valid"][:16])
    assert text.exit_code == 0
    line = next(l for l in text.stdout.splitlines() if l.startswith("credentials:"))
    assert "VALID: signed by Test Camera Signer (Custody Tests)" in line and "hard binding match" in line
    line = next(l for l in initialized("show", by_kind["absent"][:16]).stdout.splitlines() if l.startswith("credentials:"))
    assert "none" in line and "INVALID" not in line


def test_header_scan_agrees_with_the_library(signed_clips: dict[str, Path], tmp_path: Path) -> None:
    """An MP4 is declared ``absent`` from its box headers alone only where the library itself
    finds no manifest; a file with the C2PA box always goes to the library."""
    import c2pa

    from custody.media.credentials import bmff_manifest_box

    for kind, path in signed_clips.items():
        with path.open("rb") as handle:
            by_headers = bmff_manifest_box(handle)
            handle.seek(0)
            by_library = c2pa.Reader.try_create(None, handle)
        assert by_headers is (kind != "absent"), kind
        assert (by_library is None) is (kind == "absent"), kind
        if by_library is not None:
            by_library.close()
    lying = tmp_path / "lying.mp4"
    data = signed_clips["absent"].read_bytes()
    second = int.from_bytes(data[:4], "big")  # where the box after ftyp starts
    lying.write_bytes(data[:second] + (len(data) * 2).to_bytes(4, "big") + data[second + 4:])  # larger than the file
    with lying.open("rb") as handle:
        assert bmff_manifest_box(handle) is None  # not decided from headers that do not add up


def test_package_report_shows_each_result(initialized: Custody, signed_clips: dict[str, Path], tmp_path: Path) -> None:
    incident = "2026-1101-ICE-22"
    for args in (
        ["incident", "create", incident, "--occurred-at", "2026-11-01T08:00:00-06:00", "--agency", "ICE"],
        ["ingest", *(str(p) for p in signed_clips.values()), "--incident", incident, "--camera", "SN-01"],
        ["export", "--incident", incident, "--out", str(tmp_path / "pkg"), "--recipient", "Cook County SAO",
         "--no-contact-sheets"],
    ):
        result = initialized(*args)
        assert result.exit_code == 0, (args, result.output)
    items = json.loads((tmp_path / "pkg/custody/items.json").read_text())
    by_name = {i["original_name"]: i for i in items}
    assert by_name[signed_clips["valid"].name]["content_credentials"]["hard_binding"] == "match"
    assert by_name[signed_clips["tampered"].name]["content_credentials"]["hard_binding"] == "mismatch"
    assert by_name[signed_clips["absent"].name]["content_credentials"]["status"] == "absent"
    report = (tmp_path / "pkg/report.html").read_text()
    rows = re.findall(r'<tr class="credentials"><th>C2PA</th><td>([^<]*)</td></tr>', report)
    assert len(rows) == 3
    assert sum(r.startswith("VALID: signed by Test Camera Signer") and "hard binding match" in r for r in rows) == 1
    assert sum(r.startswith("INVALID:") and "hard binding mismatch" in r and "assertion.bmffHash.mismatch" in r
               for r in rows) == 1
    assert sum(r.startswith("none (the file carries no C2PA manifest)") for r in rows) == 1
    # the three clips share one camera and one creation time: the coverage says they cannot all be right
    assert report.count("<tr><td>Conflict</td>") == 3
    text = initialized("incident", "coverage", incident)
    assert text.stdout.count("CONFLICT 14:00:00Z") == 3 and "check its clock" in text.stdout


def test_trust_anchors_from_config(initialized: Custody, signed_clips: dict[str, Path], test_pki: Path) -> None:
    """An agency names the roots it trusts in config.toml: the same signature is then trusted."""
    config = initialized.home / "config.toml"
    config.write_text(f'[content_credentials]\ntrust_anchors = "{test_pki / "leaf.key"}"\n')
    refused = initialized("ingest", str(signed_clips["valid"]))
    assert refused.exit_code == 5 and "holds no PEM certificate" in refused.stderr and "leaf.key" in refused.stderr
    assert all(e["action"] != "ingested" for e in initialized.json("log"))

    config.write_text(f'[content_credentials]\ntrust_anchors = "{test_pki / "root.pem"}"\n')
    result = initialized("ingest", "--json", str(signed_clips["valid"]))
    assert result.exit_code == 0, result.output
    event = _event(initialized, json.loads(result.stdout)[0]["blake3"])["details"]["content_credentials"]
    assert (event["status"], event["trusted"], event["validation_state"], event["errors"]) == ("valid", True, "Trusted", [])
