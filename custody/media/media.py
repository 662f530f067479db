"""Media evidence: probing, packet hash lists, clip verification and contact sheets.

Everything here runs the stock ``ffprobe`` and ``ffmpeg`` programs (named by ``MediaTools``;
the command line takes them from ``CUSTODY_FFPROBE`` / ``CUSTODY_FFMPEG``). Nothing decodes
video except the contact sheet. A missing program raises ``MediaToolsMissing`` (exit 5, with the
install command); at ingest it never prevents preservation (``inspect_media``).

Errors::

    ConfigError           5
    └── MediaToolsMissing 5  ffprobe/ffmpeg not installed or not runnable
    BadInput              2
    ├── MediaUnreadable   2  ffprobe/ffmpeg cannot read the file as audio or video
    └── PacketListInvalid 2  bytes that are not a packet list in the format below
    IntegrityFailure      3  a recorded packet list that is missing or no longer matches its SHA-256

Packet list format (``custody-packets v1``)
-------------------------------------------
UTF-8 text, LF line ends. Header lines start with ``#``::

    #custody-packets v1
    #hash: SHA256
    #tool: ffprobe 5.1.9-0+deb12u1
    #start_time_us: 0
    #stream 0: video h264 time_base=1/12800
    #stream 1: audio aac time_base=1/48000
    #stream,dts,pts,duration,size,flags,sha256

then one line per packet, in the order the demuxer returns them (file order, streams
interleaved), comma separated without spaces::

    1,-1024,-1024,1024,192,KD,fd36161c75cbec79336781cf9b993dda38eeda030e3264c39986e5da3032e239
    0,0,0,512,8658,K_,0f894857a40e199e9e98d68ad874e58e4a6059d9db408d8a46db7a03aba966b9

- ``stream``: the input stream index; ``dts``, ``pts``, ``duration``: the demuxer's values in
  that stream's ``time_base`` (``N/A`` when unknown); ``size``: bytes of packet data;
  ``flags``: ffprobe's packet flags as it prints them (``K`` keyframe, ``D`` discard; ffprobe
  5.x prints two characters, later versions three); ``sha256``: SHA-256 of the packet's data,
  exactly as demuxed, without decoding (side data is not included).
- ``start_time_us``: the container's start time in microseconds; times in reports are
  ``pts * time_base - start_time``, i.e. from the start of the file.

Anyone can re-create the packet lines with stock ffprobe, and they must be identical::

    ffprobe -v error -show_entries packet=stream_index,dts,pts,duration,size,flags,data_hash \\
        -show_data_hash sha256 -of json FILE > packets.json
    python3 -c 'import json, sys
    for p in json.load(open(sys.argv[1]))["packets"]:
        print(*(p.get(k, "N/A") for k in ("stream_index", "dts", "pts", "duration", "size", "flags")),
              p["data_hash"].split(":")[1], sep=",")' packets.json > again.csv
    grep -v "^#" PACKET_LIST | diff - again.csv && echo identical

The per-stream sequence of hashes is also what ``ffmpeg -i FILE -map 0 -c copy -copyinkf
-f framehash -hash sha256 -`` prints (its timestamps are shifted to start at zero).

How it is computed: ffprobe lists every packet with its byte position and an Adler-32 of the
demuxed data; the SHA-256 of the bytes at that position is taken here (OpenSSL, in a thread
pool, while ffprobe is still running; several times faster than ffmpeg's own SHA-256), and used
only if the Adler-32 of those bytes equals ffprobe's for every packet, i.e. the file holds each
packet's data as one contiguous run (true of MP4/MOV). Otherwise (MPEG-TS, laced Matroska,
parsed streams), or when a position is unknown, ffprobe hashes the packets itself
(``-show_data_hash sha256``); both ways give the same lines.

Contact sheets: one frame at or just after each of N evenly spaced times, scaled, labelled with
its presentation time (``drawtext`` with fontconfig's default font) and tiled into one PNG. If
drawtext cannot find a font, the tiles are drawn without labels. Either way, the PNG carries
``tEXt`` chunks: ``Title``, ``Source`` and ``Tiles`` (each tile's requested time, row by row).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import mmap
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import ffmpeg  # type: ignore[import-untyped]

from custody.ledger.canonical import printable_path
from custody.errors import BadInput, ConfigError, Finding, IntegrityFailure
from custody.evidence.ingest import Inspection, IngestResult
from storage.base import ObjectStore
from storage.errors import ObjectNotFound, StorageError

INSTALL_HINT = "install it with 'apt-get install ffmpeg' (Debian/Ubuntu)"
PACKET_FORMAT = "custody-packets v1"
PACKET_COLUMNS = "#stream,dts,pts,duration,size,flags,sha256"
_STDERR_LIMIT = 2000


class MediaToolsMissing(ConfigError):
    """ffprobe or ffmpeg is not installed (or cannot be run). Exit 5."""

    def __init__(self, program: str, detail: str) -> None:
        self.program = program
        super().__init__(
            f"{program} is not available ({detail}); {INSTALL_HINT}, or name the program with "
            "CUSTODY_FFPROBE / CUSTODY_FFMPEG"
        )


class MediaUnreadable(BadInput):
    """ffprobe or ffmpeg cannot read the file as audio or video; ``detail`` is its message."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{printable_path(path)}: cannot be read as audio or video: {detail}")


class PacketListInvalid(BadInput):
    """Bytes that are not a ``custody-packets v1`` list."""


@dataclass(frozen=True)
class MediaTools:
    """The programs to run: names looked up on PATH, or paths."""

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"

    def version(self, program: str) -> str:
        """``"ffprobe 5.1.9-0+deb12u1"``: the program's name and version. Raises
        ``MediaToolsMissing`` if it cannot be run."""
        return _version(program)


DEFAULT_TOOLS = MediaTools()


_REPORTED_VERSIONS: dict[str, str] = {}


def _json_or_none(data: bytes | None) -> Any:
    import json

    try:
        return json.loads(data or b"")
    except ValueError:
        return None


def _version_in(raw: Any, program: str) -> str | None:
    """The version ffprobe reported with ``-show_program_version`` (remembered for
    ``_version``), in ``_version``'s form; None when absent."""
    info = raw.get("program_version") if isinstance(raw, dict) else None
    number = info.get("version") if isinstance(info, dict) else None
    if not isinstance(number, str) or not number.strip():
        return None
    version = f"ffprobe {number.split()[0]}"
    _REPORTED_VERSIONS.setdefault(program, version)
    return version


@functools.lru_cache(maxsize=8)
def _version(program: str) -> str:
    if program in _REPORTED_VERSIONS:
        return _REPORTED_VERSIONS[program]
    done = _run([program, "-version"], program)
    words = done.stdout.decode("utf-8", "replace").split()
    name = os.path.basename(program)
    if len(words) >= 3 and words[1] == "version":
        return f"{words[0]} {words[2]}"
    return f"{name} (unknown version)"


