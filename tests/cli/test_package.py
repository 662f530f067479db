"""Prosecutor packages: ``custody export`` writes a BagIt bag that bagit-python, ``b3sum -c`` and
``sha256sum -c`` accept; ``custody verify-package`` checks it with no database, store or
configuration and names every tampered file; receipts are signed by the recipient and recorded
as ``received-verified``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import bagit
import pytest

from custody.ledger import checkpoint as notes
from custody.ledger.canonical import canonical_bytes
from tests.conftest import Custody, require_tool

INCIDENT = "2026-1101-ICE-01"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, clips: list[Path]) -> dict[str, Any]:
    """One ledger with an incident, three clips (two from one camera at the same time, so their
    names collide), a referral and a verification, exported once."""
    base = tmp_path_factory.mktemp("package")
    custody = Custody(base / "home", {"CUSTODY_HOME": str(base / "home"), "CUSTODY_ACTOR": "tech-0412",
                                      "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    for args in (
        ["init"],
        ["incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE",
         "--location", "2400 S Western Ave", "--use-of-force", "taser deployed", "--credentials", "refused"],
        ["ingest", str(clips[0]), str(clips[1]), "--incident", INCIDENT, "--camera", "SN-0042", "--officer", "10231"],
        ["ingest", str(clips[2]), "--incident", INCIDENT],
        ["incident", "refer", INCIDENT, "--to", "Cook County State's Attorney", "--reference", "FR-77", "--felony"],
        ["verify", str(clips[0])],
    ):
        result = custody(*args)
        assert result.exit_code == 0, (args, result.output)
    out = base / "pkg"
    result = custody("export", "--incident", INCIDENT, "--out", str(out), "--recipient", "Cook County SAO, Felony Review",
                     "--organization", "Chicago Police Department", "--json")
    assert result.exit_code == 0, result.output
    return {"custody": custody, "bag": out, "export": json.loads(result.stdout), "clips": clips}


@pytest.fixture
def bag(exported: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the exported package, to tamper with."""
    copy = tmp_path / "pkg"
    shutil.copytree(exported["bag"], copy)
    return copy


