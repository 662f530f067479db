"""The probe and the packet list of a file demuxed in this process with PyAV (FFmpeg's
libavformat), without starting ffprobe.

Why: an ffprobe start costs about 100 ms of CPU on a small machine, most of a bulk ingest of
short clips; demuxing here costs a few milliseconds a clip. The packet lines are those
ffprobe prints (``custody.media.packets``): each packet's stream, dts, pts, duration, size and
the SHA-256 of its data exactly as demuxed. ``flags`` are printed as the libavformat in use
prints them (three characters, ``K``/``D``/``C``, as ffprobe 6 and later do); the list's
``#tool:`` line names it (``PyAV 18.1.0 (FFmpeg 8.1.2)``). tests/integration/test_media_inprocess.py
proves the lines equal to ffprobe's on every container and codec the tests make, with one known
difference between libavformat versions: where an MP4 edit list ends inside a stream's last
packet (a clip cut with ``-c copy``), FFmpeg 5 shortens that packet's duration and later
versions do not. The packet, its bytes and its hash are the same.

The probe (``custody.media.probe.describe``) is fed the fields ffprobe would print, read from
the same demuxer: container, streams, durations, rates, tags. Values a newer libavformat adds
or drops (e.g. the ``vendor_id`` tag of MP4 tracks) follow the library named in ``tool``.

Only a clean demux is used. Anything else returns None and the caller falls back to ffprobe,
which also gives today's words for what is wrong: a file libavformat cannot open, an error
logged while demuxing (a damaged or truncated file), and an MP4/MOV whose track matrix is not
the identity (a display rotation, which PyAV does not expose).
"""

from __future__ import annotations

import hashlib
import os
import struct
from fractions import Fraction
from typing import Any

from custody.media.packets import Packet, PacketList, StreamInfo
from custody.media.probe import describe

_ATTACHED_PIC = 0x0400  # AV_DISPOSITION_ATTACHED_PIC
_FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
_IDENTITY = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_MOOV_LIMIT = 64 << 20
_logging_set = False


def available() -> bool:
    """Whether PyAV can be imported."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def tool_name() -> str:
    import av

    return f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})"


def _seconds(ts: int | None, time_base: Fraction | None) -> str | None:
    """As ffprobe prints a time: the timestamp times the time base as a double, ``%f``."""
    if ts is None or time_base is None:
        return None
    return "%f" % (ts * (time_base.numerator / time_base.denominator))


def _fourcc(tag: Any) -> str:
    """A codec tag as ffprobe's ``codec_tag_string`` (av_fourcc_make_string)."""
    codes = [ord(c) for c in tag] if isinstance(tag, str) else list(struct.pack("<I", int(tag or 0)))
    out = []
    for code in codes[:4] + [0] * (4 - len(codes[:4])):
        ch = chr(code)
        printable = ch.isascii() and (ch.isalnum() or (code and ch in ". -_"))
        out.append(ch if printable else f"[{code}]")
    return "".join(out)


def _ratio(value: Fraction | None, sep: str = "/") -> str | None:
    if value is None:
        return None
    return f"{value.numerator}{sep}{value.denominator}"


def _valid(value: Any) -> Fraction | None:
    try:
        fraction = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return fraction if fraction > 0 else None


def _stream_fields(stream: Any) -> dict[str, Any]:
    context = stream.codec_context
    codec = context.codec if context is not None else None
    fields: dict[str, Any] = {"index": stream.index, "codec_type": stream.type}
    if codec is not None:
        fields["codec_name"] = codec.canonical_name
        fields["codec_long_name"] = codec.long_name
    if context is not None:
        profile = context.profile
        if isinstance(profile, str) and profile:
            fields["profile"] = profile
        fields["codec_tag_string"] = _fourcc(context.codec_tag)
        if context.bit_rate:
            fields["bit_rate"] = str(context.bit_rate)
    if stream.time_base is not None:
        fields["time_base"] = _ratio(stream.time_base)
    if stream.type == "video" and context is not None:
        fields["width"], fields["height"] = context.width, context.height
        for key, value in (("r_frame_rate", getattr(stream, "base_rate", None)), ("avg_frame_rate", stream.average_rate)):
            rate = _valid(value)
            if rate is not None:
                fields[key] = _ratio(rate)
        if context.pix_fmt:
            fields["pix_fmt"] = context.pix_fmt
        sar = _valid(getattr(stream, "sample_aspect_ratio", None)) or _valid(context.sample_aspect_ratio)
        if sar is not None and context.width and context.height:
            fields["sample_aspect_ratio"] = _ratio(sar, ":")
            fields["display_aspect_ratio"] = _ratio(Fraction(context.width * sar.numerator, context.height * sar.denominator), ":")
        order = _FIELD_ORDERS.get(int(getattr(context, "field_order", 0) or 0))
        if order:
            fields["field_order"] = order
    elif stream.type == "audio" and context is not None:
        fields["sample_rate"] = str(context.sample_rate)
        fields["channels"] = context.channels
        if context.layout is not None and context.layout.name:
            fields["channel_layout"] = context.layout.name
        if context.format is not None:
            fields["sample_fmt"] = context.format.name
    if int(stream.disposition) & _ATTACHED_PIC:
        fields["disposition"] = {"attached_pic": 1}
    if stream.frames:
        fields["nb_frames"] = str(stream.frames)
    for key, ts in (("duration", stream.duration), ("start_time", stream.start_time)):
        text = _seconds(ts, stream.time_base)
        if text is not None:
            fields[key] = text
    if stream.metadata:
        fields["tags"] = dict(stream.metadata)
    return fields