def _run(args: list[str], program: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, capture_output=True, check=False)
    except OSError as exc:
        raise MediaToolsMissing(program, f"cannot run {program!r}: {exc.strerror or exc}") from exc


def _input_url(path: str | os.PathLike[str]) -> str:
    """An ffmpeg input that is always the local file: ``file:`` keeps names such as
    ``concat:a|b`` or ``-x.mp4`` from being read as protocols or options."""
    return "file:" + os.path.abspath(os.fspath(path))


_ADDRESS = re.compile(r" @ 0x[0-9a-f]+\]")


def _tail(stderr: bytes | str, path: str | os.PathLike[str] | None = None) -> str:
    """The last lines of ffmpeg's stderr, joined, without context addresses, and naming the
    file by its base name."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    if path is not None:
        text = text.replace(_input_url(path), os.path.basename(os.fspath(path)))
    text = _ADDRESS.sub("]", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = "; ".join(lines[-6:])
    return joined[-_STDERR_LIMIT:] or "no message"


def _clean(value: str) -> str:
    """A string that can go into a canonical event (no lone surrogates, no NULs)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\0", "\\x00")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _us(seconds: Any) -> int | None:
    """Microseconds from ffprobe's decimal seconds string (exact; None for N/A)."""
    if not isinstance(seconds, str):
        return None
    try:
        value = Decimal(seconds)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return int((value * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))


def format_time(us: int) -> str:
    """``HH:MM:SS.mmm`` (negative times get a leading ``-``)."""
    sign = "-" if us < 0 else ""
    ms = abs(us) // 1000
    return f"{sign}{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


# ---------------------------------------------------------------------------------------------
# probe

_MAKE_TAGS = ("make", "com.apple.quicktime.make", "manufacturer", "com.android.manufacturer")
_MODEL_TAGS = ("model", "com.apple.quicktime.model", "com.android.model")
_SERIAL_TAGS = ("serial_number", "serial", "serialnumber", "camera_serial_number", "com.apple.quicktime.camera.identifier")
_LOCATION_TAGS = ("location", "location-eng", "com.apple.quicktime.location.iso6709")
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?/?$")
_IMAGE_FORMATS = re.compile(r"(^|,)(image2|[a-z0-9]+_pipe)(,|$)")


def _tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {_clean(str(k)): _clean(str(v)) for k, v in sorted(raw.items())}


def _first_tag(tags: dict[str, str], names: Iterable[str]) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name)
        if value:
            return value
    return None


def parse_iso6709(text: str) -> dict[str, str] | None:
    """``+41.8781-087.6298/`` -> ``{"iso6709": ..., "latitude": "41.8781", "longitude":
    "-87.6298"}`` (decimal degrees as strings; ``altitude`` in metres when present)."""
    match = _ISO6709.match(text.strip())
    if not match:
        return None
    result = {"iso6709": text.strip(), "latitude": str(Decimal(match[1])), "longitude": str(Decimal(match[2]))}
    if match[3]:
        result["altitude"] = str(Decimal(match[3]))
    return result


def _stream(raw: dict[str, Any]) -> dict[str, Any]:
    kind = str(raw.get("codec_type", "unknown"))
    stream: dict[str, Any] = {
        "index": _int(raw.get("index")),
        "type": kind,
        "codec": _clean(str(raw.get("codec_name", "unknown"))),
    }
    for name, key in (("codec_long", "codec_long_name"), ("profile", "profile"), ("codec_tag", "codec_tag_string"),
                      ("time_base", "time_base")):
        if isinstance(raw.get(key), str):
            stream[name] = _clean(raw[key])
    if kind == "video":
        for name in ("width", "height"):
            if _int(raw.get(name)) is not None:
                stream[name] = _int(raw[name])
        for name, key in (("frame_rate", "r_frame_rate"), ("avg_frame_rate", "avg_frame_rate"), ("pix_fmt", "pix_fmt"),
                          ("sample_aspect_ratio", "sample_aspect_ratio"),
                          ("display_aspect_ratio", "display_aspect_ratio"), ("field_order", "field_order")):
            if isinstance(raw.get(key), str) and raw[key] not in ("0/0", "N/A"):
                stream[name] = _clean(raw[key])
        for side in raw.get("side_data_list") or ():
            if isinstance(side, dict) and _int(side.get("rotation")) is not None:
                stream["rotation"] = _int(side["rotation"])
        if isinstance(raw.get("disposition"), dict) and raw["disposition"].get("attached_pic") == 1:
            stream["attached_pic"] = True
    elif kind == "audio":
        for name, key in (("sample_rate", "sample_rate"), ("channels", "channels")):
            if _int(raw.get(key)) is not None:
                stream[name] = _int(raw[key])
        for name, key in (("channel_layout", "channel_layout"), ("sample_fmt", "sample_fmt")):
            if isinstance(raw.get(key), str):
                stream[name] = _clean(raw[key])
    for name, key in (("bit_rate", "bit_rate"), ("frames", "nb_frames")):
        if _int(raw.get(key)) is not None:
            stream[name] = _int(raw[key])
    for name, key in (("duration_us", "duration"), ("start_time_us", "start_time")):
        if _us(raw.get(key)) is not None:
            stream[name] = _us(raw[key])
    tags = _tags(raw.get("tags"))
    if tags:
        stream["tags"] = tags
    return stream


