"""custody.media against real videos made with ffmpeg: probe fields, packet lists (and their
stock re-creation), ingest inspection of good, truncated and non-video files, clip verification
of stream-copied, re-encoded, spliced and altered clips, and contact sheets."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.errors import ConfigError
from custody.media.clips import verify_clip
from custody.media.inspection import inspect_media, media_warning
from custody.media.listing import _listing, packet_hashes, probe_and_list
from custody.media.packets import PacketList
from custody.media.probe import probe
from custody.media.sheets import contact_sheet
from custody.media.tools import MediaTools, MediaToolsMissing
from tests.conftest import require_tool

TAGS = {
    "creation_time": "2026-11-01T14:00:00Z",
    "make": "Test Cameras",
    "model": "BWC-4",
    "location": "+41.8781-087.6298/",
}


@dataclass(frozen=True)
class Kind:
    codec: str
    container: str
    rate: str
    serial: str

    @property
    def name(self) -> str:
        return f"{self.codec}.{self.container}"


KINDS = [
    Kind("h264", "mp4", "25/1", "SN-0001"),
    Kind("hevc", "mp4", "30000/1001", "SN-0002"),
    Kind("h264", "mov", "30000/1001", "SN-0003"),
    Kind("hevc", "mov", "25/1", "SN-0004"),
]


def ffmpeg(*args: str) -> None:
    subprocess.run([require_tool("ffmpeg"), "-loglevel", "error", "-y", *args], check=True)


def make_video(path: Path, kind: Kind, seconds: int = 3) -> Path:
    """A body-camera-like clip: 320x240, a keyframe every second, AAC audio, device and GPS tags."""
    gop = "25" if kind.rate == "25/1" else "30"
    codec = ["-c:v", "libx264"] if kind.codec == "h264" else ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"]
    metadata = [arg for key, value in {**TAGS, "serial_number": kind.serial}.items() for arg in ("-metadata", f"{key}={value}")]
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={kind.rate}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        *codec, "-preset", "ultrafast", "-g", gop, "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        "-shortest", *metadata, "-movflags", "+use_metadata_tags", str(path),
    )
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_tool("ffprobe")
    directory = tmp_path_factory.mktemp("videos")
    made = {kind.name: make_video(directory / f"BWC-{kind.name}", kind) for kind in KINDS}
    original = made["h264.mp4"]
    truncated = directory / "truncated.mp4"
    data = original.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    made["truncated"] = truncated
    sidecar = directory / "BWC-0001.json"
    sidecar.write_text(json.dumps({"device": "BWC-4", "gps": [41.8781, -87.6298], "officer": "10231"}))
    made["sidecar"] = sidecar
    return made


@pytest.fixture(scope="module")
def clips(videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Excerpts of h264.mp4 (3 s, keyframes at 0, 1 and 2 s)."""
    directory = tmp_path_factory.mktemp("clips")
    original = str(videos["h264.mp4"])
    made = {name: directory / f"{name}.mp4" for name in ("copy", "reencoded", "first", "last", "splice", "splice-annexb")}
    ffmpeg("-ss", "1", "-i", original, "-t", "1", "-map", "0", "-c", "copy", str(made["copy"]))
    ffmpeg("-ss", "1", "-i", original, "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(made["reencoded"]))
    ffmpeg("-i", original, "-t", "1", "-map", "0", "-c", "copy", str(made["first"]))
    ffmpeg("-ss", "2", "-i", original, "-map", "0", "-c", "copy", str(made["last"]))
    listing = directory / "segments.txt"
    listing.write_text(f"file '{made['first']}'\nfile '{made['last']}'\n")
    ffmpeg("-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(listing), "-c", "copy", str(made["splice"]))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(made["splice-annexb"]))
    return made


def lines(packet_list: bytes) -> list[str]:
    return [line for line in packet_list.decode().splitlines() if not line.startswith("#")]


# --- probe -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_probe_reports_container_streams_and_tags_exactly(videos: dict[str, Path], kind: Kind) -> None:
    media = probe(videos[kind.name])
    assert media["probed"] is True and media["kind"] == "video"
    assert media["container"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert media["tool"].startswith("ffprobe ")
    assert 2_900_000 <= media["duration_us"] <= 3_100_000 and isinstance(media["duration_us"], int)
    assert isinstance(media["bit_rate"], int) and media["bit_rate"] > 0
    assert media["creation_time"] == "2026-11-01T14:00:00Z"
    assert media["device"] == {"make": "Test Cameras", "model": "BWC-4", "serial": kind.serial}
    assert media["gps"] == {"iso6709": "+41.8781-087.6298/", "latitude": "41.8781", "longitude": "-87.6298"}
    video, audio = media["streams"]
    assert (video["index"], video["type"], video["codec"]) == (0, "video", kind.codec)
    assert (video["width"], video["height"]) == (320, 240)
    assert video["frame_rate"] == kind.rate and video["avg_frame_rate"] == kind.rate
    assert video["codec_tag"] == ("avc1" if kind.codec == "h264" else "hvc1")
    assert (audio["index"], audio["type"], audio["codec"]) == (1, "audio", "aac")
    assert (audio["sample_rate"], audio["channels"], audio["channel_layout"]) == (48000, 1, "mono")
    assert isinstance(audio["bit_rate"], int)
    assert "frame_rate" not in audio


def test_probe_results_are_valid_canonical_event_values(videos: dict[str, Path]) -> None:
    from custody.ledger.canonical import canonical_bytes

    for kind in KINDS:
        media = probe(videos[kind.name])
        assert json.loads(canonical_bytes(media)) == media


# --- packet lists ----------------------------------------------------------------------------


def stock_recipe(path: Path, tmp_path: Path) -> list[str]:
    """The re-creation recipe of custody.media.packets' docstring, run as written there."""
    probe_json = tmp_path / "packets.json"
    with probe_json.open("wb") as out:
        subprocess.run(
            [require_tool("ffprobe"), "-v", "error", "-show_entries",
             "packet=stream_index,dts,pts,duration,size,flags,data_hash", "-show_data_hash", "sha256",
             "-of", "json", str(path)],
            stdout=out, check=True,
        )
    script = (
        "import json, sys\n"
        "for p in json.load(open(sys.argv[1]))[\"packets\"]:\n"
        "    print(*(p.get(k, \"N/A\") for k in (\"stream_index\", \"dts\", \"pts\", \"duration\", \"size\", \"flags\")),\n"
        "          p[\"data_hash\"].split(\":\")[1], sep=\",\")\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(probe_json)], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize("name", ["h264.mp4", "hevc.mov"])
def test_packet_list_is_recreated_by_the_documented_stock_ffprobe_recipe(
    videos: dict[str, Path], name: str, tmp_path: Path
) -> None:
    ours = packet_hashes(videos[name])
    assert ours.startswith(b"#custody-packets v1\n#hash: SHA256\n")
    assert lines(ours) == stock_recipe(videos[name], tmp_path)
    assert len(lines(ours)) > 75 + 100


def test_packet_hashes_are_those_of_ffmpeg_stream_copy_framehash(videos: dict[str, Path]) -> None:
    path = videos["hevc.mp4"]
    done = subprocess.run(
        [require_tool("ffmpeg"), "-v", "error", "-i", str(path), "-map", "0", "-c", "copy", "-copyinkf",
         "-f", "framehash", "-hash", "sha256", "-"],
        capture_output=True, text=True, check=True,
    )
    theirs: dict[int, list[tuple[int, str]]] = {}
    for line in done.stdout.splitlines():
        if not line.startswith("#"):
            cells = [c.strip() for c in line.split(",")]
            theirs.setdefault(int(cells[0]), []).append((int(cells[4]), cells[5]))
    listing = PacketList.parse(packet_hashes(path))
    ours = {s: [(p.size, p.sha256) for p in listing.of_stream(s)] for s in listing.streams}
    assert ours == theirs
    assert listing.streams[0].codec == "hevc" and listing.streams[1].codec == "aac"


def test_a_file_whose_packets_are_not_contiguous_falls_back_to_ffprobe_hashing(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    """MPEG-TS splits packets over 188-byte cells: positions cannot be hashed directly."""
    ts = tmp_path / "remux.ts"
    ffmpeg("-i", str(videos["h264.mp4"]), "-map", "0", "-c", "copy", str(ts))
    ours = packet_hashes(ts)
    assert lines(ours) == stock_recipe(ts, tmp_path)
    assert _listing(str(ts), MediaTools(), from_file=False)[0].render() == ours


def test_packet_list_renders_and_parses_back_identically(videos: dict[str, Path]) -> None:
    data = packet_hashes(videos["h264.mov"])
    parsed = PacketList.parse(data)
    assert parsed.render() == data
    assert parsed.streams[0].time_base.denominator > 1
    assert parsed.time_us(0, parsed.of_stream(0)[30].pts or 0) == 1_001_000


# --- ingest inspection ------------------------------------------------------------------------


def test_inspection_of_a_video_gives_probe_details_and_the_packet_list(videos: dict[str, Path]) -> None:
    inspection = inspect_media(str(videos["h264.mp4"]))
    assert inspection.details["kind"] == "video"
    assert [s["packets"] for s in inspection.details["streams"]] == [75, 142]
    assert inspection.attachments == {"packets": packet_hashes(videos["h264.mp4"])}


def test_a_truncated_video_is_a_probe_error_finding_without_packets(videos: dict[str, Path]) -> None:
    inspection = inspect_media(str(videos["truncated"]))
    details = inspection.details
    assert details["kind"] == "unreadable-media" and details["container_guess"] == "mp4/mov"
    assert "moov atom not found" in details["probe_error"]
    assert "truncated or corrupt" in details["finding"]
    assert inspection.attachments == {}


def test_a_sidecar_is_not_media_and_has_no_media_fields(videos: dict[str, Path], tmp_path: Path) -> None:
    missing = MediaTools(ffprobe=str(tmp_path / "no-ffprobe"))
    for tools in (MediaTools(), missing):
        inspection = inspect_media(str(videos["sidecar"]), tools)
        assert inspection.details["kind"] == "not-media"
        assert not {"container", "streams", "probe_error", "finding"} & set(inspection.details)
        assert inspection.attachments == {}
        assert media_warning(inspection.details) is None


def test_a_text_file_with_a_video_extension_is_not_a_damaged_video(tmp_path: Path) -> None:
    notes = tmp_path / "notes.ts"
    notes.write_text("export const officer = '10231';\n")
    inspection = inspect_media(str(notes))
    assert inspection.details["kind"] == "not-media" and "finding" not in inspection.details


def test_a_binary_file_that_is_not_media_is_probed_and_found_not_media(tmp_path: Path) -> None:
    blob = tmp_path / "telemetry.bin"
    blob.write_bytes(bytes(range(256)) * 64)
    inspection = inspect_media(str(blob))
    assert inspection.details["probed"] is True and inspection.details["kind"] == "not-media"
    assert "Invalid data" in inspection.details["reason"]
    assert inspection.attachments == {}


def test_missing_ffprobe_is_exit_5_with_the_install_command_but_never_stops_inspection(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    tools = MediaTools(ffmpeg=str(tmp_path / "no-ffmpeg"), ffprobe=str(tmp_path / "no-ffprobe"))
    with pytest.raises(MediaToolsMissing) as raised:
        probe(videos["h264.mp4"], tools)
    assert isinstance(raised.value, ConfigError) and raised.value.exit_code == 5
    assert "apt-get install ffmpeg" in str(raised.value)
    inspection = inspect_media(str(videos["h264.mp4"]), tools)
    assert inspection.details["probed"] is False and "apt-get install ffmpeg" in inspection.details["reason"]
    assert inspection.attachments == {}
    with pytest.raises(MediaToolsMissing):
        contact_sheet(videos["h264.mp4"], tmp_path / "sheet.png", tools=tools)


# --- clip verification -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def original_list(videos: dict[str, Path]) -> bytes:
    return packet_hashes(videos["h264.mp4"])


def test_a_stream_copy_cut_at_a_keyframe_is_derived_with_its_time_range(clips: dict[str, Path], original_list: bytes) -> None:
    report = verify_clip(clips["copy"], original_list)
    assert report.derived is True and report.findings == []
    assert (report.start_us, report.end_us) == (1_000_000, 2_000_000)
    video, audio = report.streams
    assert (video.original_stream, video.first, video.last, video.matched) == (0, 25, 49, 25)
    assert video.starts_at_keyframe is True
    assert audio.original_stream == 1 and audio.matched == audio.packets > 40
    assert report.as_dict()["range"]["start"] == "00:00:01.000"


def test_the_whole_original_is_derived_from_itself(videos: dict[str, Path], original_list: bytes) -> None:
    report = verify_clip(videos["h264.mp4"], original_list)
    assert report.derived and (report.start_us, report.end_us) == (0, 3_000_000)


def test_a_re_encoded_cut_is_not_derived(clips: dict[str, Path], original_list: bytes) -> None:
    report = verify_clip(clips["reencoded"], original_list)
    assert report.derived is False
    assert [(f.kind, f.extra["clip_stream"]) for f in report.findings] == [("not-derived", 0), ("not-derived", 1)]
    assert report.start_us is None


def test_a_splice_of_two_segments_names_the_gap(clips: dict[str, Path], original_list: bytes) -> None:
    report = verify_clip(clips["splice"], original_list)
    assert report.derived is False
    gaps = {f.extra["clip_stream"]: f for f in report.findings if f.kind == "gap"}
    assert set(gaps) == {0, 1} and len(report.findings) == 2
    video_gap = gaps[0]
    assert video_gap.extra["original_packets"] == [25, 49] and video_gap.extra["missing"] == 25
    assert (video_gap.extra["start"], video_gap.extra["end"]) == ("00:00:01.000", "00:00:02.000")
    assert "between clip packets 24 and 25" in video_gap.message


def test_a_splice_whose_keyframes_were_rewritten_is_caught_too(clips: dict[str, Path], original_list: bytes) -> None:
    """The concat demuxer's default bitstream filter puts SPS/PPS into each keyframe."""
    report = verify_clip(clips["splice-annexb"], original_list)
    assert report.derived is False
    video = [f for f in report.findings if f.extra.get("clip_stream") == 0]
    assert any(f.kind == "altered" and f.extra.get("original_packets") == [25, 50] for f in video)


def test_one_changed_packet_in_the_middle_is_caught(clips: dict[str, Path], original_list: bytes, tmp_path: Path) -> None:
    done = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,size",
         "-of", "json", str(clips["copy"])],
        capture_output=True, text=True, check=True,
    )
    twelfth = json.loads(done.stdout)["packets"][12]
    pos, size = int(twelfth["pos"]), int(twelfth["size"])
    data = bytearray(clips["copy"].read_bytes())
    data[pos + size // 2] ^= 0xFF
    altered = tmp_path / "altered.mp4"
    altered.write_bytes(bytes(data))
    report = verify_clip(altered, original_list)
    assert report.derived is False
    assert [(f.kind, f.extra.get("original_packets"), f.extra.get("clip_packets")) for f in report.findings] == [
        ("altered", [37, 37], [12, 12])
    ]


def test_a_clip_that_is_not_a_video_is_not_derived(videos: dict[str, Path], original_list: bytes) -> None:
    report = verify_clip(videos["sidecar"], original_list)
    assert report.derived is False and [f.kind for f in report.findings] == ["unreadable"]


# --- contact sheets --------------------------------------------------------------------------


def png_text(data: bytes) -> dict[str, str]:
    texts, offset = {}, 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"tEXt":
            key, _, value = data[offset + 8:offset + 8 + length].partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        offset += 12 + length
    return texts


def test_contact_sheet_is_a_png_grid_with_the_tile_times(videos: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    sheet = contact_sheet(videos["hevc.mov"], out, tiles=6, columns=3, width=160)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (sheet.width, sheet.height) == (4 * 2 + 3 * 160 + 2 * 4, 4 * 2 + 2 * 120 + 4)
    done = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", str(out)],
        capture_output=True, text=True, check=True,
    )
    assert done.stdout.strip() == f"png,{width},{height}"
    assert sheet.labelled is True
    texts = png_text(data)
    assert texts["Title"] == "custody contact sheet"
    assert texts["Tiles"] == "1: 00:00:00.250; 2: 00:00:00.750; 3: 00:00:01.250; 4: 00:00:01.750; 5: 00:00:02.250; 6: 00:00:02.750"


def test_a_contact_sheet_of_a_non_video_is_bad_input(videos: dict[str, Path], tmp_path: Path) -> None:
    from custody.media.tools import MediaUnreadable

    with pytest.raises(MediaUnreadable) as raised:
        contact_sheet(videos["sidecar"], tmp_path / "sheet.png")
    assert raised.value.exit_code == 2
    assert not (tmp_path / "sheet.png").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(autouse=True)
def _no_stray_sheets(tmp_path: Path) -> Iterator[None]:
    yield
    assert not list(tmp_path.glob(".sheet-*")), "a temporary contact sheet was left behind"


# --- one ffprobe run: probe and packet list together -------------------------------------------


def test_probe_and_list_in_one_run_equal_probe_and_packet_list_on_every_container_and_codec(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    ts = tmp_path / "remux.ts"
    ffmpeg("-i", str(videos["h264.mp4"]), "-map", "0", "-c", "copy", str(ts))
    mkv = tmp_path / "remux.mkv"
    ffmpeg("-i", str(videos["hevc.mov"]), "-map", "0", "-c", "copy", str(mkv))
    for path in [*(videos[k.name] for k in KINDS), ts, mkv]:
        details, listing = probe_and_list(path)
        assert details == probe(path), path.name
        assert listing.render() == packet_hashes(path), path.name
        assert listing.tool == details["tool"]


def test_tags_that_look_like_ffprobe_fields_stay_tag_values(tmp_path: Path) -> None:
    """Tag keys and values from a file are hostile: separators, newlines and a forged packet line
    stay inside the tag, and the packet list is that of the same file without the tags."""
    plain = tmp_path / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(plain))
    forged = "x|y=z\npacket|stream_index=0|size=1|data_hash=SHA256:" + "0" * 64 + "\n\"}]}"
    tagged = tmp_path / "tagged.mp4"
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata", f"title={forged}", "-metadata", f"comment={forged[::-1]}",
           "-movflags", "+use_metadata_tags", str(tagged))
    details, listing = probe_and_list(tagged)
    assert details["tags"]["title"] == forged and details["tags"]["comment"] == forged[::-1]
    assert lines(listing.render()) == lines(packet_hashes(plain))
