"""Recovery of an object stored but not recorded (a crash, a stopped or locked database between
the store's put and the ledger's append): the re-run records what the store confirms, for the
evidence and for its attachments, so later audits find nothing."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tests.conftest import Custody


def test_recovered_object_and_its_packet_list_audit_clean(initialized: Custody, clips: list[Path]) -> None:
    clip = clips[0]
    holder = sqlite3.connect(initialized.home / "custody.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        failed = initialized("ingest", str(clip), env={"CUSTODY_DB_TIMEOUT": "0.3"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert failed.exit_code == 5
    packets = list((initialized.home / "store" / "objects" / "packets").rglob("*"))
    assert [p for p in packets if p.is_file()], "the attachment was stored before the ledger failed"
    assert initialized.json("log") == []

    time.sleep(1.1)  # the re-run's retention date is a later second than the first run's
    rerun = initialized("ingest", str(clip), "--json")
    assert rerun.exit_code == 0, rerun.output
    [event] = [e for e in initialized.json("log") if e["action"] == "ingested"]
    assert event["details"]["recovered"] and "packets" in event["details"]["attachments"]
    for level in ("quick", "full"):
        audit = initialized("audit", "--level", level, "--json")
        report = json.loads(audit.stdout)
        assert audit.exit_code == 0, report["findings"]
        assert report["findings"] == []
    again = initialized("audit", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["findings"] == []