def probe(path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS) -> dict[str, Any]:
    """What ffprobe says of a file, as ledger-ready values (strings and integers, no floats).

    Keys: ``probed`` (True), ``kind`` (``video`` | ``audio`` | ``image`` | ``other``),
    ``tool``, ``container``, ``container_long``, ``duration_us``, ``start_time_us``,
    ``bit_rate``, ``size``, ``creation_time``, ``device`` (``make``/``model``/``serial`` found
    in the tags), ``gps`` (see ``parse_iso6709``), ``tags`` (every container tag) and
    ``streams`` (index, type, codec, codec_long, profile, codec_tag, time_base; video: width,
    height, frame_rate (``"30000/1001"``), avg_frame_rate, pix_fmt, aspect ratios, rotation;
    audio: sample_rate, channels, channel_layout; bit_rate, frames, duration_us, tags). A key
    is absent when ffprobe does not know the value.

    Raises ``MediaToolsMissing`` (no ffprobe) or ``MediaUnreadable`` (ffprobe's error)."""
    program = tools.ffprobe
    try:
        # the version comes in the same run (-show_program_version): one ffprobe start, not two
        raw = ffmpeg.probe(_input_url(path), cmd=program, v="error", show_program_version=None)
    except ffmpeg.Error as exc:
        if _version_in(_json_or_none(exc.stdout), program) is None:
            tools.version(program)  # says MediaToolsMissing if the program cannot be run at all
        raise MediaUnreadable(os.fspath(path), _tail(exc.stderr or b"", path)) from exc
    except OSError as exc:
        raise MediaToolsMissing(program, f"cannot run {program!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise MediaUnreadable(os.fspath(path), f"ffprobe printed unreadable output: {exc}") from exc
    version = _version_in(raw, program) or tools.version(program)
    fmt = raw.get("format") if isinstance(raw, dict) else None
    if not isinstance(fmt, dict):
        raise MediaUnreadable(os.fspath(path), "ffprobe found no container")
    streams = [_stream(s) for s in raw.get("streams") or () if isinstance(s, dict)]
    container = _clean(str(fmt.get("format_name", "unknown")))
    types = {s["type"] for s in streams if not s.get("attached_pic")}
    if _IMAGE_FORMATS.search(container):
        kind = "image"
    elif "video" in types:
        kind = "video"
    elif "audio" in types:
        kind = "audio"
    else:
        kind = "other"
    result: dict[str, Any] = {"probed": True, "kind": kind, "tool": version, "container": container}
    if isinstance(fmt.get("format_long_name"), str):
        result["container_long"] = _clean(fmt["format_long_name"])
    for name, key in (("duration_us", "duration"), ("start_time_us", "start_time")):
        if _us(fmt.get(key)) is not None:
            result[name] = _us(fmt[key])
    for name in ("bit_rate", "size"):
        if _int(fmt.get(name)) is not None:
            result[name] = _int(fmt[name])
    tags = _tags(fmt.get("tags"))
    stream_tags = [s.get("tags", {}) for s in streams]
    creation = tags.get("creation_time") or next((t["creation_time"] for t in stream_tags if "creation_time" in t), None)
    if creation:
        result["creation_time"] = creation
    device = {}
    for name, names in (("make", _MAKE_TAGS), ("model", _MODEL_TAGS), ("serial", _SERIAL_TAGS)):
        value = _first_tag(tags, names)
        if value:
            device[name] = value
    if device:
        result["device"] = device
    location = _first_tag(tags, _LOCATION_TAGS)
    if location:
        result["gps"] = parse_iso6709(location) or {"iso6709": location, "unparsed": "true"}
    result["tags"] = tags
    result["streams"] = streams
    return result


# ---------------------------------------------------------------------------------------------
# packet lists


@dataclass(frozen=True)
class StreamInfo:
    index: int
    media_type: str
    codec: str
    time_base: Fraction


@dataclass(frozen=True)
class Packet:
    stream: int
    dts: int | None
    pts: int | None
    duration: int | None
    size: int
    flags: str
    sha256: str

    def line(self) -> str:
        def ts(value: int | None) -> str:
            return "N/A" if value is None else str(value)

        return f"{self.stream},{ts(self.dts)},{ts(self.pts)},{ts(self.duration)},{self.size},{self.flags},{self.sha256}"


@dataclass
class PacketList:
    """Every packet of every stream of one file (see the module docstring for the format)."""

    streams: dict[int, StreamInfo]
    packets: list[Packet]
    start_time_us: int = 0
    tool: str = ""
    warnings: list[str] = field(default_factory=list)
    """What ffprobe reported while reading (not part of the rendered list)."""

    def render(self) -> bytes:
        lines = [f"#{PACKET_FORMAT}", "#hash: SHA256"]
        if self.tool:
            lines.append(f"#tool: {self.tool}")
        lines.append(f"#start_time_us: {self.start_time_us}")
        for index in sorted(self.streams):
            info = self.streams[index]
            tb = f"{info.time_base.numerator}/{info.time_base.denominator}"
            lines.append(f"#stream {index}: {info.media_type} {info.codec} time_base={tb}")
        lines.append(PACKET_COLUMNS)
        lines.extend(p.line() for p in self.packets)
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> PacketList:
        """Raises ``PacketListInvalid`` for anything but a well-formed v1 list."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PacketListInvalid(f"a packet list is UTF-8 text: {exc}") from exc
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        if not lines or lines[0] != f"#{PACKET_FORMAT}":
            raise PacketListInvalid(f"not a packet list: the first line is not #{PACKET_FORMAT}")
        listing = cls({}, [])
        for number, line in enumerate(lines[1:], start=2):
            try:
                if line.startswith("#"):
                    listing._header(line)
                else:
                    listing.packets.append(_packet(line))
            except (ValueError, IndexError, ZeroDivisionError) as exc:
                raise PacketListInvalid(f"packet list line {number}: {line[:120]!r}: {exc}") from exc
        unknown = {p.stream for p in listing.packets} - set(listing.streams)
        if unknown:
            raise PacketListInvalid(f"packets of undeclared stream(s) {sorted(unknown)}")
        return listing

    def _header(self, line: str) -> None:
        if line.startswith("#stream ") and ":" in line:
            head, rest = line[len("#stream "):].split(":", 1)
            media_type, codec, tb = rest.split()
            if not tb.startswith("time_base="):
                raise ValueError("no time_base")
            index = int(head)
            self.streams[index] = StreamInfo(index, media_type, codec, Fraction(tb[len("time_base="):]))
        elif line.startswith("#start_time_us: "):
            self.start_time_us = int(line.split(": ", 1)[1])
        elif line.startswith("#tool: "):
            self.tool = line.split(": ", 1)[1]
        elif line.startswith("#hash: ") and line != "#hash: SHA256":
            raise ValueError("only SHA256 lists are understood")

    def of_stream(self, index: int) -> list[Packet]:
        return [p for p in self.packets if p.stream == index]

    def time_us(self, stream: int, ts: int) -> int:
        """A timestamp of ``stream`` as microseconds from the start of the file."""
        seconds = ts * self.streams[stream].time_base
        return int((seconds * 1_000_000) // 1) - self.start_time_us


def _packet(line: str) -> Packet:
    cells = line.split(",")
    if len(cells) != 7:
        raise ValueError(f"{len(cells)} columns instead of 7")

    def ts(cell: str) -> int | None:
        return None if cell == "N/A" else int(cell)

    digest = cells[6]
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError("not a SHA-256 hex digest")
    return Packet(int(cells[0]), ts(cells[1]), ts(cells[2]), ts(cells[3]), int(cells[4]), cells[5], digest)


class _PositionsUnusable(Exception):
    """The file does not hold some packet's data contiguously at its reported position."""


_SECTIONS = ("packet|", "stream|", "format|")


def _records(lines: Iterable[bytes]) -> Iterator[tuple[str, dict[str, str]]]:
    """ffprobe ``-of compact`` sections as (name, fields); a section that ffprobe broke over
    several lines (it prints side data as a nested section) is joined again."""
    current: tuple[str, dict[str, str]] | None = None
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(_SECTIONS):
            if current is not None:
                yield current
            name, _, rest = line.partition("|")
            current = (name, {})
        elif current is None:
            continue
        else:
            rest = line
        for part in rest.split("|"):
            key, eq, value = part.partition("=")
            if eq:
                current[1].setdefault(key, value)
    if current is not None:
        yield current


@dataclass
class _ProbeRun:
    records: Iterator[tuple[str, dict[str, str]]]
    warnings: list[str] = field(default_factory=list)


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _follow(process: subprocess.Popen[bytes], output: BinaryIO) -> Iterator[bytes]:
    """What ``process`` writes into the file ``output`` is open on, in large chunks, as it
    grows, until the process has exited. Polling a file instead of reading a pipe lets the
    process run at full speed and keeps this thread off the GIL while hashing threads run."""
    while True:
        chunk = output.read(1 << 20)
        if chunk:
            yield chunk
        elif process.poll() is not None:
            while chunk := output.read(1 << 20):
                yield chunk
            return
        else:
            time.sleep(0.005)


@contextmanager
def _ffprobe_packets(path: str, tools: MediaTools, data_hash: str) -> Iterator[_ProbeRun]:
    """Run ffprobe over every packet; its records arrive while it runs. On leaving, raises
    ``MediaUnreadable`` if ffprobe failed, else puts what it printed on stderr in ``warnings``."""
    program = tools.ffprobe
    args = [
        program, "-v", "error",
        "-show_entries",
        "packet=stream_index,pts,dts,duration,size,pos,flags,data_hash:stream=index,codec_type,codec_name,time_base"
        ":format=start_time",
        "-show_data_hash", data_hash, "-of", "compact", _input_url(path),
    ]
    with tempfile.TemporaryDirectory(prefix="custody-ffprobe-") as scratch:
        listing_path = os.path.join(scratch, "packets")
        with open(listing_path, "wb") as sink, open(listing_path, "rb") as output, \
                open(os.path.join(scratch, "stderr"), "w+b") as errors:
            try:
                process = subprocess.Popen(args, stdout=sink, stderr=errors, stdin=subprocess.DEVNULL)
            except OSError as exc:
                raise MediaToolsMissing(program, f"cannot run {program!r}: {exc.strerror or exc}") from exc
            run = _ProbeRun(_records(_lines(_follow(process, output))))
            finished = False
            try:
                yield run
                finished = True
            finally:
                if not finished:
                    process.kill()
                code = process.wait()
            errors.seek(0)
            message = errors.read()
    if code != 0:
        raise MediaUnreadable(path, _tail(message, path))
    if message.strip():
        run.warnings.append(_tail(message, path))


_BATCH_BYTES = 8 << 20
_BATCH_PACKETS = 512


def _listing(path: str, tools: MediaTools, *, from_file: bool) -> PacketList:
    """One ffprobe run over every packet. ``from_file``: ffprobe gives each packet's position
    and Adler-32, and the SHA-256 of the file's bytes there is taken here, in a thread pool
    (hashlib and zlib release the GIL); else ffprobe's own SHA-256 is used."""
    listing = PacketList({}, [], tool=tools.version(tools.ffprobe))
    with open(path, "rb") as handle, _ffprobe_packets(path, tools, "adler32" if from_file else "sha256") as run:
        size = os.fstat(handle.fileno()).st_size
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size and from_file else None
        try:
            with memoryview(mapped if mapped is not None else b"") as view:
                if from_file:
                    _hash_from_file(path, run, view, listing)
                else:
                    for name, fields in run.records:
                        if name == "packet":
                            header, _, digest = _packet_fields(path, fields)
                            if not digest.upper().startswith("SHA256:") or len(digest) != 71:
                                raise MediaUnreadable(path, f"ffprobe printed no SHA-256 for a packet ({digest!r})")
                            listing.packets.append(Packet(*header, digest[7:].lower()))
                        else:
                            _other_record(name, fields, listing)
        finally:
            if mapped is not None:
                mapped.close()
    listing.warnings = run.warnings
    return listing


def _hash_from_file(path: str, run: _ProbeRun, view: memoryview, listing: PacketList) -> None:
    headers: list[tuple[int, int | None, int | None, int | None, int, str]] = []
    futures: list[Future[list[str]]] = []
    batch: list[tuple[int, int, str]] = []
    batch_bytes = 0
    pool = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)))
    try:
        for name, fields in run.records:
            if name != "packet":
                _other_record(name, fields, listing)
                continue
            header, pos, digest = _packet_fields(path, fields)
            algorithm, _, adler = digest.partition(":")
            if pos is None or pos < 0 or pos + header[4] > len(view) or algorithm.lower() != "adler32":
                raise _PositionsUnusable
            headers.append(header)
            batch.append((pos, header[4], adler.lower()))
            batch_bytes += header[4]
            if batch_bytes >= _BATCH_BYTES or len(batch) >= _BATCH_PACKETS:
                futures.append(pool.submit(_hash_ranges, view, batch))
                batch, batch_bytes = [], 0
                if futures[0].done():
                    futures[0].result()
        if batch:
            futures.append(pool.submit(_hash_ranges, view, batch))
        digests = [digest for future in futures for digest in future.result()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    listing.packets.extend(Packet(*header, digest) for header, digest in zip(headers, digests))


def _hash_ranges(view: memoryview, ranges: list[tuple[int, int, str]]) -> list[str]:
    """SHA-256 of each (position, size) range, after checking its Adler-32 against ffprobe's."""
    digests = []
    for pos, size, adler in ranges:
        with view[pos:pos + size] as data:
            if f"{zlib.adler32(data):08x}" != adler:
                raise _PositionsUnusable
            digests.append(hashlib.sha256(data).hexdigest())
    return digests


def _other_record(name: str, fields: dict[str, str], listing: PacketList) -> None:
    if name == "stream":
        tb = fields.get("time_base", "")
        index = int(fields["index"])
        listing.streams[index] = StreamInfo(
            index,
            fields.get("codec_type") or "unknown",
            fields.get("codec_name") or "unknown",
            Fraction(tb) if re.fullmatch(r"\d+/[1-9]\d*", tb) else Fraction(1),
        )
    elif name == "format":
        listing.start_time_us = _us(fields.get("start_time")) or 0


def _packet_fields(
    path: str, fields: dict[str, str]
) -> tuple[tuple[int, int | None, int | None, int | None, int, str], int | None, str]:
    """((stream, dts, pts, duration, size, flags), position or None, ffprobe's data_hash)."""
    def number(name: str) -> int | None:
        value = fields.get(name, "N/A")
        return None if value == "N/A" else int(value)

    size = number("size")
    stream = number("stream_index")
    if size is None or stream is None:
        raise MediaUnreadable(path, f"ffprobe printed a packet without stream or size: {fields!r}")
    header = (stream, number("dts"), number("pts"), number("duration"), size, fields.get("flags", ""))
    return header, number("pos"), fields.get("data_hash", "")


def packet_list(path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS) -> PacketList:
    """Every packet of ``path`` with its SHA-256 (see the module docstring).

    Raises ``MediaToolsMissing`` or ``MediaUnreadable`` (ffprobe failed); what ffprobe
    reported without failing is in ``warnings``."""
    name = os.fspath(path)
    try:
        try:
            return _listing(name, tools, from_file=True)
        except _PositionsUnusable:
            return _listing(name, tools, from_file=False)
    except OSError as exc:
        raise MediaUnreadable(name, f"cannot read: {exc.strerror or exc}") from exc
    except (ValueError, KeyError) as exc:
        raise MediaUnreadable(name, f"ffprobe printed unexpected output: {exc!r}") from exc


def packet_hashes(path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS) -> bytes:
    """The packet list of ``path`` in the ``custody-packets v1`` format."""
    return packet_list(path, tools).render()


# ---------------------------------------------------------------------------------------------
# ingest inspection

_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot", b"uuid"}
_MEDIA_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts",
    ".mpg", ".mpeg", ".wmv", ".asf", ".flv", ".m4a", ".wav", ".mp3", ".aac",
}


