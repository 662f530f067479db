"""A lost signing key recovered with the backup key made at ``init``, end to end: the ledger
and an exported package verify from the FIRST key through the rotation the package carries; a
rotation signed by a key that is neither the key in force nor its backup, and a package whose
rotation record was removed, are refused (exit 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from custody.anchors import keys
from custody.ledger import checkpoint as notes
from custody.ledger.database import Ledger
from tests.conftest import Custody

INCIDENT = "2026-1101-ICE-16"


def _ok(custody: Custody, *args: str) -> Any:
    result = custody(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


def _ingest(custody: Custody, tmp_path: Path, n: int) -> None:
    path = tmp_path / f"clip-{n}.mp4"
    path.write_bytes(f"footage {n} ".encode() * 300)
    _ok(custody, "ingest", str(path), "--incident", INCIDENT)


def _export(custody: Custody, out: Path) -> Path:
    _ok(custody, "export", "--incident", INCIDENT, "--out", str(out), "--recipient", "SAO", "--no-contact-sheets")
    return out


def _verify_package(custody: Custody, bag: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("verify-package", str(bag), "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def _messages(report: dict[str, Any]) -> str:
    return "\n".join(f"{f.get('subject', f.get('path', ''))}: {f['message']}" for f in report["findings"])


@pytest.fixture
def recovered(initialized: Custody, tmp_path: Path) -> dict[str, Any]:
    """init; ingest; seal; the signing key lost; recovered with the offline backup key; ingest
    and seal again; a package exported."""
    home = initialized.home
    first = (home / "verifier.key").read_text().strip()
    offline = tmp_path / "offline" / "backup.key"
    offline.parent.mkdir()
    shutil.move(home / "backup.key", offline)
    _ok(initialized, "incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE")
    _ingest(initialized, tmp_path, 0)
    _ok(initialized, "ledger", "checkpoint")
    nominated = notes.Verifier.from_text((home / "backup.vkey").read_text().strip())
    first_key = notes.Verifier.from_text(first)
    assert keys.open_backup_nomination((home / keys.ROOT_BACKUP_NOTE).read_text(), first_key) == nominated
    (home / "signing.key").unlink()
    refused = initialized("ingest", str(tmp_path / "clip-0.mp4"))
    assert refused.exit_code == 5 and not (home / "signing.key").exists(), "no key is made silently"
    recovery = initialized.json("ledger", "rotate-key", "--with-backup", str(offline))
    assert recovery["authorized_by"] == "backup" and recovery["old_key"] == first
    _ingest(initialized, tmp_path, 1)
    _ok(initialized, "ledger", "checkpoint")
    bag = _export(initialized, tmp_path / "pkg")
    return {"custody": initialized, "first": first, "new": recovery["new_key"], "bag": bag, "offline": offline}


def test_ledger_and_package_verify_from_the_first_key_through_a_backup_recovery(recovered: dict[str, Any]) -> None:
    custody = recovered["custody"]
    assert custody("ledger", "verify").exit_code == 0
    bag = recovered["bag"]
    assert "root-backup.txt is the first key's statement naming its backup key" in (bag / "README.txt").read_text(encoding="utf-8")
    code, report = _verify_package(custody, bag, "--trust-key", recovered["first"])
    assert code == 0, _messages(report)
    assert report["anchors"]["rotations_followed"] == 1
    # a recipient who pinned the key in force since the recovery needs no rotation
    code, report = _verify_package(custody, bag, "--trust-key", recovered["new"])
    assert code == 0, _messages(report)
    assert report["anchors"]["rotations_followed"] == 0


def _remove(bag: Path, name: str) -> None:
    """Remove a tag file and its lines in the tag manifests, as someone editing the package would."""
    (bag / name).unlink()
    for manifest in bag.glob("tagmanifest-*.txt"):
        kept = [line for line in manifest.read_text().splitlines() if not line.endswith(name)]
        manifest.write_text("\n".join(kept) + "\n")


def test_a_package_whose_rotation_record_was_removed_is_refused(recovered: dict[str, Any]) -> None:
    custody, bag = recovered["custody"], recovered["bag"]
    _remove(bag, "custody/key-rotations.jsonl")
    code, report = _verify_package(custody, bag, "--trust-key", recovered["first"])
    assert code == 3
    assert "custody/checkpoint.txt: is not signed by the trusted key " + recovered["first"] in _messages(report)


def test_a_package_without_the_first_keys_backup_statement_is_refused(recovered: dict[str, Any]) -> None:
    custody, bag = recovered["custody"], recovered["bag"]
    _remove(bag, "custody/root-backup.txt")
    code, report = _verify_package(custody, bag, "--trust-key", recovered["first"])
    assert code == 3
    assert "key-rotations.jsonl:1: rotation not followed" in _messages(report)
    assert "needs custody/root-backup.txt" in _messages(report)


def test_a_rotation_signed_by_neither_the_key_nor_the_backup_is_refused(initialized: Custody, tmp_path: Path) -> None:
    """A stranger (not the key in force, not its backup) signs a rotation to a key of its own and
    seals with it: the ledger and the package, checked from the first key, refuse it."""
    home = initialized.home
    first = notes.Verifier.from_text((home / "verifier.key").read_text().strip())
    _ok(initialized, "incident", "create", INCIDENT, "--occurred-at", "2026-11-01T14:03:00-06:00", "--agency", "ICE")
    _ingest(initialized, tmp_path, 0)
    stranger_text, stranger_vkey = notes.generate_signer(first.name)
    new_text, new_vkey = notes.generate_signer(first.name)
    (tmp_path / "stranger.key").write_text(stranger_text + "\n")
    refused = initialized("ledger", "rotate-key", "--with-backup", str(tmp_path / "stranger.key"))
    assert refused.exit_code == 4 and "neither the ledger's key in force nor its backup" in refused.output  # refused by policy
    statement = (
        f"custody key rotation/v1\nlog {first.name}\nold {first.to_text()}\nnew {new_vkey}\nbackup {stranger_vkey}\n"
    )
    note = notes.sign_note(statement, [notes.Signer.from_text(stranger_text), notes.Signer.from_text(new_text)])
    Ledger(f"sqlite:///{home / 'custody.db'}").append(
        "key-rotated", actor="intruder", details={"note": note, "new_key": new_vkey, "old_key": first.to_text()}
    )
    (home / "signing.key").write_text(new_text + "\n")
    (home / "verifier.key").write_text(new_vkey + "\n")
    _ingest(initialized, tmp_path, 1)
    verified = initialized("ledger", "verify", "--json")
    assert verified.exit_code == 3 and "key rotation not accepted" in verified.stdout
    bag = _export(initialized, tmp_path / "pkg")
    code, report = _verify_package(initialized, bag, "--trust-key", first.to_text())
    assert code == 3
    assert "key-rotations.jsonl:1: rotation not followed" in _messages(report)


def test_without_the_statement_a_recipient_may_pin_the_first_keys_backup(recovered: dict[str, Any], tmp_path: Path) -> None:
    """A ledger made before init wrote root-backup.note: its package carries no statement, so the
    recipient pins the backup from the agency's root.vkeys with --trust-backup; another key is refused."""
    custody = recovered["custody"]
    (custody.home / keys.ROOT_BACKUP_NOTE).unlink()
    bag = _export(custody, tmp_path / "older")
    assert not (bag / "custody/root-backup.txt").exists()
    code, report = _verify_package(custody, bag, "--trust-key", recovered["first"])
    assert code == 3 and "or that backup key pinned with --trust-backup" in _messages(report)
    root_backup = (custody.home / "root.vkeys").read_text().splitlines()[1].removeprefix("backup ")
    code, report = _verify_package(custody, bag, "--trust-key", recovered["first"], "--trust-backup", root_backup)
    assert code == 0, _messages(report)
    assert report["anchors"]["rotations_followed"] == 1
    _, stranger = notes.generate_signer(notes.Verifier.from_text(recovered["first"]).name)
    code, report = _verify_package(custody, bag, "--trust-key", recovered["first"], "--trust-backup", stranger)
    assert code == 3 and "key-rotations.jsonl:1: rotation not followed" in _messages(report)
