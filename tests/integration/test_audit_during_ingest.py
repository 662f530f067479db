"""An audit while an ingest runs: objects being ingested are in flight, never ``unrecorded``.

A real ``custody ingest`` process is held between storing a clip and recording it: its
``ffprobe`` is a wrapper that waits for a go-file before running the real program, and ingest
records a file only after its media probe, so the clip sits in the store without an event for
as long as the test likes. A true orphan (an object put through the store with no event, two
hours before) sits next to it. The audit must report the orphan, not the clip, and record only
the orphan in the ledger; once the ingest ends, the clip is an ordinary recorded object.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import blake3
import pytest

from custody.audit.recorded import load_ledger_state
from custody.audit.shards import Shard
from custody.audit.unrecorded import list_unrecorded
from custody.ledger.database import Ledger
from storage.base import Retention
from storage.local import LocalStore
from tests.conftest import Custody, make_clip, require_tool

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _audit(custody: Custody, *args: str) -> tuple[int, dict[str, Any]]:
    result = custody("audit", *args, "--json")
    assert result.exit_code in (0, 3), result.output
    return result.exit_code, json.loads(result.stdout)


def _audited(custody: Custody) -> list[dict[str, Any]]:
    result = custody("log", "--json")
    assert result.exit_code == 0, result.output
    return [e for e in json.loads(result.stdout) if e["action"] == "audited"]


def _put_orphan(home: Path, age: timedelta) -> str:
    """An object put through the local store's own API, with no event, ``age`` ago by the
    store's clock (its lock record carries the time)."""
    store = LocalStore(home / "store")
    then = datetime.now(timezone.utc) - age
    store.now = lambda: then  # type: ignore[method-assign]
    data = os.urandom(5000)
    key = f"evidence/{blake3.blake3(data).hexdigest()}"
    store.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
              retention=Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(days=1)),
              metadata={"blake3": blake3.blake3(data).hexdigest()})
    return key


class HeldIngest:
    """``custody ingest`` of one clip in a subprocess, held before its event by its ffprobe."""

    def __init__(self, custody: Custody, clip: Path, tmp_path: Path) -> None:
        self.go = tmp_path / "go"
        wrapper = tmp_path / "ffprobe-held"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'while [ ! -e "{self.go}" ]; do sleep 0.05; done\n'
            f'exec "{require_tool("ffprobe")}" "$@"\n'
        )
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
        env.update(custody.env, PYTHONPATH=str(REPO), CUSTODY_FFPROBE=str(wrapper))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "ingest", "--json", str(clip)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def wait_stored(self, data: Path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not data.exists():
            if self.process.poll() is not None:
                pytest.fail(f"ingest ended early: {self.process.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{data} was not stored within {timeout} s")
            time.sleep(0.05)

    def release(self) -> dict[str, Any]:
        self.go.touch()
        out, err = self.process.communicate(timeout=180)
        assert self.process.returncode == 0, err
        [result] = json.loads(out)
        return dict(result)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def held(initialized: Custody, tmp_path: Path) -> Iterator[tuple[HeldIngest, str]]:
    clip = make_clip(tmp_path / "BWC-0412.mp4")
    digest = blake3.blake3(clip.read_bytes()).hexdigest()
    ingest = HeldIngest(initialized, clip, tmp_path)
    try:
        ingest.wait_stored(initialized.home / "store" / "objects" / "evidence" / digest)
        yield ingest, digest
    finally:
        ingest.stop()


def test_an_object_being_ingested_is_in_flight_while_an_older_orphan_is_unrecorded(
    initialized: Custody, held: tuple[HeldIngest, str]
) -> None:
    ingest, digest = held
    clip_key = f"evidence/{digest}"
    orphan_key = _put_orphan(initialized.home, timedelta(hours=2))

    code, report = _audit(initialized)
    assert code == 3
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [("unrecorded", orphan_key)]
    assert report["findings"][0]["stored_at"] < report["started"]
    assert [o["key"] for o in report["in_flight"]["objects"]] == [clip_key]
    assert report["in_flight"]["objects"][0]["recorded_during_audit"] is False
    assert report["in_flight"]["grace_seconds"] == 3600
    assert report["counts"]["unrecorded"] == 1 and report["counts"]["in_flight"] == 1
    # What the ledger records is exactly that: one finding, the orphan; the clip in flight.
    event = _audited(initialized)[-1]["details"]
    assert [f["subject"] for f in event["findings"]] == [orphan_key]
    assert [o["key"] for o in event["in_flight"]["objects"]] == [clip_key]
    assert clip_key not in json.dumps(event["findings"])

    human = initialized("audit")
    assert human.exit_code == 3
    assert f"unrecorded: {orphan_key}:" in human.stdout
    assert f"in flight: {clip_key} (stored " in human.stdout
    assert f"unrecorded: {clip_key}" not in human.stdout

    result = ingest.release()
    assert (result["status"], result["blake3"]) == ("recorded", digest)
    code, report = _audit(initialized)
    assert code == 3
    assert [(f["kind"], f["subject"]) for f in report["findings"]] == [("unrecorded", orphan_key)]
    assert report["in_flight"]["objects"] == []
    assert [o["blake3"] for o in report["objects"]] == [digest]
    assert initialized("ledger", "verify").exit_code == 0


def test_with_no_grace_an_object_recorded_while_the_audit_ran_is_rechecked_not_reported(
    initialized: Custody, held: tuple[HeldIngest, str]
) -> None:
    """The last look before recording: an object listed as unrecorded (grace 0, so its age
    does not save it) that the ingest records before the audit appends its event."""
    ingest, digest = held
    orphan_key = _put_orphan(initialized.home, timedelta(hours=2))
    ledger = Ledger(f"sqlite:///{initialized.home / 'custody.db'}")
    through_seq, _ = ledger.head()
    state = load_ledger_state(ledger, through_seq, {})
    listing = list_unrecorded(LocalStore(initialized.home / "store"), state, Shard(), ledger, timedelta(0))
    assert sorted(f.subject for f in listing.findings) == sorted([orphan_key, f"evidence/{digest}"])

    ingest.release()
    listing.recheck(ledger, through_seq)
    assert [f.subject for f in listing.findings] == [orphan_key]
    assert [(o.key, o.recorded_during_audit) for o in listing.in_flight] == [(f"evidence/{digest}", True)]


def test_an_orphan_younger_than_the_grace_is_in_flight_and_found_once_older(initialized: Custody) -> None:
    young = _put_orphan(initialized.home, timedelta(minutes=10))
    code, report = _audit(initialized)
    assert code == 0 and report["findings"] == []
    assert [o["key"] for o in report["in_flight"]["objects"]] == [young]
    code, report = _audit(initialized, "--in-flight-grace", "5m")
    assert code == 3 and [(f["kind"], f["subject"]) for f in report["findings"]] == [("unrecorded", young)]
    assert report["in_flight"] == {"grace_seconds": 300, "objects": []}


@pytest.mark.parametrize("value", ["-1h", "1w", "soon", ""])
def test_a_bad_in_flight_grace_is_a_usage_error(initialized: Custody, value: str) -> None:
    result = initialized("audit", "--in-flight-grace", value)
    assert result.exit_code == 2
    assert "--in-flight-grace" in result.output and "90s, 30m, 2h or 1d" in result.output
    assert _audited(initialized) == []