def sniff_container(path: str) -> str | None:
    """A container name when the file's first bytes (or its extension) say audio/video."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(192)
    except OSError:
        head = b""
    if head[4:8] in _BMFF_BOXES:
        return "mp4/mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska/webm"
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"WAVE"):
        return "avi" if head[8:12] == b"AVI " else "wav"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "mpeg-ts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg-ps"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    extension = os.path.splitext(path)[1].lower()
    return extension[1:] if extension in _MEDIA_EXTENSIONS else None


def _text_file(path: str) -> bool:
    """True for a non-empty file whose first 4 KiB are UTF-8 text (a JSON, XML or CSV
    sidecar), whatever its name: no audio or video container starts like that, so ffprobe
    need not run."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    if not head:
        return False
    text = head.decode("utf-8", "replace")
    if len(head) == 4096:
        text = text.rstrip("\ufffd")
    return "\ufffd" not in text and all(c.isprintable() or c in "\t\n\r\f" for c in text)


def inspect_media(path: str, tools: MediaTools = DEFAULT_TOOLS) -> Inspection:
    """The ingest ``Inspector``: never raises for a file, so probing never prevents preservation.

    ``details`` (the event's ``media``):
    - a video or audio file: ``probe``'s result, each stream with its ``packets`` count, and
      the packet list as the ``packets`` attachment (stored as ``packets/<blake3>``);
    - ffprobe cannot read a file that looks like media (e.g. a truncated MP4):
      ``{"probed": true, "kind": "unreadable-media", "container_guess", "probe_error",
      "finding"}``;
    - anything else: ``{"probed": true, "kind": "not-media", "reason"}``; a text file (a JSON
      or XML sidecar) is recognised without running ffprobe: ``{"probed": false, "kind":
      "not-media", "reason"}``;
    - no ffprobe: ``{"probed": false, "reason"}``.
    When listing packets fails after a good probe, ``packets_error`` and ``finding`` say so;
    ffprobe's complaints while listing them are in ``packets_warning``."""
    if _text_file(path):
        return Inspection({"probed": False, "kind": "not-media", "reason": "a text file (sidecar metadata?), not audio or video"})
    try:
        details = probe(path, tools)
    except MediaToolsMissing as exc:
        return Inspection({"probed": False, "reason": _clean(str(exc))})
    except MediaUnreadable as exc:
        guess = sniff_container(path)
        if guess is None:
            return Inspection({"probed": True, "kind": "not-media", "reason": _clean(f"not audio or video: {exc.detail}")})
        return Inspection({
            "probed": True,
            "kind": "unreadable-media",
            "container_guess": guess,
            "probe_error": _clean(exc.detail),
            "finding": f"ffprobe cannot read it as {guess} (truncated or corrupt?); the bytes are preserved as they are",
        })
    if details["kind"] not in ("video", "audio"):
        return Inspection(details)
    try:
        listing = packet_list(path, tools)
    except (MediaToolsMissing, MediaUnreadable) as exc:
        details["packets_error"] = _clean(exc.detail if isinstance(exc, MediaUnreadable) else str(exc))
        details["finding"] = "the packet list could not be made; the bytes are preserved as they are"
        return Inspection(details)
    counts = Counter(p.stream for p in listing.packets)
    for stream in details["streams"]:
        stream["packets"] = counts.get(stream["index"], 0)
    if listing.warnings:
        details["packets_warning"] = _clean("; ".join(listing.warnings))[-_STDERR_LIMIT:]
        details["finding"] = "ffprobe reported errors while reading the packets (damaged or truncated?)"
    return Inspection(details, {"packets": listing.render()})


