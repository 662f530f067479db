"""In-process demuxing (custody.media.inprocess, PyAV) gives the packet lines stock ffprobe gives,
on every container and codec the tests make, and the same probe fields; what it cannot read
cleanly (truncated, rotated, not media) goes to ffprobe, with ffprobe's words; ingest then starts
no ffprobe for a good clip."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from custody.media.inprocess import probe_and_list as in_process
from custody.media.inspection import inspect_media
from custody.media.listing import probe_and_list
from custody.media.packets import PacketList
from custody.media.tools import MediaTools
from tests.conftest import Custody, make_clip, require_tool
from tests.integration.test_media import KINDS, ffmpeg, make_video, stock_recipe

pytest.importorskip("av")

IN_PROCESS = MediaTools(in_process=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every container and codec the other tests make: H.264 and HEVC in MP4 and MOV (with AAC,
    device and GPS tags), the same remuxed to MPEG-TS and Matroska, conftest's clip, stream-copied
    excerpts (cut, spliced with and without the concat demuxer's bitstream conversion), a
    re-encode, a video without audio, AAC alone in M4A, and a clip with hostile tags."""
    require_tool("ffprobe")
    directory = tmp_path_factory.mktemp("inprocess")
    files = {kind.name: make_video(directory / f"BWC-{kind.name}", kind) for kind in KINDS}
    original = str(files["h264.mp4"])
    for name, args in {
        "remux.ts": ["-i", original, "-map", "0", "-c", "copy"],
        "remux.mkv": ["-i", str(files["hevc.mov"]), "-map", "0", "-c", "copy"],
        "first.mp4": ["-i", original, "-t", "1", "-map", "0", "-c", "copy"],
        "last.mp4": ["-ss", "2", "-i", original, "-map", "0", "-c", "copy"],
        "reencoded.mp4": ["-ss", "1", "-i", original, "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
        "video-only.mp4": ["-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=10", "-c:v", "libx264"],
        "audio.m4a": ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2", "-c:a", "aac"],
        "tags.mp4": ["-i", original, "-c", "copy", "-metadata", "title=x|y=z\npacket|size=1\n\"}]}",
                     "-movflags", "+use_metadata_tags"],
    }.items():
        ffmpeg(*args, str(directory / name))
        files[name] = directory / name
    segments = directory / "segments.txt"
    segments.write_text(f"file '{files['first.mp4']}'\nfile '{files['last.mp4']}'\n")
    ffmpeg("-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(segments), "-c", "copy", str(directory / "splice.mp4"))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(segments), "-c", "copy", str(directory / "splice-annexb.mp4"))
    files["splice.mp4"] = directory / "splice.mp4"
    files["splice-annexb.mp4"] = directory / "splice-annexb.mp4"
    files["conftest-clip.mp4"] = make_clip(directory / "conftest-clip.mp4")
    return files


NAMES = [k.name for k in KINDS] + ["remux.ts", "remux.mkv", "first.mp4", "last.mp4", "reencoded.mp4", "video-only.mp4",
                                   "audio.m4a", "tags.mp4", "splice.mp4", "splice-annexb.mp4", "conftest-clip.mp4"]


TRIMMED_BY_AN_EDIT_LIST = {"first.mp4", "splice.mp4", "splice-annexb.mp4"}


def _two_flag_characters(line: str) -> str:
    """ffprobe 5 prints two flag characters (K, D), later versions three (K, D, C)."""
    cells = line.split(",")
    assert len(cells[5]) == 3 and cells[5][2] in "_C", line
    cells[5] = cells[5][:2]
    return ",".join(cells)


@pytest.mark.parametrize("name", NAMES)
def test_packet_lines_are_those_of_stock_ffprobe(made: dict[str, Path], name: str, tmp_path: Path) -> None:
    found = in_process(str(made[name]))
    assert found is not None, f"{name} was not demuxed in process"
    details, listing = found
    ours = [line for line in listing.render().decode().splitlines() if not line.startswith("#")]
    theirs = stock_recipe(made[name], tmp_path)
    width = len(theirs[0].split(",")[5])
    assert len(ours) == len(theirs) >= 10
    ours = [_two_flag_characters(line) if width == 2 else line for line in ours]
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if name in TRIMMED_BY_AN_EDIT_LIST:
        # the one known difference between libavformat versions: where an MP4 edit list ends
        # inside a stream's last packet, FFmpeg 5 shortens that packet's duration, later ones
        # do not. Same packet, same bytes, same hash; only that one duration cell differs.
        [i] = differ
        a, b = ours[i].split(","), theirs[i].split(",")
        assert a[:3] + a[4:] == b[:3] + b[4:] and int(a[3]) > int(b[3]) > 0
        assert not any(line.split(",")[0] == a[0] for line in theirs[i + 1:]), "only a stream's last packet"
    else:
        assert differ == []
    _, ffprobe_listing = probe_and_list(made[name])
    assert listing.streams == ffprobe_listing.streams and listing.start_time_us == ffprobe_listing.start_time_us
    assert listing.tool.startswith("PyAV ") and details["tool"] == listing.tool
    assert PacketList.parse(listing.render()).render() == listing.render()


# What libavformat 5 and later versions estimate or name differently: a codec's long name
# ("H.265 / HEVC ..." became "HEVC ..."), bit rates estimated from the streams, and a container
# duration that ends inside a packet shortened by an edit list (up to a millisecond).
VERSION_DEPENDENT = ("codec_long", "bit_rate")


@pytest.mark.parametrize("name", NAMES)
def test_probe_fields_are_those_of_ffprobe(made: dict[str, Path], name: str) -> None:
    """Every field ``probe`` records is the same, but the tool, the MP4 tracks' ``vendor_id``
    tag (no longer exported after FFmpeg 5) and the few ``VERSION_DEPENDENT`` estimates."""
    found = in_process(str(made[name]))
    assert found is not None
    ours, theirs = found[0], probe_and_list(made[name])[0]
    assert ours.pop("tool").startswith("PyAV ") and theirs.pop("tool").startswith("ffprobe ")
    for stream in (*ours["streams"], *theirs["streams"]):
        stream.get("tags", {}).pop("vendor_id", None)
    for fields in (ours, theirs, *ours["streams"], *theirs["streams"]):
        for key in VERSION_DEPENDENT:
            fields.pop(key, None)
    assert abs(ours.pop("duration_us") - theirs.pop("duration_us")) <= (1000 if name in TRIMMED_BY_AN_EDIT_LIST else 0)
    assert ours == theirs
    assert [s["codec"] for s in ours["streams"]] and all(s["codec"] != "unknown" for s in ours["streams"])


def test_a_truncated_clip_goes_to_ffprobe_and_keeps_its_findings(made: dict[str, Path], tmp_path: Path) -> None:
    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(made["h264.mp4"]), "-c", "copy", "-movflags", "+faststart", str(faststart))
    for cut, name in ((0.5, "moov-first.mp4"), (0.3, "moov-last.mp4")):
        source = faststart if name == "moov-first.mp4" else made["h264.mp4"]
        data = source.read_bytes()
        broken = tmp_path / name
        broken.write_bytes(data[: int(len(data) * cut)])
        assert in_process(str(broken)) is None, name
        ours, theirs = inspect_media(str(broken), IN_PROCESS), inspect_media(str(broken), MediaTools())
        assert ours == theirs and ours.details.get("tool", "ffprobe").startswith("ffprobe"), name
        assert "finding" in ours.details, name


def test_a_rotated_clip_goes_to_ffprobe_which_reports_the_rotation(made: dict[str, Path], tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(made["h264.mp4"]), "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    assert in_process(str(rotated)) is None
    details = inspect_media(str(rotated), IN_PROCESS).details
    assert details["tool"].startswith("ffprobe ") and abs(details["streams"][0]["rotation"]) == 90
    assert in_process(str(made["h264.mp4"])) is not None  # the identity matrix stays in process


def test_files_that_are_not_media_get_ffprobes_verdict(tmp_path: Path) -> None:
    blob = tmp_path / "telemetry.bin"
    blob.write_bytes(bytes(range(256)) * 64)
    assert in_process(str(blob)) is None
    ours = inspect_media(str(blob), IN_PROCESS)
    assert ours == inspect_media(str(blob), MediaTools())
    assert ours.details["kind"] == "not-media" and "Invalid data" in ours.details["reason"]


def test_ingest_probes_good_clips_without_starting_ffprobe(initialized: Custody, clips: list[Path], tmp_path: Path) -> None:
    """With no CUSTODY_FFPROBE, ingest demuxes in process: a counting ffprobe first on PATH is
    never started for good clips, and each event has the probe and the packet list."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "runs.log"
    log.write_text("")
    wrapper = bin_dir / "ffprobe"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{require_tool("ffprobe")}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    result = initialized("ingest", "--json", *map(str, clips), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)] == ["recorded"] * len(clips)
    assert log.read_text() == ""
    events = [e for e in json.loads(initialized("log", "--json").stdout) if e["action"] == "ingested"]
    assert len(events) == len(clips)
    for event in events:
        media = event["details"]["media"]
        assert media["tool"].startswith("PyAV ") and media["device"]["make"] == "Test Cameras"
        assert [s["packets"] > 0 for s in media["streams"]] == [True, True]
        assert set(event["details"]["attachments"]) == {"packets"}
