"""The ledger against its WORM checkpoints: each kind of tampering ends in exit 3, named."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

from custody.ledger import checkpoint as notes
from custody.ledger import tree
from custody.ledger.canonical import canonical_bytes
from custody.ledger.database import GENESIS, CustodyEvent, Ledger, event_hash
from storage.base import Retention
from storage.local import LocalStore
from tests.conftest import Custody


def _ingest_each(custody: Custody, paths: list[Path]) -> None:
    for path in paths:
        result = custody("ingest", str(path))
        assert result.exit_code == 0, result.output


def _files(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for index in range(n):
        path = tmp_path / f"clip-{index}.mp4"
        path.write_bytes(f"footage {index}".encode() * 100)
        paths.append(path)
    return paths


def _verify(custody: Custody) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = custody("ledger", "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def _messages(report: dict) -> str:  # type: ignore[type-arg]
    return "\n".join(f"{f['subject']}: {f['message']}" for f in report["findings"])


def _db(custody: Custody) -> sqlite3.Connection:
    db = sqlite3.connect(custody.home / "custody.db")
    for table in ("events", "tree_nodes", "checkpoints", "evidence"):
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    return db


def test_intact_ledger_verifies_with_one_worm_checkpoint_per_command(initialized: Custody, tmp_path: Path) -> None:
    _ingest_each(initialized, _files(tmp_path, 3))
    code, report = _verify(initialized)
    assert code == 0, report
    assert report["events"] == 3
    assert report["checkpoints_in_store"] == 3 and report["checkpoints_in_database"] == 3
    stored = sorted(p.name for p in (initialized.home / "store" / "objects" / "checkpoints").iterdir())
    assert stored == ["0000000000000001", "0000000000000002", "0000000000000003"]


def test_details_changed_with_raw_sql(initialized: Custody, tmp_path: Path) -> None:
    _ingest_each(initialized, _files(tmp_path, 3))
    db = _db(initialized)
    db.execute("UPDATE events SET details = replace(details, 'clip-1', 'clip-9') WHERE seq = 1")
    db.commit()
    code, report = _verify(initialized)
    assert code == 3
    text = _messages(report)
    assert "event 1: content does not match its hash" in text
    assert "checkpoint 2" in text and "checkpoint 3" in text
    assert "checkpoint 1:" not in text


def test_last_events_deleted(initialized: Custody, tmp_path: Path) -> None:
    _ingest_each(initialized, _files(tmp_path, 4))
    db = _db(initialized)
    db.execute("DELETE FROM events WHERE seq >= 2")
    db.commit()
    code, report = _verify(initialized)
    assert code == 3
    text = _messages(report)
    assert "checkpoint 4: the WORM checkpoint covers 4 events but the ledger has only 2" in text
    assert "checkpoint 3: the WORM checkpoint covers 3 events" in text


def test_database_replaced_by_an_older_copy(initialized: Custody, tmp_path: Path) -> None:
    files = _files(tmp_path, 3)
    _ingest_each(initialized, files[:1])
    old = tmp_path / "old.db"
    source = sqlite3.connect(initialized.home / "custody.db")
    target = sqlite3.connect(old)
    source.backup(target)
    source.close()
    target.close()
    _ingest_each(initialized, files[1:])
    for suffix in ("", "-wal", "-shm"):
        (initialized.home / f"custody.db{suffix}").unlink(missing_ok=True)
    shutil.copy(old, initialized.home / "custody.db")
    code, report = _verify(initialized)
    assert code == 3
    text = _messages(report)
    assert "checkpoint 3: the WORM checkpoint covers 3 events but the ledger has only 1" in text
    assert "checkpoint 3: in WORM storage but missing from the database" in text


def _rewrite(custody: Custody, events: list[CustodyEvent]) -> None:
    """Rewrite the whole database as someone with full access and the signing key would: chain
    recomputed, tree rebuilt, database checkpoints re-signed. Only WORM storage is out of reach."""
    signer = notes.Signer.from_text((custody.home / "signing.key").read_text().strip())
    chained = []
    prev = GENESIS
    for seq, original in enumerate(events):
        draft = CustodyEvent(**{**original.__dict__, "seq": seq, "prev_hash": prev, "hash": ""})
        digest = event_hash(draft.canonical())
        chained.append(CustodyEvent(**{**draft.__dict__, "hash": digest}))
        prev = digest
    nodes = tree.MemoryNodeStore()
    for seq, event in enumerate(chained):
        nodes.add_nodes(tree.append_leaf(nodes, seq, bytes.fromhex(event.hash)))
    db = _db(custody)
    db.execute("DELETE FROM events")
    db.execute("DELETE FROM tree_nodes")
    old_checkpoints = db.execute("SELECT size, store_key, time FROM checkpoints").fetchall()
    db.execute("DELETE FROM checkpoints")
    for event in chained:
        db.execute(
            "INSERT INTO events (seq, time, actor, role, action, subject_evidence, subject_incident, details, tool, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.seq, event.time, event.actor, event.role, event.action, event.subject.get("evidence"),
             event.subject.get("incident"), canonical_bytes(event.details).decode(), event.tool, event.prev_hash, event.hash),
        )
    for (level, idx), digest in nodes.get_nodes([k for k in nodes._nodes]).items():  # noqa: SLF001
        db.execute("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", (level, idx, digest.hex()))
    for size, key, when in old_checkpoints:
        if size <= len(chained):
            root = tree.root(nodes, size)
            note = notes.sign_checkpoint(notes.Checkpoint(signer.name, size, root), [signer])
            db.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)", (size, root.hex(), note, when, key))
    db.commit()


def test_forged_event_inserted_in_the_middle_with_the_chain_recomputed(initialized: Custody, tmp_path: Path) -> None:
    _ingest_each(initialized, _files(tmp_path, 4))
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    events = list(ledger.events())
    forged = CustodyEvent(**{**events[1].__dict__, "action": "disposed", "details": {"reason": "forged"}})
    _rewrite(initialized, events[:2] + [forged] + events[2:3])
    code, report = _verify(initialized)
    assert code == 3
    text = _messages(report)
    assert "event" not in "".join(f["subject"] for f in report["findings"]), "the chain itself was made consistent"
    assert "checkpoint 3: the ledger's first 3 events no longer have the root this WORM checkpoint signed" in text
    assert "checkpoint 4: the ledger's first 4 events no longer have the root this WORM checkpoint signed" in text
    assert "checkpoint 2:" not in text and "checkpoint 1:" not in text


def test_checkpoint_signed_by_another_key(initialized: Custody, tmp_path: Path) -> None:
    _ingest_each(initialized, _files(tmp_path, 2))
    other_text, _ = notes.generate_signer("impostor/custody/00000000")
    other = notes.Signer.from_text(other_text)
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    root = ledger.with_nodes(lambda nodes: tree.root(nodes, 2))
    forged = notes.sign_checkpoint(notes.Checkpoint(other.name, 2, root), [other]).encode()
    store = LocalStore(initialized.home / "store")
    store.put(
        "checkpoints/0000000000000005",
        io.BytesIO(forged),
        len(forged),
        sha256=hashlib.sha256(forged).hexdigest(),
        retention=Retention("COMPLIANCE", store.now() + timedelta(days=1)),
    )
    code, report = _verify(initialized)
    assert code == 3
    text = _messages(report)
    assert "checkpoint 5 (WORM copy): not signed by the ledger's key" in text


def test_stored_checkpoint_removed_from_the_database_only(initialized: Custody, tmp_path: Path) -> None:
    _ingest_each(initialized, _files(tmp_path, 3))
    db = _db(initialized)
    db.execute("DELETE FROM checkpoints WHERE size = 2")
    db.commit()
    code, report = _verify(initialized)
    assert code == 3
    assert _messages(report) == "checkpoint 2: in WORM storage but missing from the database (removed from the database)"


def test_prove_gives_a_tlog_proof_that_verifies_independently(initialized: Custody, tmp_path: Path) -> None:
    files = _files(tmp_path, 5)
    _ingest_each(initialized, files)
    events = initialized.json("log")
    target = events[2]
    result = initialized("ledger", "prove", target["subject"]["evidence"][:10])
    assert result.exit_code == 0, result.output
    key = initialized("ledger", "key").stdout.strip()
    verified = notes.verify_tlog_proof(result.stdout, [notes.Verifier.from_text(key)], entry=target["leaf"].encode())
    assert verified.index == 2 and verified.checkpoint.size == 5
    by_seq = initialized("ledger", "prove", "x", "--event", "4")
    assert notes.verify_tlog_proof(by_seq.stdout, [notes.Verifier.from_text(key)], entry=events[4]["leaf"].encode()).index == 4
    wrong = notes.Verifier.from_text(notes.generate_signer("someone/else")[1])
    try:
        notes.verify_tlog_proof(result.stdout, [wrong], entry=target["leaf"].encode())
    except notes.TlogError:
        pass
    else:
        raise AssertionError("a proof must not verify under another key")


def test_checkpoint_and_key_commands(initialized: Custody, tmp_path: Path) -> None:
    assert initialized("ledger", "checkpoint").exit_code == 2
    _ingest_each(initialized, _files(tmp_path, 1))
    signed = initialized.json("ledger", "checkpoint")
    key = notes.Verifier.from_text(initialized("ledger", "key").stdout.strip())
    checkpoint, _ = notes.open_checkpoint(signed["note"], [key])
    assert checkpoint.size == 1 and checkpoint.origin == key.name
    assert checkpoint.root.hex() == hashlib.sha256(b"\x00" + initialized.json("log")[0]["leaf"].encode()).hexdigest()
