"""Contact sheets: one frame at or just after each of N evenly spaced times, scaled, labelled with
its presentation time (``drawtext`` with fontconfig's default font) and tiled into one PNG. If
drawtext cannot find a font, the tiles are drawn without labels. Either way, the PNG carries
``tEXt`` chunks: ``Title``, ``Source`` and ``Tiles`` (each tile's requested time, row by row).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ffmpeg  # type: ignore[import-untyped]  # ffmpeg-python ships no type information

from custody.errors import BadInput
from custody.media.probe import probe
from custody.media.tools import DEFAULT_TOOLS, MediaTools, MediaToolsMissing, MediaUnreadable, _input_url, _tail, format_time

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