def verify(custody: Custody, bag: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("verify-package", str(bag), "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def by_subject(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["subject"], []).append(finding)
    return found


def refresh_tag_manifests(bag: Path) -> None:
    """What a careful forger does after editing tag files: recompute the tag manifests."""
    for algorithm in ("sha256", "sha512"):
        manifest = bag / f"tagmanifest-{algorithm}.txt"
        lines = []
        for line in manifest.read_text().splitlines():
            _, name = line.split("  ", 1)
            lines.append(f"{hashlib.new(algorithm, (bag / name).read_bytes()).hexdigest()}  {name}\n")
        manifest.write_text("".join(lines))


def reseal(bag: Path, signer: notes.Signer) -> None:
    """What a forger holding a key does last: a new seal over the current files."""
    from custody.package.seal import parse_seal, seal_text

    text = (bag / "custody/seal.txt").read_text()
    body = parse_seal(text[: text.rfind("\n\n") + 1])
    files = [(p.relative_to(bag).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
             for p in sorted(bag.rglob("*")) if p.is_file() and p.relative_to(bag).parts[0] != "data"
             and p.relative_to(bag).as_posix() != "custody/seal.txt"]
    (bag / "custody/seal.txt").write_text(notes.sign_note(seal_text(body.incident, body.package_id, body.checkpoint, files), [signer]))


def events_of(bag: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bag / "custody/events.jsonl").read_text().splitlines()]


def items_of(bag: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((bag / "custody/items.json").read_text())
    return items


# ---------------------------------------------------------------------------------------------
# the bag


def test_the_bag_is_valid_for_bagit_python_and_its_lists_for_b3sum_and_sha256sum(exported: dict[str, Any]) -> None:
    bag_dir = exported["bag"]
    bag = bagit.Bag(str(bag_dir))
    assert bag.validate() is True
    assert bag.version_info == (1, 0)
    assert bag.info["External-Identifier"] == INCIDENT
    assert bag.info["Source-Organization"] == "Chicago Police Department"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", bag.info["Bagging-Date"])
    total = sum(p.stat().st_size for p in (bag_dir / "data").iterdir())
    assert bag.info["Payload-Oxum"] == f"{total}.3"
    assert set(bag.algorithms) == {"sha256", "sha512"}
    b3sum = require_tool("b3sum")
    for command in ([b3sum, "-c", "blake3sums.txt"], ["sha256sum", "-c", "manifest-sha256.txt"],
                    ["sha512sum", "-c", "manifest-sha512.txt"], ["sha256sum", "-c", "tagmanifest-sha256.txt"]):
        done = subprocess.run(command, cwd=bag_dir, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert done.stdout.count(": OK") >= 3
    tagged = {line.split("  ", 1)[1] for line in (bag_dir / "tagmanifest-sha256.txt").read_text().splitlines()}
    assert {"blake3sums.txt", "report.html", "README.txt", "hash-certification.txt", "custody/events.jsonl",
            "custody/checkpoint.txt", "custody/verifier.key", "custody/incident.json", "manifest-sha256.txt",
            "bag-info.txt", "bagit.txt"} <= tagged


def test_the_payload_is_the_original_files_byte_for_byte_with_readable_unique_names(exported: dict[str, Any]) -> None:
    bag_dir = exported["bag"]
    originals = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in exported["clips"]}
    names = sorted(p.name for p in (bag_dir / "data").iterdir())
    assert names == [
        f"{INCIDENT}_SN-0003_20261101T140000Z.mp4",
        f"{INCIDENT}_SN-0042_20261101T140000Z.mp4",
        f"{INCIDENT}_SN-0042_20261101T140000Z_2.mp4",
    ]
    copied = {hashlib.sha256((bag_dir / "data" / n).read_bytes()).hexdigest() for n in names}
    assert copied == set(originals)
    items = {i["file"]: i for i in items_of(bag_dir)}
    for name in names:
        item = items[f"data/{name}"]
        assert originals[item["sha256"]] == item["original_name"]
        assert item["camera"] == ("SN-0003" if "SN-0003" in name else "SN-0042")


def test_the_tag_files_carry_the_incident_events_proofs_checkpoint_key_packets_and_sheets(exported: dict[str, Any]) -> None:
    bag_dir, custody = exported["bag"], exported["custody"]
    incident = json.loads((bag_dir / "custody/incident.json").read_text())
    assert incident["incident"] == INCIDENT and incident["fields"]["credentials"] == "refused"
    key = (bag_dir / "custody/verifier.key").read_text().strip()
    assert key == (custody.home / "verifier.key").read_text().strip()
    checkpoint_text = (bag_dir / "custody/checkpoint.txt").read_text()
    checkpoint, _ = notes.open_checkpoint(checkpoint_text, [notes.Verifier.from_text(key)])
    events = events_of(bag_dir)
    actions = [e["action"] for e in events]
    assert actions.count("ingested") == 3 and actions.count("linked") == 3
    assert {"incident-created", "incident-referred", "verified", "retention-extended"} <= set(actions)
    assert "exported" not in actions
    for event in events:
        assert hashlib.sha256(b"\0" + event["leaf"].encode()).hexdigest() == event["hash"]
        proof = (bag_dir / event["proof"]).read_text()
        verified = notes.verify_tlog_proof(proof, [notes.Verifier.from_text(key)], entry=event["leaf"].encode())
        assert verified.index == event["seq"] and verified.checkpoint == checkpoint
    assert checkpoint.size > max(e["seq"] for e in events)
    assert len(list((bag_dir / "custody/proofs").iterdir())) == len(events)
    for item in items_of(bag_dir):
        ingest = next(e for e in events if e["seq"] == item["ingest_seq"])
        packets = (bag_dir / item["packets"]).read_bytes()
        assert packets.startswith(b"#custody-packets v1\n")
        assert hashlib.sha256(packets).hexdigest() == ingest["details"]["attachments"]["packets"]["sha256"]
        assert (bag_dir / item["contact_sheet"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_certification_and_readme_say_what_a_recipient_needs(exported: dict[str, Any]) -> None:
    bag_dir = exported["bag"]
    report = (bag_dir / "report.html").read_text()
    assert INCIDENT in report and "@media print" in report
    assert report.count('src="data:image/png;base64,') == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report) and "url(" not in report
    assert "<script" not in report.lower()
    certification = (bag_dir / "hash-certification.txt").read_text()
    assert "902(14)" in certification and "custody 0.1.0" in certification
    for item in items_of(bag_dir):
        assert item["file"].split("/", 1)[1] in report
        for value in (item["sha256"], item["sha512"], item["blake3"]):
            assert value in certification
    readme = (bag_dir / "README.txt").read_text()
    for command in ("sha256sum --quiet -c manifest-sha256.txt", "b3sum --quiet -c blake3sums.txt", "bagit.py --validate",
                    "custody verify-package", "https://c2sp.org/tlog-proof", "python3 -I - <<'EOF'"):
        assert command in readme


def test_the_export_is_recorded_with_recipient_actor_and_the_tag_manifest_digest(exported: dict[str, Any]) -> None:
    custody, bag_dir, result = exported["custody"], exported["bag"], exported["export"]
    digest = hashlib.sha256((bag_dir / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    assert result["tagmanifest_sha256"] == digest
    recorded = [e for e in custody.json("log") if e["action"] == "exported"]
    assert [e["seq"] for e in recorded] == result["exported_seqs"]
    assert {e["subject"]["evidence"] for e in recorded} == {i["blake3"] for i in items_of(bag_dir)}
    for event in recorded:
        assert event["actor"] == "tech-0412" and event["subject"]["incident"] == INCIDENT
        assert event["details"]["recipient"] == "Cook County SAO, Felony Review"
        assert event["details"]["package"]["tagmanifest_sha256"] == digest
        assert event["seq"] >= result["checkpoint"]["size"]
    assert custody("ledger", "verify").exit_code == 0


# ---------------------------------------------------------------------------------------------
# verify-package


def test_verify_package_needs_no_database_store_or_configuration(exported: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    home.mkdir()
    code = (
        "import sys\n"
        "from cli.main import cli\n"
        f"sys.argv = ['custody', 'verify-package', {str(exported['bag'])!r}, '--json']\n"
        "try:\n    cli.main(prog_name='custody')\nexcept SystemExit as exit:\n    code = exit.code\n"
        "heavy = [m for m in ('boto3', 'botocore', 'sqlalchemy', 'custody.ledger.database', 'storage.local') if m in sys.modules]\n"
        "print('HEAVY', heavy, 'EXIT', code, file=sys.stderr)\n"
    )
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "HEAVY [] EXIT 0" in done.stderr, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["findings"] == []
    assert report["payload_files"] == 3 and report["proved_events"] == report["events"] > 6
    assert list(home.iterdir()) == []
    console = shutil.which("custody", path=str(Path(sys.executable).parent))
    if console is not None:
        plain = subprocess.run([console, "verify-package", str(exported["bag"])], capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, cwd=tmp_path)
        assert plain.returncode == 0, plain.stderr
        assert "verified: every file and every custody claim" in plain.stdout


def test_trust_key_accepts_the_ledger_key_and_rejects_another(exported: dict[str, Any], tmp_path: Path) -> None:
    custody = exported["custody"]
    code, report = verify(custody, exported["bag"], "--trust-key", str(custody.home / "verifier.key"))
    assert code == 0 and report["key_trusted"] is True
    _, other = notes.generate_signer("someone-else/custody/0000")
    code, report = verify(custody, exported["bag"], "--trust-key", other)
    assert code == 3 and report["key_trusted"] is False
    found = by_subject(report)
    assert found["custody/verifier.key"][0]["kind"] == "untrusted-key"
    assert found["custody/checkpoint.txt"][0]["kind"] == "bad-signature"


def test_a_flipped_byte_in_a_payload_file_is_named(exported: dict[str, Any], bag: Path) -> None:
    target = sorted((bag / "data").iterdir())[1]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert not bagit.Bag(str(bag)).is_valid()
    assert subprocess.run([require_tool("b3sum"), "-c", "blake3sums.txt"], cwd=bag, capture_output=True).returncode != 0
    code, report = verify(exported["custody"], bag)
    assert code == 3
    name = f"data/{target.name}"
    findings = by_subject(report)
    assert set(findings) == {name}
    assert {f.get("algorithm") for f in findings[name]} == {"sha256", "sha512", "blake3"}
    assert all(f["kind"] == "mismatch" for f in findings[name])
    recorded = [f for f in findings[name] if "recorded at ingest" in f["message"]]
    assert recorded and recorded[0]["expected"] != recorded[0]["found"]


def test_a_removed_and_an_added_payload_file_are_both_named(exported: dict[str, Any], bag: Path) -> None:
    removed = sorted((bag / "data").iterdir())[0]
    removed.unlink()
    (bag / "data" / "extra.mp4").write_bytes(b"not evidence")
    result = exported["custody"]("verify-package", str(bag))
    assert result.exit_code == 3
    assert f"data/{removed.name}: listed in manifest-sha256.txt, manifest-sha512.txt, blake3sums.txt" in result.stderr
    assert "data/extra.mp4: in data/ but not listed" in result.stderr
    assert "NOT VERIFIED" in result.stdout
    code, report = verify(exported["custody"], bag)
    findings = by_subject(report)
    assert findings[f"data/{removed.name}"][0]["kind"] == "missing"
    assert {f["kind"] for f in findings["data/extra.mp4"]} == {"unexpected", "unrecorded"}
    assert findings["bag-info.txt"][0]["kind"] == "mismatch"


def test_an_edited_event_line_is_named_even_when_the_forger_fixes_the_tag_manifests(exported: dict[str, Any],
                                                                                     bag: Path) -> None:
    events = events_of(bag)
    number = next(n for n, e in enumerate(events) if e["action"] == "ingested")
    event = events[number]
    plain = bag / "custody/events.jsonl"
    lines = plain.read_text().splitlines()
    lines[number] = lines[number].replace('"actor":"tech-0412"', '"actor":"tech-9999"', 1)
    plain.write_text("\n".join(lines) + "\n")
    code, report = verify(exported["custody"], bag)
    assert code == 3
    where = f"custody/events.jsonl:{number + 1} (event {event['seq']})"
    assert "custody/events.jsonl" in by_subject(report)
    assert "actor" in by_subject(report)[where][0]["message"]
    body = json.loads(event["leaf"])
    body["actor"] = "tech-9999"
    event["leaf"] = canonical_bytes(body).decode()
    event["actor"] = "tech-9999"
    event["hash"] = hashlib.sha256(b"\0" + event["leaf"].encode()).hexdigest()
    lines[number] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    plain.write_text("\n".join(lines) + "\n")
    refresh_tag_manifests(bag)
    code, report = verify(exported["custody"], bag)
    assert code == 3
    found = by_subject(report)
    [finding] = [f for f in found[where] if f["kind"] == "unproved"]
    assert finding["proof"] == f"custody/proofs/event-{event['seq']}.tlog-proof"
    assert found["custody/events.jsonl"][0]["kind"] == "mismatch" and "sealed" in found["custody/events.jsonl"][0]["message"]


def test_an_edited_proof_is_named(exported: dict[str, Any], bag: Path) -> None:
    event = next(e for e in events_of(bag) if e["action"] == "linked")
    proof = bag / event["proof"]
    head, checkpoint = proof.read_text().split("\n\n", 1)
    lines = head.split("\n")
    lines[2] = base64.b64encode(hashlib.sha256(b"forged").digest()).decode()
    proof.write_text("\n".join(lines) + "\n\n" + checkpoint)
    code, report = verify(exported["custody"], bag)
    assert code == 3
    findings = by_subject(report)
    assert findings[event["proof"]][0]["kind"] == "mismatch"
    [unproved] = [f for f in report["findings"] if f["kind"] == "unproved"]
    assert unproved["proof"] == event["proof"] and event["proof"] in unproved["message"]
    lines[1] = f"index {event['seq'] + 1}"
    proof.write_text("\n".join(lines) + "\n\n" + checkpoint)
    refresh_tag_manifests(bag)
    code, report = verify(exported["custody"], bag)
    assert code == 3
    assert (event["proof"], "mismatch") in [(f["subject"], f["kind"]) for f in report["findings"]]
    subjects = {f["subject"] for f in report["findings"]}
    assert {s for s in subjects if not s.endswith(f"(event {event['seq']})")} == {
        event["proof"], "tagmanifest-sha256.txt", "tagmanifest-sha512.txt"}


def test_a_checkpoint_signed_with_another_key_is_named_and_trust_key_catches_a_full_rekey(
    exported: dict[str, Any], bag: Path
) -> None:
    custody = exported["custody"]
    original = (bag / "custody/checkpoint.txt").read_text()
    body = original[: original.rfind("\n\n") + 1]
    origin = body.split("\n", 1)[0]
    signer_text, verifier_text = notes.generate_signer(origin)
    forged = notes.sign_note(body, [notes.Signer.from_text(signer_text)])
    (bag / "custody/checkpoint.txt").write_text(forged)
    code, report = verify(custody, bag)
    assert code == 3
    found = by_subject(report)
    assert found["custody/checkpoint.txt"][0]["kind"] == "mismatch"
    assert any(f["kind"] == "bad-signature" for f in found["custody/checkpoint.txt"])
    for path in (bag / "custody/proofs").iterdir():
        path.write_text(path.read_text().replace(original, forged))
    (bag / "custody/verifier.key").write_text(verifier_text + "\n")
    refresh_tag_manifests(bag)
    reseal(bag, notes.Signer.from_text(signer_text))
    code, report = verify(custody, bag)
    assert code == 0, report["findings"]
    code, report = verify(custody, bag, "--trust-key", str(custody.home / "verifier.key"))
    assert code == 3
    assert {(f["subject"], f["kind"]) for f in report["findings"]} == {
        ("custody/verifier.key", "untrusted-key"), ("custody/checkpoint.txt", "bad-signature"),
        ("custody/seal.txt", "bad-signature"),
    }


def test_every_finding_is_reported_not_only_the_first(exported: dict[str, Any], bag: Path) -> None:
    names = sorted((bag / "data").iterdir())
    names[0].write_bytes(names[0].read_bytes() + b"\0")
    names[2].unlink()
    (bag / "custody/incident.json").write_text((bag / "custody/incident.json").read_text().replace("refused", "verified"))
    (bag / "report.html").unlink()
    code, report = verify(exported["custody"], bag)
    assert code == 3
    found = by_subject(report)
    assert {f"data/{names[0].name}", f"data/{names[2].name}", "custody/incident.json", "report.html"} <= set(found)
    assert sum(1 for c in report["checks"] if c["findings"]) >= 3


def test_verify_package_of_a_folder_that_is_not_a_package_says_so(exported: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    code, report = verify(exported["custody"], tmp_path / "empty")
    assert code == 3 and report["is_package"] is False
    [finding] = report["findings"]
    assert finding["kind"] == "not-a-package" and "holds none of a package's files" in finding["message"]
    plain = exported["custody"]("verify-package", str(tmp_path / "empty"))
    assert plain.exit_code == 3
    assert "NOT VERIFIED: not a package" in plain.stdout
    assert "None" not in plain.output and "?" not in plain.output
    result = exported["custody"]("verify-package", str(tmp_path / "nothing-here"))
    assert result.exit_code == 2 and "not a directory" in result.stderr


# ---------------------------------------------------------------------------------------------
# receipts


def test_a_signed_receipt_is_imported_as_received_verified(exported: dict[str, Any], tmp_path: Path) -> None:
    custody = exported["custody"]
    key = tmp_path / "sao.key"
    made = custody("receipt", "keygen", "sao-cook-county", "--out", str(key))
    assert made.exit_code == 0
    assert (key.stat().st_mode & 0o777) == 0o600
    verifier = notes.Verifier.from_text(made.stdout.strip())
    assert (tmp_path / "sao.key.pub").read_text().strip() == verifier.to_text()
    receipt = tmp_path / "receipt.txt"
    result = custody("verify-package", str(exported["bag"]), "--trust-key", str(custody.home / "verifier.key"),
                     "--receipt", str(receipt), "--signer-key", str(key))
    assert result.exit_code == 0, result.output
    note = notes.open_note(receipt.read_text(), [verifier])
    assert f"incident {INCIDENT}\n" in note.text and "result verified\n" in note.text
    assert f"tagmanifest-sha256 {exported['export']['tagmanifest_sha256']}\n" in note.text
    assert "ledger-key-trusted yes\n" in note.text
    imported = json.loads(custody("receipt", "import", str(receipt), "--trust-key", verifier.to_text(), "--json").stdout)
    assert imported["already_recorded"] is False
    assert imported["export_seqs"] == exported["export"]["exported_seqs"]
    [event] = [e for e in custody.json("log") if e["action"] == "received-verified"]
    assert event["seq"] == imported["seq"] and event["subject"] == {"incident": INCIDENT}
    assert event["details"]["receipt"] == receipt.read_text()
    assert event["details"]["signature_checked_against"] == "trusted key"
    again = json.loads(custody("receipt", "import", str(receipt), "--json").stdout)
    assert again["already_recorded"] is True and again["seq"] == event["seq"]
    assert len([e for e in custody.json("log") if e["action"] == "received-verified"]) == 1


def test_a_forged_or_foreign_receipt_is_refused(exported: dict[str, Any], bag: Path, tmp_path: Path) -> None:
    custody = exported["custody"]
    key = tmp_path / "r.key"
    assert custody("receipt", "keygen", "recipient", "--out", str(key)).exit_code == 0
    receipt = tmp_path / "receipt.txt"
    assert custody("verify-package", str(bag), "--receipt", str(receipt), "--signer-key", str(key)).exit_code == 0
    forged = tmp_path / "forged.txt"
    forged.write_text(receipt.read_text().replace("result verified", "result verifiedX"))
    result = custody("receipt", "import", str(forged))
    assert result.exit_code == 3 and "not signed by" in result.stderr
    _, stranger = notes.generate_signer("stranger")
    result = custody("receipt", "import", str(receipt), "--trust-key", stranger)
    assert result.exit_code == 3
    (bag / "README.txt").write_text("changed\n")
    refresh_tag_manifests(bag)
    other = tmp_path / "other.txt"
    custody("verify-package", str(bag), "--receipt", str(other), "--signer-key", str(key))
    result = custody("receipt", "import", str(other))
    assert result.exit_code == 2 and "exported no package" in result.stderr
    assert not [e for e in custody.json("log") if e["action"] == "received-verified" and e["details"]["receipt"] == other.read_text()]


def test_a_receipt_of_a_failed_verification_says_so(exported: dict[str, Any], bag: Path, tmp_path: Path) -> None:
    custody = exported["custody"]
    key = tmp_path / "r.key"
    custody("receipt", "keygen", "recipient", "--out", str(key))
    sorted((bag / "data").iterdir())[0].unlink()
    receipt = tmp_path / "receipt.txt"
    result = custody("verify-package", str(bag), "--receipt", str(receipt), "--signer-key", str(key))
    assert result.exit_code == 3
    text = receipt.read_text()
    assert "result findings\n" in text and re.search(r"^findings [1-9]", text, re.M)


# ---------------------------------------------------------------------------------------------
# export refusals


def test_export_refuses_bad_input_with_exit_2(exported: dict[str, Any], tmp_path: Path) -> None:
    custody = exported["custody"]
    result = custody("export", "--incident", "NO-SUCH", "--out", str(tmp_path / "a"))
    assert result.exit_code == 2 and "no incident 'NO-SUCH'" in result.stderr
    result = custody("export", "--incident", INCIDENT, "--out", str(exported["bag"]))
    assert result.exit_code == 2 and "already exists" in result.stderr
    other = tmp_path / "unlinked.bin"
    other.write_bytes(b"preserved but not linked")
    assert custody("ingest", str(other)).exit_code == 0
    result = custody("export", "--incident", INCIDENT, "--out", str(tmp_path / "b"), str(other))
    assert result.exit_code == 2 and "not linked to incident" in result.stderr and "custody link" in result.stderr
    assert custody("incident", "create", "EMPTY-1").exit_code == 0
    result = custody("export", "--incident", "EMPTY-1", "--out", str(tmp_path / "c"))
    assert result.exit_code == 2 and "no linked evidence" in result.stderr
    assert not any(p.name in ("a", "b", "c") or ".partial-" in p.name for p in tmp_path.iterdir())


def test_export_of_some_refs_then_a_damaged_store_stops_with_exit_3(custody: Custody, clips: list[Path],
                                                                    tmp_path: Path) -> None:
    assert custody("init").exit_code == 0
    assert custody("incident", "create", "INC-2").exit_code == 0
    records = custody.json("ingest", str(clips[0]), str(clips[1]), "--incident", "INC-2")
    first = records[0]["blake3"]
    out = tmp_path / "one"
    result = custody("export", "--incident", "INC-2", "--out", str(out), "--no-contact-sheets", first[:10], "--json")
    assert result.exit_code == 0, result.output
    assert [f["blake3"] for f in json.loads(result.stdout)["files"]] == [first]
    assert not (out / "custody/sheets").exists()
    code, report = verify(custody, out)
    assert code == 0 and report["payload_files"] == 1
    stored = custody.home / "store" / "objects" / "evidence" / records[1]["blake3"]
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    result = custody("export", "--incident", "INC-2", "--out", str(tmp_path / "two"))
    assert result.exit_code == 3
    assert f"preserved object {records[1]['blake3']}" in result.stderr
    assert not (tmp_path / "two").exists() and not list(tmp_path.glob(".two.partial-*"))
