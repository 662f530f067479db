"""A tampered ledger is an integrity finding (exit 3) naming the event for every command that
meets it, never a database error (exit 5), and bytes that are not UTF-8 are never printed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Custody


def _files(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for index in range(n):
        path = tmp_path / f"clip-{index}.mp4"
        path.write_bytes(f"footage {index}".encode() * 100)
        paths.append(path)
    return paths


def _tamper(custody: Custody, sql: str) -> None:
    db = sqlite3.connect(custody.home / "custody.db")
    for table in ("events", "tree_nodes", "checkpoints", "evidence"):
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        db.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    db.execute(sql)
    db.commit()
    db.close()


@pytest.fixture
def four(initialized: Custody, tmp_path: Path) -> list[Path]:
    paths = _files(tmp_path, 4)
    for path in paths:
        assert initialized("ingest", str(path)).exit_code == 0
    return paths


def test_deleted_events_make_audit_and_verify_exit_3_naming_the_event(initialized: Custody, four: list[Path]) -> None:
    _tamper(initialized, "DELETE FROM events WHERE seq >= 2")
    for args in (["audit"], ["verify", str(four[0])]):
        result = initialized(*args)
        assert result.exit_code == 3, (args, result.output)
        assert "event 2: cannot append event 2" in result.stderr
        assert "ledger verify" in result.stderr
        assert "UNIQUE" not in result.output
    ledger = initialized("ledger", "verify")
    assert ledger.exit_code == 3


def test_invalid_utf8_in_an_event_is_exit_3_naming_it_without_raw_bytes(initialized: Custody, four: list[Path]) -> None:
    _tamper(initialized, "UPDATE events SET details = CAST(X'7b226e6f7465223a22ff1b5b324a227d' AS TEXT) WHERE seq = 1")
    for args in (["log"], ["log", "--json"], ["show", str(four[1])], ["verify", str(four[1])], ["incident", "list"]):
        result = initialized(*args)
        if args == ["incident", "list"] and result.exit_code == 0:
            continue  # reads no event about evidence
        assert result.exit_code == 3, (args, result.output)
        assert "event 1: its stored text is not valid UTF-8" in result.stderr
        assert "\ufffd" not in result.output and "\x1b" not in result.output
    audit = initialized("audit", "--json")
    assert audit.exit_code == 3
    if audit.stdout:  # a full report naming the event, or an error naming it before any report
        findings = json.loads(audit.stdout)["findings"]
        assert any(f["subject"] == "event 1" and f["kind"] == "ledger-corrupt" for f in findings)
    else:
        assert "event 1: its stored text is not valid UTF-8" in audit.stderr
    assert "\ufffd" not in audit.output
    ledger = initialized("ledger", "verify", "--json")
    assert ledger.exit_code == 3
    if ledger.stdout:
        report = json.loads(ledger.stdout)
        assert any(f["subject"] == "event 1" and "does not match its hash" in f["message"] for f in report["findings"])
    else:
        assert "event 1: its stored text is not valid UTF-8" in ledger.stderr
    assert "\x1b" not in ledger.output and "\ufffd" not in ledger.output
