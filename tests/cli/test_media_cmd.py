"""Media through the command line: ingest records probe results and packet lists, `clip
verify`, `media sheet`, `derive` + `show`, and what happens without ffmpeg/ffprobe."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

import pytest

from custody.media.listing import packet_hashes
from custody.media.packets import PacketList
from tests.conftest import Custody
from tests.integration.test_media import KINDS, ffmpeg, make_video


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("media")
    made = {"original": make_video(directory / "BWC-0001.mp4", KINDS[0]),
            "hevc": make_video(directory / "BWC-0002.mov", KINDS[3])}
    original = str(made["original"])
    data = made["original"].read_bytes()
    made["truncated"] = directory / "BWC-0003.mp4"
    made["truncated"].write_bytes(data[: len(data) // 2])
    made["sidecar"] = directory / "BWC-0001.json"
    made["sidecar"].write_text(json.dumps({"device": "BWC-4", "serial": "SN-0001"}))
    for name, args in {
        "copy": ["-ss", "1", "-i", original, "-t", "1", "-map", "0", "-c", "copy"],
        "reencoded": ["-ss", "1", "-i", original, "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        "first": ["-i", original, "-t", "1", "-map", "0", "-c", "copy"],
        "last": ["-ss", "2", "-i", original, "-map", "0", "-c", "copy"],
        "redacted": ["-i", original, "-vf", "boxblur=8", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy"],
    }.items():
        made[name] = directory / f"{name}.mp4"
        ffmpeg(*args, str(made[name]))
    segments = directory / "segments.txt"
    segments.write_text(f"file '{made['first']}'\nfile '{made['last']}'\n")
    made["splice"] = directory / "splice.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(segments), "-c", "copy", str(made["splice"]))
    return made


def ingest(custody: Custody, *paths: Path, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = custody("ingest", "--json", *map(str, paths), env=env)
    assert result.exit_code == 0, result.output
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def ingest_events(custody: Custody) -> dict[str, dict[str, Any]]:
    return {e["details"]["source"]["name"]: e for e in custody.json("log") if e["action"] == "ingested"}


def test_ingest_records_probe_results_and_a_retained_packet_list(initialized: Custody, media: dict[str, Path]) -> None:
    records = ingest(initialized, media["original"], media["hevc"])
    events = ingest_events(initialized)
    for path, record in zip((media["original"], media["hevc"]), records):
        details = events[path.name]["details"]
        assert details["media"]["kind"] == "video"
        assert details["media"]["device"]["model"] == "BWC-4"
        assert details["media"]["gps"]["latitude"] == "41.8781"
        packets = details["attachments"]["packets"]
        assert packets["key"] == f"packets/{record['blake3']}"
        stored = initialized.home / "store" / "objects" / "packets" / record["blake3"]
        data = stored.read_bytes()
        assert hashlib.sha256(data).hexdigest() == packets["sha256"] and len(data) == packets["size"]
        # made in process (PyAV): ffprobe's packet lines, flags as the newer libavformat prints them
        ours, theirs = PacketList.parse(data), PacketList.parse(packet_hashes(path))
        assert ours.tool.startswith("PyAV ") and ours.streams == theirs.streams
        assert [(p.stream, p.dts, p.pts, p.duration, p.size, p.flags[:2], p.sha256) for p in ours.packets] == \
            [(p.stream, p.dts, p.pts, p.duration, p.size, p.flags[:2], p.sha256) for p in theirs.packets]
        assert not stat.S_IMODE(stored.stat().st_mode) & 0o222
    hevc = events[media["hevc"].name]["details"]["media"]
    assert [(s["codec"], s.get("frame_rate")) for s in hevc["streams"]] == [("hevc", "25/1"), ("aac", None)]
    assert "warning" not in records[0]


def test_a_truncated_video_is_preserved_with_the_probe_error_and_a_sidecar_without_media(
    initialized: Custody, media: dict[str, Path]
) -> None:
    result = initialized("ingest", "--json", str(media["truncated"]), str(media["sidecar"]))
    assert result.exit_code == 0, result.output
    truncated, sidecar = json.loads(result.stdout)
    assert truncated["status"] == sidecar["status"] == "recorded"
    assert "moov atom not found" in truncated["warning"] and "truncated or corrupt" in truncated["warning"]
    assert "warning" not in sidecar
    assert "moov atom not found" in result.stderr
    events = ingest_events(initialized)
    damaged = events[media["truncated"].name]["details"]
    assert damaged["media"]["kind"] == "unreadable-media"
    assert "moov atom not found" in damaged["media"]["probe_error"]
    assert "attachments" not in damaged
    other = events[media["sidecar"].name]["details"]
    assert other["media"]["kind"] == "not-media"
    assert not {"container", "streams", "probe_error"} & set(other["media"])
    assert "attachments" not in other
    stored = initialized.home / "store" / "objects" / "evidence" / truncated["blake3"]
    assert stored.read_bytes() == media["truncated"].read_bytes()


def test_clip_verify_a_stream_copy_cut_is_derived_with_its_range(initialized: Custody, media: dict[str, Path]) -> None:
    [record] = ingest(initialized, media["original"])
    result = initialized("clip", "verify", str(media["copy"]), "--against", record["blake3"][:12], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["derived"] is True and report["findings"] == []
    assert report["original"] == record["blake3"]
    assert report["range"] == {"start": "00:00:01.000", "end": "00:00:02.000", "start_us": 1_000_000, "end_us": 2_000_000}
    assert report["streams"][0]["original_packets"] == [25, 49]
    human = initialized("clip", "verify", str(media["copy"]), "--against", str(media["original"]))
    assert human.exit_code == 0
    assert "derived bit for bit" in human.stdout and "00:00:01.000-00:00:02.000" in human.stdout
    verified = [e for e in initialized.json("log", record["blake3"][:12]) if e["action"] == "verified"]
    assert len(verified) == 2 and verified[0]["details"]["ok"] is True
    assert verified[0]["details"]["clip"]["sha256"] == hashlib.sha256(media["copy"].read_bytes()).hexdigest()
    assert verified[0]["details"]["range"]["start"] == "00:00:01.000"


def test_clip_verify_a_re_encoded_cut_exits_3_not_derived(initialized: Custody, media: dict[str, Path]) -> None:
    ingest(initialized, media["original"])
    result = initialized("clip", "verify", str(media["reencoded"]), "--against", str(media["original"]))
    assert result.exit_code == 3
    assert "not derived bit for bit" in result.stderr
    assert result.stderr.count("not-derived: clip stream") == 2
    verified = [e for e in initialized.json("log") if e["action"] == "verified"]
    assert verified[-1]["details"]["ok"] is False


def test_clip_verify_a_splice_exits_3_naming_the_gap(initialized: Custody, media: dict[str, Path]) -> None:
    ingest(initialized, media["original"])
    result = initialized("clip", "verify", str(media["splice"]), "--against", str(media["original"]), "--json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["derived"] is False
    video_gap = next(f for f in report["findings"] if f["kind"] == "gap" and f["clip_stream"] == 0)
    assert video_gap["original_packets"] == [25, 49]
    assert (video_gap["start"], video_gap["end"]) == ("00:00:01.000", "00:00:02.000")
    human = initialized("clip", "verify", str(media["splice"]), "--against", str(media["original"]))
    assert human.exit_code == 3
    assert "gap: clip stream 0: 25 packet(s) of the original are missing" in human.stderr
    assert "00:00:01.000-00:00:02.000" in human.stderr


def test_clip_verify_refuses_an_altered_packet_list(initialized: Custody, media: dict[str, Path]) -> None:
    [record] = ingest(initialized, media["original"])
    stored = initialized.home / "store" / "objects" / "packets" / record["blake3"]
    os.chmod(stored, 0o644)
    stored.write_bytes(stored.read_bytes().replace(b"\n0,", b"\n1,", 1))
    result = initialized("clip", "verify", str(media["copy"]), "--against", record["blake3"][:12])
    assert result.exit_code == 3
    assert "no longer has the SHA-256 recorded" in result.stderr


def test_clip_verify_against_something_not_preserved_is_bad_input(initialized: Custody, media: dict[str, Path]) -> None:
    result = initialized("clip", "verify", str(media["copy"]), "--against", str(media["hevc"]))
    assert result.exit_code == 2
    assert "not a preserved object" in result.stderr


def test_media_sheet_writes_a_png_of_the_stored_video(initialized: Custody, media: dict[str, Path], tmp_path: Path) -> None:
    [record] = ingest(initialized, media["original"])
    out = tmp_path / "sheet.png"
    result = initialized("media", "sheet", record["blake3"][:10], "--out", str(out), "--tiles", "8", "--width", "200",
                         "--json")
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (8 + 4 * 200 + 3 * 4, 8 + 2 * 150 + 4)
    made = json.loads(result.stdout)
    assert (made["width"], made["height"]) == (width, height)
    assert made["tiles"][0] == "00:00:00.187" and len(made["tiles"]) == 8
    viewed = [e for e in initialized.json("log", record["blake3"][:12]) if e["action"] == "viewed"]
    assert viewed[0]["details"]["output"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_media_sheet_of_a_non_video_exits_2(initialized: Custody, media: dict[str, Path], tmp_path: Path) -> None:
    [record] = ingest(initialized, media["sidecar"])
    result = initialized("media", "sheet", record["blake3"][:10], "--out", str(tmp_path / "sheet.png"))
    assert result.exit_code == 2
    assert f"preserved object {record['blake3']}: cannot be read as audio or video" in result.stderr
    assert "store/objects" not in result.stderr
    assert not (tmp_path / "sheet.png").exists()


def test_derive_records_parent_tool_and_params_and_show_lists_both_ways(
    initialized: Custody, media: dict[str, Path]
) -> None:
    [parent] = ingest(initialized, media["original"])
    result = initialized("derive", str(media["redacted"]), "--from", parent["blake3"][:10], "--tool", "ffmpeg 5.1.9",
                         "--params", "-vf boxblur=8 -c:a copy", "--json")
    assert result.exit_code == 0, result.output
    child = json.loads(result.stdout)
    assert child["status"] == "recorded"
    assert child["derived_from"]["parent"] == parent["blake3"]
    event = ingest_events(initialized)[media["redacted"].name]
    assert event["details"]["derived_from"] == {
        "parent": parent["blake3"], "parent_sha256": parent["sha256"], "tool": "ffmpeg 5.1.9",
        "params": "-vf boxblur=8 -c:a copy",
    }
    assert event["details"]["attachments"]["packets"]["key"] == f"packets/{child['blake3']}"
    shown_parent = initialized.json("show", parent["blake3"][:10])
    assert [d["blake3"] for d in shown_parent["derivatives"]] == [child["blake3"]]
    assert shown_parent["derivatives"][0]["tool"] == "ffmpeg 5.1.9" and shown_parent["parent"] is None
    shown_child = initialized.json("show", str(media["redacted"]))
    assert shown_child["parent"]["parent"] == parent["blake3"]
    assert shown_child["parent"]["params"] == "-vf boxblur=8 -c:a copy" and shown_child["derivatives"] == []
    human = initialized("show", parent["blake3"][:10])
    assert f"  {child['blake3']}  event {event['seq']}" in human.stdout
    assert f"parent:       {parent['blake3']} by ffmpeg 5.1.9" in initialized("show", child["blake3"][:10]).stdout
    clip = initialized("clip", "verify", str(media["redacted"]), "--against", parent["blake3"][:10])
    assert clip.exit_code == 3


def test_derive_of_bytes_already_preserved_exits_2_and_records_no_derivation(
    initialized: Custody, media: dict[str, Path]
) -> None:
    [parent] = ingest(initialized, media["original"])
    ingest(initialized, media["copy"])
    result = initialized("derive", str(media["copy"]), "--from", parent["blake3"][:10], "--tool", "t", "--params", "p")
    assert result.exit_code == 2
    assert "already preserved" in result.stderr
    assert initialized.json("show", parent["blake3"][:10])["derivatives"] == []


def test_without_ffprobe_media_commands_exit_5_and_ingest_still_preserves(
    initialized: Custody, media: dict[str, Path], tmp_path: Path
) -> None:
    missing = {"CUSTODY_FFPROBE": str(tmp_path / "no-ffprobe"), "CUSTODY_FFMPEG": str(tmp_path / "no-ffmpeg")}
    records = ingest(initialized, media["original"], env=missing)
    assert records[0]["status"] == "recorded" and "not probed" in records[0]["warning"]
    details = ingest_events(initialized)[media["original"].name]["details"]
    assert details["media"]["probed"] is False and "apt-get install ffmpeg" in details["media"]["reason"]
    assert "attachments" not in details
    sheet = initialized("media", "sheet", records[0]["blake3"][:10], "--out", str(tmp_path / "s.png"), env=missing)
    assert sheet.exit_code == 5
    assert "apt-get install ffmpeg" in sheet.stderr
    clip = initialized("clip", "verify", str(media["copy"]), "--against", records[0]["blake3"][:10], env=missing)
    assert clip.exit_code == 5 and "apt-get install ffmpeg" in clip.stderr


def test_without_ffmpeg_on_path_ingest_still_probes_in_process_unless_told_to_use_ffprobe(
    initialized: Custody, media: dict[str, Path], tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    records = ingest(initialized, media["hevc"], env={"PATH": str(empty)})
    assert records[0]["status"] == "recorded" and "warning" not in records[0]
    details = ingest_events(initialized)[media["hevc"].name]["details"]
    assert details["media"]["probed"] is True and details["media"]["tool"].startswith("PyAV ")
    assert set(details["attachments"]) == {"packets"}
    records = ingest(initialized, media["original"], env={"PATH": str(empty), "CUSTODY_DEMUXER": "ffprobe"})
    assert records[0]["status"] == "recorded"
    details = ingest_events(initialized)[media["original"].name]["details"]
    assert details["media"]["probed"] is False and "ffprobe" in details["media"]["reason"]


def test_clip_verify_without_a_recorded_packet_list_makes_one_from_the_stored_original(
    initialized: Custody, media: dict[str, Path], tmp_path: Path
) -> None:
    missing = {"CUSTODY_FFPROBE": str(tmp_path / "no-ffprobe")}
    [record] = ingest(initialized, media["original"], env=missing)
    result = initialized("clip", "verify", str(media["copy"]), "--against", record["blake3"][:10], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["derived"] is True and report["packet_list"].startswith("made now from the stored original")
