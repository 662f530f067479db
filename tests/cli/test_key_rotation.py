"""``custody ledger rotate-key``: rotation signed by the old key, recovery with the backup key
made at init, and verification that follows the chain of keys from the root keys."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.database import Ledger
from tests.conftest import Custody


def _ingest(custody: Custody, tmp_path: Path, n: int) -> None:
    path = tmp_path / f"clip-{n}.mp4"
    path.write_bytes(f"footage {n} ".encode() * 300)
    result = custody("ingest", str(path))
    assert result.exit_code == 0, result.output


def _key_ids(custody: Custody) -> dict[int, str]:
    with sqlite3.connect(custody.home / "custody.db") as db:
        rows = db.execute("SELECT size, note FROM checkpoints ORDER BY size").fetchall()
    return {size: base64.b64decode(note.rstrip("\n").rsplit(" ", 1)[1])[:4].hex() for size, note in rows}


def test_init_makes_a_backup_key_and_root_keys(custody: Custody) -> None:
    shown = custody("init")
    assert shown.exit_code == 0 and "backup.key to offline storage now" in shown.stderr
    for name in ("backup.key", "backup.vkey", "root.vkeys", "signing.key", "verifier.key"):
        (custody.home / name).unlink()
    result = custody("init", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    home = custody.home
    assert (home / "backup.key").stat().st_mode & 0o777 == 0o600
    backup = notes.Signer.from_text((home / "backup.key").read_text().strip())
    assert report["backup_key"] == backup.verifier().to_text() != report["verifier_key"]
    assert backup.name == report["verifier_key"].split("+")[0], "same name: the log's origin does not change"
    assert (home / "root.vkeys").read_text() == f"key {report['verifier_key']}\nbackup {report['backup_key']}\n"
    again = custody("init", "--json")
    assert json.loads(again.stdout)["backup_key"] is None and (home / "backup.key").read_text().strip() == backup.to_text()


def test_rotation_by_the_old_key_then_recovery_by_the_backup_key(initialized: Custody, tmp_path: Path) -> None:
    home = initialized.home
    first = notes.Verifier.from_text((home / "verifier.key").read_text().strip())
    _ingest(initialized, tmp_path, 0)
    rotated = initialized.json("ledger", "rotate-key")
    assert rotated["seq"] == 1 and rotated["old_key"] == first.to_text() and rotated["authorized_by"] == "key"
    second = notes.Verifier.from_text(rotated["new_key"])
    assert second.name == first.name and second.key_id != first.key_id
    assert (home / f"signing.key.retired-{first.key_id:08x}").exists()
    _ingest(initialized, tmp_path, 1)
    ids = _key_ids(initialized)
    assert ids == {1: f"{first.key_id:08x}", 2: f"{second.key_id:08x}", 3: f"{second.key_id:08x}"}
    report = initialized("ledger", "verify", "--json")
    assert report.exit_code == 0, report.stdout
    event = initialized.json("log")[1]
    assert event["action"] == "key-rotated"
    statement = notes.open_note(event["details"]["note"], [first])
    assert f"new {second.to_text()}" in statement.text
    notes.open_note(event["details"]["note"], [second])

    (home / "signing.key").unlink()
    lost = initialized("ledger", "rotate-key")
    assert lost.exit_code == 5 and "no signing key" in lost.stderr
    backup_file = tmp_path / "offline-backup.key"
    backup_file.write_text(rotated_backup := (home / "backup.key").read_text())
    (home / "backup.key").unlink()
    recovered = initialized.json("ledger", "rotate-key", "--with-backup", str(backup_file))
    assert recovered["authorized_by"] == "backup" and recovered["old_key"] == second.to_text()
    assert notes.Signer.from_text(rotated_backup.strip()).verifier().to_text() == rotated["backup_key"]
    _ingest(initialized, tmp_path, 2)
    result = initialized("ledger", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ledger OK: 5 events")


def test_a_checkpoint_signed_by_a_retired_key_is_refused(initialized: Custody, tmp_path: Path) -> None:
    home = initialized.home
    old_signer = notes.Signer.from_text((home / "signing.key").read_text().strip())
    _ingest(initialized, tmp_path, 0)
    initialized.json("ledger", "rotate-key")
    _ingest(initialized, tmp_path, 1)
    ledger = Ledger(f"sqlite:///{home / 'custody.db'}")
    with ledger.transaction() as tx:
        tx.append("note-added", actor="intruder", details={"note": "x"})
    root = ledger.with_nodes(lambda nodes: tree.root(nodes, 4))
    forged = notes.sign_checkpoint(notes.Checkpoint(old_signer.name, 4, root), [old_signer])
    ledger.record_checkpoint(size=4, root=root.hex(), note=forged, store_key="checkpoints/0000000000000004")
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 3
    messages = [f"{f['subject']}: {f['message']}" for f in json.loads(result.stdout)["findings"]]
    assert f"checkpoint 4: not signed by the key in force at that size ({old_signer.name}+" in "\n".join(messages)


def test_a_rotation_not_signed_by_the_key_in_force_is_not_followed(initialized: Custody, tmp_path: Path) -> None:
    home = initialized.home
    _ingest(initialized, tmp_path, 0)
    text, vkey = notes.generate_signer(notes.Verifier.from_text((home / "verifier.key").read_text().strip()).name)
    stranger = notes.Signer.from_text(text)
    current = notes.Verifier.from_text((home / "verifier.key").read_text().strip())
    statement = (
        f"custody key rotation/v1\nlog {current.name}\nold {current.to_text()}\nnew {vkey}\nbackup {vkey}\n"
    )
    ledger = Ledger(f"sqlite:///{home / 'custody.db'}")
    ledger.append("key-rotated", actor="intruder", details={"note": notes.sign_note(statement, [stranger])})
    (home / "signing.key").write_text(text + "\n")
    (home / "verifier.key").write_text(vkey + "\n")
    _ingest(initialized, tmp_path, 1)
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 3
    text_out = "\n".join(f"{f['subject']}: {f['message']}" for f in json.loads(result.stdout)["findings"])
    assert "event 1: key rotation not accepted" in text_out
    assert "checkpoint 3" in text_out and "not signed by the ledger's key" in text_out
