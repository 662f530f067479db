"""Each recording's start is recorded from the best source it offers, with the source named, and
a retention category can count from it (``starts = "recorded"``).

Real ffmpeg-made clips: one with a container creation time, one without it but with a vendor's
JSON sidecar, one with neither (its modification time is set), and clips whose container time is
not believable (a clock reset to 1970) or whose sidecar time has no offset.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from custody.media.recorded import recording_start, sidecar_start
from tests.conftest import Custody, require_tool

pytestmark = pytest.mark.integration


def clip(path: Path, creation_time: str | None, seconds: int = 2) -> Path:
    """A real H.264/AAC MP4 (its tone from its name, so no two are the same bytes); with
    ``creation_time`` in its container, or with none at all."""
    metadata = ["-metadata", f"creation_time={creation_time}"] if creation_time else []
    subprocess.run(
        [require_tool("ffmpeg"), "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency={200 + 10 * (ord(path.name[0]) - 64)}:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         *metadata, str(path)],
        check=True,
    )
    return path


def _ingested(custody: Custody, path: Path) -> dict[str, Any]:
    result = custody("ingest", "--json", str(path))
    assert result.exit_code == 0, result.output
    blake3 = json.loads(result.stdout)[0]["blake3"]
    events = [e for e in custody.json("log") if e["action"] == "ingested" and e["subject"].get("evidence") == blake3]
    assert len(events) == 1
    return dict(events[0]["details"])


MTIME = datetime(2026, 10, 30, 7, 45, 12, tzinfo=timezone.utc)


def _before(end: datetime, duration_us: int) -> str:
    """RFC 3339 (milliseconds when there are any) of ``end`` less a duration."""
    start = end - timedelta(microseconds=duration_us)
    return start.strftime("%Y-%m-%dT%H:%M:%S") + (f".{start.microsecond // 1000:03d}" if start.microsecond // 1000 else "") + "Z"


def test_each_source_is_named(initialized: Custody, tmp_path: Path) -> None:
    container = clip(tmp_path / "A-container.mp4", "2026-11-01T14:00:00Z")  # MP4 keeps whole seconds
    details = _ingested(initialized, container)
    assert details["recorded"]["start"] == "2026-11-01T14:00:00Z"
    assert details["recorded"]["source"] == "container"
    assert details["recorded"]["duration_us"] == details["media"]["duration_us"] > 1_900_000

    sidecar = clip(tmp_path / "B-sidecar.mp4", None)
    (tmp_path / "B-sidecar.json").write_text(json.dumps(
        {"device": {"serial": "SN-9"}, "Recording": {"Officer": "10231", "StartTime": "2026-11-01T08:00:05-06:00"}}))
    os.utime(sidecar, (MTIME.timestamp(), MTIME.timestamp()))
    details = _ingested(initialized, sidecar)
    assert "creation_time" not in details["media"]
    assert details["recorded"] == {"start": "2026-11-01T14:00:05Z", "source": "sidecar",
                                   "from": "B-sidecar.json: StartTime",
                                   "duration_us": details["media"]["duration_us"]}

    bare = clip(tmp_path / "C-bare.mp4", None)
    os.utime(bare, (MTIME.timestamp(), MTIME.timestamp()))
    details = _ingested(initialized, bare)
    assert details["recorded"]["source"] == "mtime" and details["source"]["mtime"] == "2026-10-30T07:45:12Z"
    assert details["recorded"]["start"] == _before(MTIME, details["media"]["duration_us"])  # last written at the end
    assert details["recorded"]["from"].endswith("less the recording's duration")

    shown = initialized("show", str(sidecar))
    line = next(l for l in shown.stdout.splitlines() if l.startswith("recorded:"))
    assert "2026-11-01T14:00:05Z (from sidecar: B-sidecar.json: StartTime)" in line


def test_unbelievable_times_are_rejected_with_reasons(initialized: Custody, tmp_path: Path) -> None:
    reset = clip(tmp_path / "D-reset.mp4", "1970-01-01T00:00:07Z")
    (tmp_path / "D-reset.xml").write_text(
        '<?xml version="1.0"?><Clip xmlns="urn:vendor"><Meta RecordingStart="2026-11-01 14:00:00"/></Clip>')
    os.utime(reset, (MTIME.timestamp(), MTIME.timestamp()))
    details = _ingested(initialized, reset)
    recorded = details["recorded"]
    assert recorded["source"] == "mtime" and recorded["start"] == _before(MTIME, details["media"]["duration_us"])
    reasons = {r["source"]: r["reason"] for r in recorded["rejected"]}
    assert "camera clock reset" in reasons["container"]
    assert "no time zone offset" in reasons["sidecar"]


def test_sidecar_reading_is_bounded_and_refuses_entities(tmp_path: Path) -> None:
    bomb = tmp_path / "E.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r><StartTime>&a;</StartTime></r>')
    assert sidecar_start(str(bomb)) == "an XML document type or entity declaration; not read"
    wide = tmp_path / "E16.xml"
    wide.write_bytes(bomb.read_text().replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"))
    assert sidecar_start(str(wide)) == "not UTF-8 XML; not read"  # its declarations would hide from a byte search
    big = tmp_path / "F.json"
    big.write_text(json.dumps({"pad": "x" * (1 << 20), "StartTime": "2026-11-01T14:00:00Z"}))
    assert "larger than" in str(sidecar_start(str(big)))
    deep = tmp_path / "G.json"
    nested: Any = {"StartTime": "2026-11-01T14:00:00Z"}
    for _ in range(20):
        nested = {"n": nested}
    deep.write_text(json.dumps(nested))
    assert sidecar_start(str(deep)) == "no start-time field"
    future = recording_start(str(tmp_path / "none.mp4"), {"creation_time": "2099-01-01T00:00:00Z"}, MTIME)
    assert future["source"] == "mtime" and "after the time of ingest" in future["rejected"][0]["reason"]


def _until(details: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(details["retention"]["until"].replace("Z", "+00:00"))


def test_retention_counts_from_the_recording(initialized: Custody, tmp_path: Path) -> None:
    (initialized.home / "config.toml").write_text(
        '[retention.categories.unflagged]\ndays = 90\nstarts = "recorded"\n\n'
        '[retention.categories.investigation]\ndays = 365\nstarts = "recorded"\nafter = "review"\n')
    now = datetime.now(timezone.utc)
    recorded = (now - timedelta(days=30)).replace(microsecond=0)
    recent = clip(tmp_path / "H-recent.mp4", recorded.strftime("%Y-%m-%dT%H:%M:%SZ"))
    details = _ingested(initialized, recent)
    assert details["recorded"]["source"] == "container"
    assert abs(_until(details) - (recorded + timedelta(days=90))) <= timedelta(seconds=2)
    assert _until(details) < now + timedelta(days=61)  # counted from ingest it would be 90 days ahead
    shown = initialized.json("show", str(recent))
    store_until = datetime.fromisoformat(shown["retention"]["until"].replace("Z", "+00:00"))
    assert abs(store_until - (recorded + timedelta(days=90))) <= timedelta(seconds=2)  # the store's own lock
    assert shown["recorded_retention"]["recorded_at"] == recorded.strftime("%Y-%m-%dT%H:%M:%SZ")

    old = clip(tmp_path / "I-old.mp4", (now - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ"), seconds=1)
    details = _ingested(initialized, old)
    assert now + timedelta(hours=23) < _until(details) < now + timedelta(days=1, minutes=5)

    changed = initialized.json("retention", "set", str(recent), "--category", "investigation", "--reason", "IA case 26-114")
    until = datetime.fromisoformat(changed[0]["until"].replace("Z", "+00:00"))
    assert abs(until - (recorded + timedelta(days=365))) <= timedelta(seconds=2)

    (initialized.home / "config.toml").write_text('[retention.categories.unflagged]\ndays = 90\nstarts = "camera"\n')
    refused = initialized("retention", "categories")
    assert refused.exit_code == 5 and "starts must be one of ingest, recorded, flagging" in refused.stderr


def test_a_vendor_manifest_declares_the_start(initialized: Custody, tmp_path: Path) -> None:
    """``ingest --expect audit.csv`` with a start column: the declared start is the recording's
    when the file has no creation time of its own, and is named with its manifest line; one
    without an offset is rejected (and the next source used), never guessed."""
    import hashlib

    export = tmp_path / "export"
    export.mkdir()
    declared = clip(export / "J-declared.mp4", None)
    naive = clip(export / "K-naive.mp4", None)
    own = clip(export / "L-own.mp4", "2026-11-01T13:59:00Z")
    for path in (declared, naive):
        os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    rows = [("J-declared.mp4", "2026-11-01T09:10:11-05:00"), ("K-naive.mp4", "2026-11-01 09:10:11"),
            ("L-own.mp4", "2026-11-01T09:10:11-05:00")]
    (tmp_path / "audit.csv").write_text("File,SHA256,Recorded At\n" + "".join(
        f"{name},{hashlib.sha256((export / name).read_bytes()).hexdigest()},{start}\n" for name, start in rows))
    result = initialized("ingest", "--json", str(export), "--expect", str(tmp_path / "audit.csv"),
                         "--expect-root", str(export))
    assert result.exit_code == 0, result.output
    by_name = {Path(r["path"]).name: r["blake3"] for r in json.loads(result.stdout)}
    events = {e["subject"]["evidence"]: e["details"] for e in initialized.json("log") if e["action"] == "ingested"}
    recorded = events[by_name["J-declared.mp4"]]["recorded"]
    assert (recorded["start"], recorded["source"], recorded["from"]) == ("2026-11-01T14:10:11Z", "manifest", "audit.csv line 2: start")
    recorded = events[by_name["K-naive.mp4"]]["recorded"]
    assert recorded["source"] == "mtime"
    assert recorded["rejected"][0]["source"] == "manifest" and "no time zone offset" in recorded["rejected"][0]["reason"]
    recorded = events[by_name["L-own.mp4"]]["recorded"]
    assert (recorded["start"], recorded["source"]) == ("2026-11-01T13:59:00Z", "container")  # the camera's own time first