def media_warning(details: dict[str, Any]) -> str | None:
    """One line for the ingest report when probing found something a person should know."""
    if details.get("kind") == "not-media":
        return None
    if details.get("probed") is False:
        return f"not probed: {details.get('reason')}"
    if "probe_error" in details:
        return f"{details['finding']}: {details['probe_error']}"
    if "packets_error" in details:
        return f"{details['finding']}: {details['packets_error']}"
    if "packets_warning" in details:
        return f"{details['finding']}: {details['packets_warning']}"
    return None


class MediaInspector:
    """``inspect_media`` with given tools, as an ingest ``Inspector`` that remembers each
    file's ``media_warning`` so that ``annotate`` can add it to the ingest results."""

    def __init__(self, tools: MediaTools = DEFAULT_TOOLS) -> None:
        self.tools = tools
        self.warnings: dict[str, str] = {}

    def __call__(self, path: str) -> Inspection:
        inspection = inspect_media(path, self.tools)
        warning = media_warning(inspection.details)
        if warning:
            self.warnings[printable_path(path)] = warning
        return inspection

    def annotate(self, results: Iterable[IngestResult]) -> None:
        for result in results:
            warning = self.warnings.get(result.path)
            if warning and result.status == "recorded":
                result.warning = f"{result.warning}; {warning}" if result.warning else warning


# ---------------------------------------------------------------------------------------------
# clip verification


@dataclass
class StreamMatch:
    """Where one stream of a clip lies in the original."""

    clip_stream: int
    media_type: str
    codec: str
    packets: int
    original_stream: int | None = None
    matched: int = 0
    first: int | None = None
    last: int | None = None
    start_us: int | None = None
    end_us: int | None = None
    starts_at_keyframe: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "clip_stream": self.clip_stream,
            "type": self.media_type,
            "codec": self.codec,
            "packets": self.packets,
            "original_stream": self.original_stream,
            "matched": self.matched,
            "original_packets": None if self.first is None or self.last is None else [self.first, self.last],
            "starts_at_keyframe": self.starts_at_keyframe,
        }
        if self.start_us is not None and self.end_us is not None:
            record["range"] = _range(self.start_us, self.end_us)
        return record


def _range(start: int, end: int) -> dict[str, Any]:
    return {"start": format_time(start), "end": format_time(end), "start_us": start, "end_us": end}