def _format_fields(container: Any, size: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"format_name": container.format.name, "format_long_name": container.format.long_name,
                              "size": str(size)}
    micro = Fraction(1, 1_000_000)
    for key, ts in (("duration", container.duration), ("start_time", container.start_time)):
        text = _seconds(ts, micro)
        if text is not None:
            fields[key] = text
    if container.bit_rate:
        fields["bit_rate"] = str(container.bit_rate)
    if container.metadata:
        fields["tags"] = dict(container.metadata)
    return fields


def _boxes(data: bytes | memoryview, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO BMFF boxes in ``data[start:end]``."""
    found = []
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1 and start + 16 <= end:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            break
        found.append((bytes(kind), start + header, start + size))
        start += size
    return found


def _rotated_mp4(path: str) -> bool:
    """True when an MP4/MOV track header carries a matrix other than the identity (a display
    rotation or flip), or when that cannot be told cheaply: such files go to ffprobe."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        offset = 0
        while offset + 8 <= size:
            handle.seek(offset)
            head = handle.read(16)
            box, kind = struct.unpack_from(">I4s", head)
            header = 8
            if box == 1 and len(head) == 16:
                box, header = struct.unpack_from(">Q", head, 8)[0], 16
            elif box == 0:
                box = size - offset
            if box < header:
                return True
            if kind == b"moov":
                if box > _MOOV_LIMIT:
                    return True
                handle.seek(offset + header)
                moov = handle.read(box - header)
                for trak_kind, t0, t1 in _boxes(moov, 0, len(moov)):
                    if trak_kind != b"trak":
                        continue
                    for kind2, h0, h1 in _boxes(moov, t0, t1):
                        if kind2 == b"tkhd":
                            at = h0 + (52 if moov[h0] == 1 else 40)
                            if h1 < at + 36 or moov[at:at + 36] != _IDENTITY:
                                return True
                return False
            offset += box
    return False


def probe_and_list(path: str) -> tuple[dict[str, Any], PacketList] | None:
    """``custody.media.listing.probe_and_list`` done in this process; None when the file must
    go to ffprobe instead (see the module docstring). Never raises for a file."""
    global _logging_set
    try:
        import av
        import av.logging
    except ImportError:
        return None
    if not _logging_set:
        av.logging.set_level(av.logging.ERROR)  # so that errors while demuxing are seen
        _logging_set = True
    try:
        with av.logging.Capture(local=True) as logs:
            with av.open(path, mode="r") as container:
                if container.format.name.split(",")[0] == "mov" and _rotated_mp4(path):
                    return None
                listing = PacketList({}, [])
                raw: dict[str, Any] = {"format": _format_fields(container, os.path.getsize(path)), "streams": []}
                for stream in container.streams:
                    fields = _stream_fields(stream)
                    raw["streams"].append(fields)
                    time_base = stream.time_base if stream.time_base is not None else Fraction(1)
                    listing.streams[stream.index] = StreamInfo(
                        stream.index, stream.type or "unknown", fields.get("codec_name") or "unknown", Fraction(time_base)
                    )
                listing.start_time_us = container.start_time or 0
                append = listing.packets.append
                for packet in container.demux():
                    size = packet.size
                    if not size and packet.dts is None and packet.pts is None:
                        continue  # the empty packet PyAV yields per stream at the end
                    flags = ("K" if packet.is_keyframe else "_") + ("D" if packet.is_discard else "_") \
                        + ("C" if packet.is_corrupt else "_")
                    append(Packet(packet.stream.index, packet.dts, packet.pts, packet.duration or None, size, flags,
                                  hashlib.sha256(packet).hexdigest()))
    except (av.error.FFmpegError, OSError, ValueError, TypeError, AttributeError, struct.error):
        return None
    if any(log[0] <= av.logging.ERROR for log in logs):
        return None
    tool = tool_name()
    listing.tool = tool
    return describe(raw, path, tool=tool), listing
