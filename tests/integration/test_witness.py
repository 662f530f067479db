"""Witnesses over real HTTP on loopback: two ``custody witness serve`` processes, a quorum, a
witness that is down, a forked ledger, and the root user's deletion of the ledger's newest state.

Cosignatures are checked here with the C2SP tlog-cosignature rules written out in the test
(key ID with 0x04, the ``cosignature/v1`` message), not with custody's own code."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.conftest import Custody
from tests.integration.witnesses import WitnessProcess, anchors_config


@pytest.fixture
def two_witnesses(initialized: Custody, tmp_path: Path) -> Iterator[list[WitnessProcess]]:
    log_vkey = initialized("ledger", "key").stdout.strip()
    witnesses = [
        WitnessProcess(tmp_path / "witnesses" / f"w{n}", f"witness.example/w{n}").init(log_vkey).start()
        for n in (1, 2)
    ]
    (initialized.home / "config.toml").write_text(anchors_config(witnesses, 2))
    yield witnesses
    for witness in witnesses:
        witness.stop()


def _issuer(vkey: str) -> str:
    return "+".join(vkey.split("+")[:2])


def _clip(tmp_path: Path, n: int, text: str = "footage") -> Path:
    path = tmp_path / f"clip-{text}-{n}.mp4"
    path.write_bytes(f"{text} {n} ".encode() * 500)
    return path


def _ingest(custody: Custody, path: Path) -> str:
    result = custody("ingest", str(path))
    assert result.exit_code == 0, result.output
    return result.stderr


def _independent_cosignature_check(vkey: str, line: str, checkpoint_body: str) -> int:
    """Verify a cosignature line per C2SP tlog-cosignature; return its timestamp."""
    name, key_id_hex, material = vkey.split("+", 2)
    blob = base64.b64decode(material)
    assert blob[0] == 0x04
    public = blob[1:]
    assert hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4].hex() == key_id_hex
    assert line.startswith(f"\u2014 {name} ")
    sig = base64.b64decode(line.rstrip("\n").split(" ")[-1])
    assert sig[:4].hex() == key_id_hex and len(sig) == 76
    timestamp = int.from_bytes(sig[4:12], "big")
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint_body.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(sig[12:], message)
    return timestamp


def _anchor_rows(custody: Custody) -> list[tuple[int, str, str, str]]:
    with sqlite3.connect(custody.home / "custody.db") as db:
        return db.execute("SELECT size, kind, issuer, body FROM checkpoint_anchors ORDER BY size, issuer").fetchall()


def _checkpoint_notes(custody: Custody) -> dict[int, str]:
    with sqlite3.connect(custody.home / "custody.db") as db:
        return dict(db.execute("SELECT size, note FROM checkpoints").fetchall())


def test_two_witnesses_cosign_every_checkpoint_over_http(initialized: Custody, two_witnesses: list[WitnessProcess], tmp_path: Path) -> None:
    for n in range(3):
        assert "warning" not in _ingest(initialized, _clip(tmp_path, n))
    rows = _anchor_rows(initialized)
    notes_by_size = _checkpoint_notes(initialized)
    assert sorted({size for size, *_ in rows}) == [1, 2, 3]
    assert len(rows) == 6 and {kind for _, kind, _, _ in rows} == {"cosignature"}
    by_name = {w.vkey.split("+")[0]: w for w in two_witnesses}
    for size, _kind, issuer, line in rows:
        witness = by_name[issuer.split("+")[0]]
        body = notes_by_size[size].partition("\n\n")[0] + "\n"
        _independent_cosignature_check(witness.vkey, line, body)
        stored = initialized.home / "store" / "objects" / "anchors" / f"{size:016d}"
        assert line.encode() in [p.read_bytes() for p in stored.iterdir()]
    for witness in two_witnesses:
        state = json.loads(next((witness.directory / "state").glob("*.json")).read_text())
        assert state["size"] == 3 and state["checkpoint"] == notes_by_size[3]
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["anchors"]["under_quorum"] == [] and report["anchors"]["quorum"] == 2
    assert [c["status"] for c in report["anchors"]["contacts"]] == ["cosigned", "cosigned"]
    text = initialized("ledger", "verify")
    assert "2 of 2 witness(es) agree, 3 of 3 checkpoint(s) have the quorum of 2 cosignatures" in text.stdout


def test_a_witness_that_is_down_does_not_stop_ingest_and_the_next_seal_catches_it_up(
    initialized: Custody, two_witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    first, second = two_witnesses
    _ingest(initialized, _clip(tmp_path, 0))
    second.stop()
    warnings = _ingest(initialized, _clip(tmp_path, 1))
    assert f"witness {_issuer(second.vkey)} at {second.url} is unreachable" in warnings
    assert "checkpoint 2 is not cosigned by it yet" in warnings
    report = json.loads(initialized("ledger", "verify", "--json").stdout)
    assert report["ok"] is True
    assert report["anchors"]["under_quorum"] == [{"size": 2, "cosignatures": 1, "witnesses": [_issuer(first.vkey)]}]
    assert {c["status"] for c in report["anchors"]["contacts"]} == {"cosigned", "unreachable"}
    second.start()
    assert "warning" not in _ingest(initialized, _clip(tmp_path, 2))
    sizes = [size for size, _k, issuer, _b in _anchor_rows(initialized) if issuer.startswith("witness.example/w2+")]
    assert sizes == [1, 3], "caught up from size 1 to 3 with one consistency proof"
    state = json.loads(next((second.directory / "state").glob("*.json")).read_text())
    assert state["size"] == 3
    report = json.loads(initialized("ledger", "verify", "--json").stdout)
    assert [entry["size"] for entry in report["anchors"]["under_quorum"]] == [2]


def test_a_forked_ledger_is_refused_by_the_witness_and_reported(
    initialized: Custody, two_witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    _ingest(initialized, _clip(tmp_path, 0))
    backup = tmp_path / "custody-at-1.db"
    with sqlite3.connect(initialized.home / "custody.db") as db, sqlite3.connect(backup) as copy:
        db.backup(copy)
    _ingest(initialized, _clip(tmp_path, 1))
    for suffix in ("", "-wal", "-shm"):
        (initialized.home / f"custody.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, initialized.home / "custody.db")
    warnings = ""
    for n in range(2):
        warnings += _ingest(initialized, _clip(tmp_path, n, "other"))
    assert "INTEGRITY" in warnings and "refused the consistency proof from size 2" in warnings
    for witness in two_witnesses:
        state = json.loads(next((witness.directory / "state").glob("*.json")).read_text())
        assert state["size"] == 2, "the witness kept the checkpoint it cosigned"
        assert list((witness.directory / "refused").iterdir()), "the refused request is kept as evidence"
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 3
    messages = [f["message"] for f in json.loads(result.stdout)["findings"] if f["subject"].startswith("witness ")]
    assert len(messages) == 2
    assert all("refused the consistency proof from size 2, the checkpoint it cosigned, to 3" in m for m in messages)


def _root_deletes_newest(custody: Custody, keep: int) -> None:
    """What a root user can do to the embedded default: delete the newest events, their tree
    nodes, checkpoint rows, anchors, evidence rows, objects and checkpoint files."""
    db = sqlite3.connect(custody.home / "custody.db")
    tables = ("events", "tree_nodes", "checkpoints", "evidence", "checkpoint_anchors")
    for table in tables:
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    digests = [row[0] for row in db.execute("SELECT blake3 FROM evidence WHERE first_seq >= ?", (keep,))]
    db.execute("DELETE FROM events WHERE seq >= ?", (keep,))
    db.execute("DELETE FROM tree_nodes WHERE (idx + 1) * (1 << level) > ?", (keep,))
    db.execute("DELETE FROM checkpoints WHERE size > ?", (keep,))
    db.execute("DELETE FROM checkpoint_anchors WHERE size > ?", (keep,))
    db.execute("DELETE FROM evidence WHERE first_seq >= ?", (keep,))
    db.commit()
    db.close()
    store = custody.home / "store"
    doomed = [f"evidence/{d}" for d in digests]
    for path in (store / "objects" / "checkpoints").iterdir():
        if int(path.name) > keep:
            doomed.append(f"checkpoints/{path.name}")
    for path in (store / "objects" / "anchors").iterdir():
        if int(path.name) > keep:
            doomed += [f"anchors/{path.name}/{p.name}" for p in path.iterdir()]
    for key in doomed:
        for path in (store / "objects" / key, store / "meta" / (key + ".jsonl")):
            path.chmod(0o600)
            path.unlink()


def test_root_deletion_of_the_newest_state_is_found_by_the_witness(
    initialized: Custody, two_witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    for n in range(4):
        _ingest(initialized, _clip(tmp_path, n))
    _root_deletes_newest(initialized, keep=2)
    (initialized.home / "config.toml").rename(initialized.home / "config.toml.off")
    blind = initialized("ledger", "verify")
    assert blind.exit_code == 0 and "ledger OK: 2 events" in blind.stdout, "without witnesses nothing shows it"
    (initialized.home / "config.toml.off").rename(initialized.home / "config.toml")
    result = initialized("ledger", "verify", "--json")
    assert result.exit_code == 3
    findings = [f for f in json.loads(result.stdout)["findings"] if f["subject"].startswith("witness ")]
    assert len(findings) == 2
    for finding, witness in zip(findings, two_witnesses):
        assert finding["witness_size"] == 4 and finding["ledger_size"] == 2
        assert finding["message"] == (
            f"witness {_issuer(witness.vkey)} at {witness.url} has cosigned a checkpoint of size 4, "
            "but this ledger has only 2 events (latest checkpoint 2): the ledger was rolled back or truncated"
        )
    text = initialized("ledger", "verify")
    assert text.exit_code == 3 and "has cosigned a checkpoint of size 4, but this ledger has only 2 events" in text.stderr
    audit = initialized("audit", "--level", "full")
    assert audit.exit_code == 3, audit.output
    assert "has cosigned a checkpoint of size 4, but this ledger has only 2 events" in audit.output
    warnings = _ingest(initialized, _clip(tmp_path, 9, "after"))
    assert "INTEGRITY" in warnings, "the audit's event made 3, this ingest 4 events: not the tree the witness holds"
    assert "holds a different root for size 4: this ledger is a fork of the one it cosigned" in warnings


def _post(url: str, body: bytes) -> tuple[int, str, str]:
    request = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def test_witness_protocol_answers_as_the_specification_says(
    initialized: Custody, two_witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    witness = two_witnesses[0]
    for n in range(3):
        _ingest(initialized, _clip(tmp_path, n))
    notes_by_size = _checkpoint_notes(initialized)
    note3 = notes_by_size[3]
    status, content_type, body = _post(witness.url, f"old 1\n\n{note3}".encode())
    assert (status, content_type, body) == (409, "text/x.tlog.size", "3\n")
    assert _post(witness.url, f"old 4\n\n{note3}".encode())[0] == 400
    unknown = note3.replace(note3.split("\n", 1)[0], "other.example/log", 1)
    assert _post(witness.url, f"old 3\n\n{unknown}".encode())[0] == 404
    body_text, _, sigs = note3.partition("\n\n")
    forged_root = base64.b64encode(b"\x11" * 32).decode()
    forged = "\n".join(body_text.split("\n")[:2] + [forged_root]) + "\n\n" + sigs
    assert _post(witness.url, f"old 3\n\n{forged}".encode())[0] == 403
    status, _, line = _post(witness.url, f"old 3\n\n{note3}".encode())
    assert status == 200
    _independent_cosignature_check(witness.vkey, line, body_text + "\n")
    witness.stop()
    witness.start()
    assert _post(witness.url, f"old 0\n\n{note3}".encode())[:3] == (409, "text/x.tlog.size", "3\n"), "state survives a restart"


def test_after_a_key_rotation_each_witness_needs_the_new_key_then_cosigns_again(
    initialized: Custody, two_witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    from tests.integration.witnesses import custody_cli

    _ingest(initialized, _clip(tmp_path, 0))
    rotated = initialized("ledger", "rotate-key", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert rotated.stderr.count("answered 403") == 2 and "must add the new key: 'custody witness add-log'" in rotated.stderr
    new_key = json.loads(rotated.stdout)["new_key"]
    for witness in two_witnesses:
        witness.stop()
        added = custody_cli("witness", "add-log", new_key, "--dir", str(witness.directory), home=witness.directory.parent)
        assert added.returncode == 0, added.stderr
        witness.start()
    assert "warning" not in _ingest(initialized, _clip(tmp_path, 1))
    rows = _anchor_rows(initialized)
    assert sorted({size for size, *_ in rows}) == [1, 3], "size 2 (the rotation) was refused; 3 extends 1"
    report = json.loads(initialized("ledger", "verify", "--json").stdout)
    assert report["ok"] is True and [e["size"] for e in report["anchors"]["under_quorum"]] == [2]