@dataclass
class ClipReport:
    """Whether a clip's packets are, stream by stream, a contiguous run of the original's."""

    clip: str
    derived: bool
    streams: list[StreamMatch] = field(default_factory=list)
    start_us: int | None = None
    end_us: int | None = None
    original_streams_not_in_clip: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    original: str | None = None
    packet_list_source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "original": self.original,
            "derived": self.derived,
            "range": None if self.start_us is None or self.end_us is None else _range(self.start_us, self.end_us),
            "streams": [s.as_dict() for s in self.streams],
            "original_streams_not_in_clip": self.original_streams_not_in_clip,
            "packet_list": self.packet_list_source,
            "findings": [f.as_dict() for f in self.findings],
        }


class _Aligner:
    """Walks one clip stream along one original stream and collects findings."""

    def __init__(self, subject: str, clip_stream: int, original: PacketList, original_stream: int) -> None:
        self.subject = subject
        self.clip_stream = clip_stream
        self.original = original
        self.stream = original_stream
        self.sequence = original.of_stream(original_stream)
        self.where: dict[str, list[int]] = {}
        for position, packet in enumerate(self.sequence):
            self.where.setdefault(packet.sha256, []).append(position)
        self.findings: list[Finding] = []

    def _span(self, first: int, last: int) -> tuple[str, str]:
        start, end = self._times(first, last)
        return format_time(start), format_time(end)

    def _times(self, first: int, last: int) -> tuple[int, int]:
        starts, ends = [], []
        for packet in self.sequence[first:last + 1]:
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                continue
            starts.append(self.original.time_us(self.stream, stamp))
            ends.append(self.original.time_us(self.stream, stamp + (packet.duration or 0)))
        if not starts:
            return 0, 0
        return min(starts), max(ends)

    def _finding(self, kind: str, message: str, **extra: Any) -> None:
        where = f"clip stream {self.clip_stream}: "
        self.findings.append(Finding(kind, self.subject, where + message,
                                     extra={"clip_stream": self.clip_stream, "original_stream": self.stream, **extra}))

    def _best_start(self, clip: list[Packet], j: int, candidates: list[int]) -> int:
        def run(position: int) -> int:
            length = 0
            while (j + length < len(clip) and position + length < len(self.sequence)
                   and self.sequence[position + length].sha256 == clip[j + length].sha256):
                length += 1
            return length

        return max(candidates[:64], key=run)

    def align(self, clip: list[Packet], match: StreamMatch) -> None:
        expected: int | None = None
        unknown: list[int] = []
        covered: list[int] = []
        for j, packet in enumerate(clip):
            positions = self.where.get(packet.sha256)
            if not positions:
                unknown.append(j)
                continue
            if expected is None:
                q = self._best_start(clip, j, positions)
            elif expected < len(self.sequence) and self.sequence[expected].sha256 == packet.sha256:
                q = expected
            else:
                after = bisect.bisect_left(positions, expected)
                q = positions[after] if after < len(positions) else positions[-1]
            self._report(expected, q, j, unknown)
            unknown = []
            covered.append(q)
            expected = q + 1
        if unknown:
            self._report_unknown(unknown, expected, at_end=True)
        if not covered:
            return
        match.matched = len(covered)
        match.first, match.last = min(covered), max(covered)
        start_times, end_times = zip(*(self._times(q, q) for q in covered))
        match.start_us, match.end_us = min(start_times), max(end_times)
        match.starts_at_keyframe = "K" in self.sequence[covered[0]].flags

    def _report_unknown(self, unknown: list[int], before: int | None, at_end: bool = False) -> None:
        where = "at the end" if at_end else "at the start" if before is None else f"before original packet {before}"
        self._finding(
            "altered",
            f"{len(unknown)} packet(s) (clip packets {unknown[0]}-{unknown[-1]}) are not in the original "
            f"({where}): changed or inserted",
            clip_packets=[unknown[0], unknown[-1]],
        )

    def _report(self, expected: int | None, q: int, j: int, unknown: list[int]) -> None:
        if expected is None:
            if unknown:
                self._report_unknown(unknown, None)
            return
        if q > expected:
            start, end = self._span(expected, q - 1)
            if unknown:
                self._finding(
                    "altered",
                    f"original packets {expected}-{q - 1} ({start}-{end}) were replaced by {len(unknown)} "
                    f"packet(s) that are not in the original (clip packets {unknown[0]}-{unknown[-1]})",
                    original_packets=[expected, q - 1], clip_packets=[unknown[0], unknown[-1]], start=start, end=end,
                )
            else:
                self._finding(
                    "gap",
                    f"{q - expected} packet(s) of the original are missing between clip packets {j - 1} and {j}: "
                    f"original packets {expected}-{q - 1}, {start}-{end}",
                    original_packets=[expected, q - 1], missing=q - expected, start=start, end=end,
                )
            return
        if unknown:
            self._report_unknown(unknown, expected)
        if q < expected:
            start, _ = self._span(q, q)
            self._finding(
                "out-of-order",
                f"clip packet {j} is original packet {q} ({start}), which comes before original packet "
                f"{expected} where the clip had got to (repeated or reordered)",
                clip_packets=[j, j], original_packets=[q, q], start=start,
            )


def verify_clip(clip_path: str | os.PathLike[str], original: bytes, tools: MediaTools = DEFAULT_TOOLS) -> ClipReport:
    """Is the clip, stream by stream, a contiguous run of the original's packets (a stream-copied
    excerpt), and which time range of the original does it cover?

    ``original`` is the original's packet list (``packet_hashes``). Each clip stream is
    matched to the original stream holding most of its packets, then walked packet by packet:
    original packets skipped between two clip packets are a ``gap``; clip packets found
    nowhere in the original are ``altered`` (re-encoded, changed or inserted); a packet that
    goes back in the original is ``out-of-order``; a stream with no packet from the original
    is ``not-derived``; streams covering disjoint times are ``misaligned``. ``derived`` is true
    only with no finding at all. A clip that ffprobe cannot read is reported as ``unreadable``.
    The report's range is that of the clip's video streams (of all streams if it has none);
    each stream's own range is in ``streams``.

    Raises ``PacketListInvalid`` for a bad ``original`` and ``MediaToolsMissing``."""
    listing = PacketList.parse(original)
    shown = printable_path(os.fspath(clip_path))
    report = ClipReport(shown, derived=False)
    try:
        clip = packet_list(clip_path, tools)
    except MediaUnreadable as exc:
        report.findings.append(Finding("unreadable", shown, f"cannot be read as audio or video: {exc.detail}"))
        return report
    owners: dict[str, set[int]] = {}
    for packet in listing.packets:
        owners.setdefault(packet.sha256, set()).add(packet.stream)
    used: set[int] = set()
    for index in sorted(clip.streams):
        info = clip.streams[index]
        packets = clip.of_stream(index)
        match = StreamMatch(index, info.media_type, info.codec, len(packets))
        report.streams.append(match)
        if not packets:
            continue
        hits: Counter[int] = Counter()
        for packet in packets:
            hits.update(owners.get(packet.sha256, ()))
        if not hits:
            report.findings.append(Finding(
                "not-derived", shown,
                f"clip stream {index} ({info.media_type} {info.codec}, {len(packets)} packets): none of its packets "
                "is in the original; re-encoded or altered",
                extra={"clip_stream": index},
            ))
            continue
        best = max(hits, key=lambda s: (hits[s], listing.streams[s].media_type == info.media_type, -s))
        match.original_stream = best
        used.add(best)
        aligner = _Aligner(shown, index, listing, best)
        aligner.align(packets, match)
        report.findings.extend(aligner.findings)
    matched = [s for s in report.streams if s.start_us is not None and s.end_us is not None]
    if not any(s.packets for s in report.streams):
        report.findings.append(Finding("empty", shown, "the clip has no packets"))
    if matched:
        shown_streams = [s for s in matched if s.media_type == "video"] or matched
        report.start_us = min(s.start_us for s in shown_streams if s.start_us is not None)
        report.end_us = max(s.end_us for s in shown_streams if s.end_us is not None)
        for a in matched:
            for b in matched:
                if a.clip_stream < b.clip_stream and a.end_us is not None and b.start_us is not None \
                        and b.end_us is not None and a.start_us is not None \
                        and (a.end_us <= b.start_us or b.end_us <= a.start_us):
                    report.findings.append(Finding(
                        "misaligned", shown,
                        f"clip streams {a.clip_stream} and {b.clip_stream} come from disjoint times of the original "
                        f"({format_time(a.start_us)}-{format_time(a.end_us)} and "
                        f"{format_time(b.start_us)}-{format_time(b.end_us)})",
                    ))
    report.original_streams_not_in_clip = sorted(set(listing.streams) - used)
    report.derived = not report.findings and bool(matched)
    return report


