"""The packet hash list: one line per demuxed packet with the SHA-256 of its data.

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

How a list is made from a file is ``custody.media.listing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from custody.media.tools import PacketListInvalid

PACKET_FORMAT = "custody-packets v1"
PACKET_COLUMNS = "#stream,dts,pts,duration,size,flags,sha256"


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
