"""``probe``: what ffprobe says of a file (container, streams, device tags, GPS), as ledger-ready
values, from one ffprobe start."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import ffmpeg  # type: ignore[import-untyped]  # ffmpeg-python ships no type information

from custody.media.tools import (
    DEFAULT_TOOLS,
    MediaTools,
    MediaToolsMissing,
    MediaUnreadable,
    _clean,
    _input_url,
    _int,
    _json_or_none,
    _tail,
    _us,
    _version_in,
)

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
    return describe(raw, path, tools)


def describe(
    raw: Any, path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS, *, tool: str | None = None
) -> dict[str, Any]:
    """``probe``'s result from what ffprobe printed with ``-show_program_version -show_format
    -show_streams -of json`` (``raw``: the parsed JSON; packets in it are ignored). ``tool``
    names what read the file when it was not ffprobe (``custody.media.inprocess``)."""
    program = tools.ffprobe
    version = tool or _version_in(raw, program) or tools.version(program)
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