# ---------------------------------------------------------------------------------------------
# contact sheets


@dataclass
class ContactSheet:
    path: str
    width: int
    height: int
    times_us: list[int]
    labelled: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "tiles": [format_time(t) for t in self.times_us],
            "labelled": self.labelled,
        }


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _png_with_text(data: bytes, texts: dict[str, str]) -> bytes:
    """``data`` with ``tEXt`` chunks inserted right after IHDR (Latin-1; other characters
    become ``?``)."""
    end_of_ihdr = 8 + 4 + 4 + 13 + 4
    chunks = b""
    for key, value in texts.items():
        body = key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace")
        chunks += struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return data[:end_of_ihdr] + chunks + data[end_of_ihdr:]


def _sheet_graph(source: str, times: list[int], start_us: int, width: int, columns: int, rows: int,
                 labelled: bool) -> Any:
    tiles = []
    for t in times:
        tile = ffmpeg.input(source, ss=f"{t / 1_000_000:.6f}")["v:0"]
        tile = tile.filter("trim", end_frame=1).filter("scale", width, -2)
        if labelled:
            tile = tile.filter(
                "drawtext", text=f"%{{pts:hms:{-start_us / 1_000_000:.6f}}}", x=6, y=6, fontsize="h/12",
                fontcolor="white", box=1, boxcolor="black@0.6", boxborderw=4,
            )
        tiles.append(tile)
    joined = ffmpeg.concat(*tiles, v=1, a=0) if len(tiles) > 1 else tiles[0]
    return joined.filter("tile", f"{columns}x{rows}", padding=4, margin=4)


def contact_sheet(
    source: str | os.PathLike[str] | BinaryIO,
    out_png: str | os.PathLike[str],
    *,
    tiles: int = 12,
    columns: int = 4,
    width: int = 320,
    title: str | None = None,
    tools: MediaTools = DEFAULT_TOOLS,
) -> ContactSheet:
    """Write a PNG grid of ``tiles`` frames of ``source`` (a path, or a readable binary stream,
    copied to a temporary file first), evenly spaced over its duration, each ``width`` pixels
    wide and labelled with its time from the start of the file, ``columns`` per row.

    The PNG is written to a temporary file next to ``out_png`` and renamed over it. Raises
    ``MediaToolsMissing``, ``MediaUnreadable`` (no video stream, or ffmpeg failed) or
    ``BadInput`` (impossible layout)."""
    if tiles < 1 or columns < 1 or width < 16 or tiles > 400:
        raise BadInput("a contact sheet needs 1-400 tiles, at least 1 column and a width of at least 16 pixels")
    with _as_file(source) as path:
        info = probe(path, tools)
        videos = [s for s in info["streams"] if s["type"] == "video" and not s.get("attached_pic")]
        if not videos:
            raise MediaUnreadable(path, "it has no video stream to draw frames from")
        duration = info.get("duration_us") or videos[0].get("duration_us") or 0
        start_us = info.get("start_time_us", 0)
        times = [duration * (2 * i + 1) // (2 * tiles) for i in range(tiles)] if duration > 0 else [0]
        columns = min(columns, len(times))
        rows = -(-len(times) // columns)
        destination = Path(out_png)
        fd, temporary = tempfile.mkstemp(prefix=".sheet-", suffix=".png", dir=destination.parent or ".")
        os.close(fd)
        try:
            labelled = True
            try:
                _render_sheet(path, temporary, times, start_us, width, columns, rows, True, tools)
            except MediaUnreadable as exc:
                if "font" not in exc.detail.lower():
                    raise
                labelled = False
                _render_sheet(path, temporary, times, start_us, width, columns, rows, False, tools)
            data = Path(temporary).read_bytes()
            try:
                sheet_width, sheet_height = _png_size(data)
            except ValueError as exc:
                raise MediaUnreadable(path, "ffmpeg did not write a PNG") from exc
            texts = {
                "Title": "custody contact sheet",
                "Source": title or os.path.basename(path),
                "Tiles": "; ".join(f"{i + 1}: {format_time(t)}" for i, t in enumerate(times)),
            }
            Path(temporary).write_bytes(_png_with_text(data, texts))
            os.replace(temporary, destination)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return ContactSheet(os.fspath(out_png), sheet_width, sheet_height, times, labelled)


def _render_sheet(path: str, out: str, times: list[int], start_us: int, width: int, columns: int, rows: int,
                  labelled: bool, tools: MediaTools) -> None:
    graph = _sheet_graph(_input_url(path), times, start_us, width, columns, rows, labelled)
    output = graph.output(out, vframes=1, copyts=None, loglevel="error", f="image2", vcodec="png")
    try:
        output.run(cmd=tools.ffmpeg, capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as exc:
        raise MediaUnreadable(path, _tail(exc.stderr or b"", path)) from exc
    except OSError as exc:
        raise MediaToolsMissing(tools.ffmpeg, f"cannot run {tools.ffmpeg!r}: {exc.strerror or exc}") from exc


@contextmanager
def _as_file(source: str | os.PathLike[str] | BinaryIO) -> Iterator[str]:
    if isinstance(source, (str, os.PathLike)):
        yield os.fspath(source)
        return
    with tempfile.NamedTemporaryFile(prefix="custody-media-", suffix=".bin") as copy:
        shutil.copyfileobj(source, copy, 8 << 20)
        copy.flush()
        yield copy.name


@contextmanager
def stored_file(store: ObjectStore, key: str, version: str | None = None) -> Iterator[str]:
    """A local path holding a stored object's exact bytes: the local store's own file, else a
    temporary copy (removed afterwards). ffmpeg needs a seekable file."""
    local_path = getattr(store, "local_path", None)
    if local_path is not None:
        yield os.fspath(local_path(key, version))
        return
    with store.open(key, version) as stream, _as_file(stream) as path:
        yield path


# ---------------------------------------------------------------------------------------------
# operations on the workspace (custody.home.Workspace)


def _preserved(workspace: Any, ref: str) -> tuple[str, Any]:
    from custody.evidence.verify import resolve

    resolved = resolve(workspace.ledger, ref)
    row = workspace.ledger.evidence_row(resolved.blake3) if resolved.blake3 else None
    if row is None:
        raise BadInput(f"{printable_path(ref)}: not a preserved object (BLAKE3 {resolved.blake3})")
    return str(row["blake3"]), row


def ingest_event(ledger: Any, row: Any) -> Any:
    """The ``ingested`` event that first recorded an evidence row."""
    return next(ledger.events(evidence=row["blake3"], start=row["first_seq"]))


def recorded_packet_list(workspace: Any, ref: str, tools: MediaTools = DEFAULT_TOOLS) -> tuple[str, bytes, str]:
    """(BLAKE3, packet list, where it came from) for a preserved object: the list stored at
    ingest, checked against the SHA-256 recorded in the ingest event (``IntegrityFailure`` if
    it is missing or altered), or, when none was recorded, one made now from the stored bytes."""
    blake3, row = _preserved(workspace, ref)
    event = ingest_event(workspace.ledger, row)
    attachment = (event.details.get("attachments") or {}).get("packets")
    if attachment is None:
        with stored_file(workspace.store, row["store_key"], row["version"]) as path:
            data = packet_hashes(path, tools)
        return blake3, data, "made now from the stored original (none was recorded at ingest)"
    key = attachment["key"]
    try:
        with workspace.store.open(key) as stream:
            data = stream.read()
    except ObjectNotFound as exc:
        raise IntegrityFailure([Finding("missing", key, f"the packet list recorded in event {event.seq} is missing")]) from exc
    except (OSError, StorageError) as exc:
        raise IntegrityFailure([Finding("unreadable", key, f"the packet list could not be read: {exc}")]) from exc
    found = hashlib.sha256(data).hexdigest()
    if found != attachment["sha256"]:
        raise IntegrityFailure([Finding(
            "mismatch", key, f"the stored packet list no longer has the SHA-256 recorded in event {event.seq}",
            "sha256", attachment["sha256"], found,
        )])
    return blake3, data, f"{key} (SHA-256 checked against event {event.seq})"


def verify_clip_against(workspace: Any, clip: str, ref: str, tools: MediaTools = DEFAULT_TOOLS) -> ClipReport:
    """``verify_clip`` of a file against a preserved object's packet list, recorded as a
    ``verified`` event about the original (with the clip's digests, the outcome and the range)."""
    from custody.evidence.hashing import hash_file

    if not os.path.isfile(clip):
        raise BadInput(f"{printable_path(clip)}: no such file")
    blake3, original, source = recorded_packet_list(workspace, ref, tools)
    report = verify_clip(clip, original, tools)
    report.original = blake3
    report.packet_list_source = source
    try:
        digests = hash_file(clip)
    except OSError as exc:
        raise BadInput(f"{printable_path(clip)}: cannot read: {exc.strerror}") from exc
    details = {
        "what": "clip",
        "ok": report.derived,
        "clip": {"name": printable_path(os.path.basename(clip)), "blake3": digests.blake3,
                 "sha256": digests.sha256, "size": digests.size},
        "range": report.as_dict()["range"],
        "findings": [f.as_dict() for f in report.findings],
    }
    workspace.ledger.append(
        "verified", actor=workspace.settings.actor, role=workspace.settings.role,
        subject={"evidence": blake3}, details=details,
    )
    workspace.seal()
    return report


def sheet_of(workspace: Any, ref: str, out_png: str, *, tiles: int = 12, columns: int = 4, width: int = 320,
             tools: MediaTools = DEFAULT_TOOLS) -> ContactSheet:
    """A contact sheet of a preserved video (from the stored bytes), recorded as ``viewed``."""
    blake3, row = _preserved(workspace, ref)
    with stored_file(workspace.store, row["store_key"], row["version"]) as path:
        try:
            sheet = contact_sheet(path, out_png, tiles=tiles, columns=columns, width=width,
                                  title=f"BLAKE3 {blake3}", tools=tools)
        except MediaUnreadable as exc:
            raise MediaUnreadable(f"preserved object {blake3}", exc.detail.replace(os.path.basename(path), blake3[:16])) from exc
    png = Path(out_png).read_bytes()
    workspace.ledger.append(
        "viewed", actor=workspace.settings.actor, role=workspace.settings.role, subject={"evidence": blake3},
        details={"what": "contact-sheet", "tiles": len(sheet.times_us),
                 "output": {"name": printable_path(os.path.basename(out_png)),
                            "sha256": hashlib.sha256(png).hexdigest(), "size": len(png)}},
    )
    workspace.seal()
    return sheet


@dataclass
class Derived:
    """The ingest of a derivative and the derivation recorded with it."""

    result: IngestResult
    derived_from: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.result.as_dict(), "derived_from": self.derived_from}


def derive(workspace: Any, path: str, ref: str, *, tool: str, params: str, note: str | None = None,
           inspector: MediaInspector | None = None) -> Derived:
    """Ingest ``path`` as a derivative (redacted or transcoded copy) of the preserved object
    ``ref``: its ingest event's ``derived_from`` names the parent's BLAKE3 and SHA-256, the tool
    and its parameters. Bytes that are already preserved are recorded as another acquisition,
    without a derivation: that is ``BadInput``, after the acquisition is recorded."""
    from custody.evidence.ingest import ingest_paths

    if not os.path.isfile(path):
        raise BadInput(f"{printable_path(path)}: not a regular file")
    parent, row = _preserved(workspace, ref)
    derivation = {"parent": parent, "parent_sha256": str(row["sha256"]), "tool": _clean(tool), "params": _clean(params)}
    inspector = inspector or MediaInspector()
    results = ingest_paths(workspace, [path], derivation=derivation, inspector=inspector, note=note)
    inspector.annotate(results)
    result = results[0]
    if result.status == "already-stored":
        raise BadInput(
            f"{printable_path(path)}: these bytes are already preserved (BLAKE3 {result.blake3}); the acquisition "
            f"was recorded as event {result.seq}, but not as derived from {parent}"
        )
    if result.status != "recorded":
        raise BadInput(f"{result.path}: {result.status}: {result.reason}")
    return Derived(result, derivation)
