"""Making a packet list (``custody.media.packets``) of a file with ffprobe.

How it is computed: ffprobe lists every packet with its byte position and an Adler-32 of the
demuxed data; the SHA-256 of the bytes at that position is taken here (OpenSSL, in a thread
pool, while ffprobe is still running; several times faster than ffmpeg's own SHA-256), and used
only if the Adler-32 of those bytes equals ffprobe's for every packet, i.e. the file holds each
packet's data as one contiguous run (true of MP4/MOV). Otherwise (MPEG-TS, laced Matroska,
parsed streams), or when a position is unknown, ffprobe hashes the packets itself
(``-show_data_hash sha256``); both ways give the same lines.

ffprobe prints JSON (``-of json``), read while it runs: every key and value is escaped, so tags a
file carries cannot pass for packets or fields. At ingest, the same run also prints the program
version, the format and the streams (``probe_and_list``), so a file costs one ffprobe start.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import mmap
import os
import re
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from custody.media.packets import Packet, PacketList, StreamInfo
from custody.media.probe import describe
from custody.media.tools import (
    DEFAULT_TOOLS,
    MediaTools,
    MediaToolsMissing,
    MediaUnreadable,
    _input_url,
    _tail,
    _us,
    _version_in,
)

class ProbeRunFailed(MediaUnreadable):
    """ffprobe itself exited with an error: it cannot open or read the file at all."""


class _PositionsUnusable(Exception):
    """The file does not hold some packet's data contiguously at its reported position."""


_SECTION_OF = {"packets": "packet", "streams": "stream"}
_VALUE_LIMIT = 16 << 20


class _JsonReader:
    """ffprobe's ``-of json`` output, decoded as it arrives: the text of the one top-level
    object, consumed from the front. ``value()`` decodes the next JSON value whole (waiting for
    more text while it is incomplete); a value over 16 MiB, or output that ends early or is not
    JSON, is a ``ValueError``."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._text = ""
        self._at = 0
        self._ended = False
        self._decode = json.JSONDecoder().raw_decode

    def _more(self) -> bool:
        if self._ended:
            return False
        if self._at > (1 << 20):
            self._text, self._at = self._text[self._at:], 0
        chunk = next(self._chunks, None)
        if chunk is None:
            self._ended = True
            self._text += self._decoder.decode(b"", final=True)
        else:
            self._text += self._decoder.decode(chunk)
        return True

    def peek(self) -> str:
        """The next character that is not white space or a comma ("" at the end)."""
        while True:
            while self._at < len(self._text) and self._text[self._at] in " \t\r\n,":
                self._at += 1
            if self._at < len(self._text):
                return self._text[self._at]
            if not self._more():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} in ffprobe's JSON at {self._text[self._at:self._at + 40]!r}")
        self._at += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                found, end = self._decode(self._text, self._at)
            except json.JSONDecodeError:
                pending = len(self._text) - self._at
                if pending > _VALUE_LIMIT:
                    raise ValueError("ffprobe printed a value over 16 MiB") from None
                # decode again once the pending text has doubled (or at the end): linear overall
                grew = False
                while len(self._text) - self._at < 2 * pending + 1 and self._more():
                    grew = True
                if not grew:
                    raise
                continue
            self._at = end
            return found


def _records(chunks: Iterable[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """ffprobe's ``-of json`` output as (section, fields) while it arrives: ``packet`` and
    ``stream`` for each element of ``packets`` and ``streams``, and ``format`` and
    ``program_version``. JSON escapes every key and value, so nothing a file's tags hold can
    pass for another field or section."""
    reader = _JsonReader(chunks)
    reader.expect("{")
    while reader.peek() not in ("}", ""):
        key = reader.value()
        reader.expect(":")
        if key in _SECTION_OF and reader.peek() == "[":
            reader.expect("[")
            while reader.peek() not in ("]", ""):
                item = reader.value()
                if isinstance(item, dict):
                    yield _SECTION_OF[key], item
            reader.expect("]")
        else:
            item = reader.value()
            if isinstance(item, dict):
                yield str(key), item
    reader.expect("}")


@dataclass
class _ProbeRun:
    records: Iterator[tuple[str, dict[str, Any]]]
    warnings: list[str] = field(default_factory=list)


def _follow(process: subprocess.Popen[bytes], output: int) -> Iterator[bytes]:
    """What ``process`` writes into the file open on descriptor ``output``, in large chunks,
    as it grows, until the process has exited. Read with ``pread`` at an offset of its own, so
    the file offset the process writes at (shared with ``output``) is never moved. Polling a
    file instead of reading a pipe lets the process run at full speed and keeps this thread off
    the GIL while hashing threads run."""
    offset = 0
    while True:
        chunk = os.pread(output, 1 << 20, offset)
        if chunk:
            offset += len(chunk)
            yield chunk
        elif process.poll() is not None:
            while chunk := os.pread(output, 1 << 20, offset):
                offset += len(chunk)
                yield chunk
            return
        else:
            time.sleep(0.005)


_STDERR_READ = 64 << 10
_PACKET_ENTRIES = "packet=stream_index,pts,dts,duration,size,pos,flags,data_hash"


@contextmanager
def _ffprobe_packets(path: str, tools: MediaTools, data_hash: str, describe: bool) -> Iterator[_ProbeRun]:
    """Run ffprobe over every packet; its records arrive while it runs (``describe``: with its
    version, the whole format and every stream, as ``probe`` asks for them). On leaving, raises
    ``MediaUnreadable`` if ffprobe failed, else puts what it printed on stderr in ``warnings``.

    ffprobe writes into unnamed temporary files (``tempfile.TemporaryFile``: made with
    ``O_TMPFILE``, or unlinked the moment they are made where the filesystem lacks it; they
    vanish with their last descriptor), so nothing is left behind however this process ends: a
    probe abandoned in a background thread when the process exits, a kill, a crash."""
    program = tools.ffprobe
    entries = _PACKET_ENTRIES if describe else _PACKET_ENTRIES + ":stream=index,codec_type,codec_name,time_base" \
        ":format=start_time"
    shown = ["-show_program_version", "-show_format", "-show_streams"] if describe else []
    args = [program, "-v", "error", *shown, "-show_entries", entries, "-show_data_hash", data_hash, "-of", "json",
            _input_url(path)]
    with tempfile.TemporaryFile(prefix="custody-ffprobe-") as sink, \
            tempfile.TemporaryFile(prefix="custody-ffprobe-") as errors:
        try:
            process = subprocess.Popen(args, stdout=sink, stderr=errors, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise MediaToolsMissing(program, f"cannot run {program!r}: {exc.strerror or exc}") from exc
        run = _ProbeRun(_records(_follow(process, sink.fileno())))
        finished = False
        try:
            yield run
            finished = True
        finally:
            if not finished:
                process.kill()
            code = process.wait()
        size = os.fstat(errors.fileno()).st_size
        message = os.pread(errors.fileno(), _STDERR_READ, max(0, size - _STDERR_READ))
    if code != 0:
        raise ProbeRunFailed(path, _tail(message, path))
    if message.strip():
        run.warnings.append(_tail(message, path))


_BATCH_BYTES = 8 << 20
_BATCH_PACKETS = 512


def _listing(path: str, tools: MediaTools, *, from_file: bool, describe: bool = False) -> tuple[PacketList, dict[str, Any]]:
    """One ffprobe run over every packet. ``from_file``: ffprobe gives each packet's position
    and Adler-32, and the SHA-256 of the file's bytes there is taken here, in a thread pool
    (hashlib and zlib release the GIL); else ffprobe's own SHA-256 is used. Returns the list
    and, with ``describe``, what ``probe.describe`` reads (program version, format, streams)."""
    listing = PacketList({}, [])
    raw: dict[str, Any] = {"streams": []}
    with open(path, "rb") as handle, \
            _ffprobe_packets(path, tools, "adler32" if from_file else "sha256", describe) as run:
        size = os.fstat(handle.fileno()).st_size
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size and from_file else None
        try:
            with memoryview(mapped if mapped is not None else b"") as view:
                if from_file:
                    _hash_from_file(path, run, view, listing, raw)
                else:
                    for name, fields in run.records:
                        if name == "packet":
                            header, _, digest = _packet_fields(path, fields)
                            if not digest.upper().startswith("SHA256:") or len(digest) != 71:
                                raise MediaUnreadable(path, f"ffprobe printed no SHA-256 for a packet ({digest!r})")
                            listing.packets.append(Packet(*header, digest[7:].lower()))
                        else:
                            _other_record(name, fields, listing, raw)
        finally:
            if mapped is not None:
                mapped.close()
    listing.warnings = run.warnings
    listing.tool = (_version_in(raw, tools.ffprobe) if describe else None) or tools.version(tools.ffprobe)
    return listing, raw


def _hash_from_file(path: str, run: _ProbeRun, view: memoryview, listing: PacketList, raw: dict[str, Any]) -> None:
    headers: list[tuple[int, int | None, int | None, int | None, int, str]] = []
    futures: list[Future[list[str]]] = []
    batch: list[tuple[int, int, str]] = []
    batch_bytes = 0
    pool = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)))
    try:
        for name, fields in run.records:
            if name != "packet":
                _other_record(name, fields, listing, raw)
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


def _other_record(name: str, fields: dict[str, Any], listing: PacketList, raw: dict[str, Any]) -> None:
    if name == "stream":
        tb = str(fields.get("time_base", ""))
        index = int(fields["index"])
        listing.streams[index] = StreamInfo(
            index,
            str(fields.get("codec_type") or "unknown"),
            str(fields.get("codec_name") or "unknown"),
            Fraction(tb) if re.fullmatch(r"\d+/[1-9]\d*", tb) else Fraction(1),
        )
        raw["streams"].append(fields)
    elif name == "format":
        listing.start_time_us = _us(fields.get("start_time")) or 0
        raw["format"] = fields
    elif name == "program_version":
        raw["program_version"] = fields


def _packet_fields(
    path: str, fields: dict[str, Any]
) -> tuple[tuple[int, int | None, int | None, int | None, int, str], int | None, str]:
    """((stream, dts, pts, duration, size, flags), position or None, ffprobe's data_hash)."""
    def number(name: str) -> int | None:
        value = fields.get(name, "N/A")
        return None if value == "N/A" else int(value)  # JSON: a number or a decimal string

    size = number("size")
    stream = number("stream_index")
    if size is None or stream is None:
        raise MediaUnreadable(path, f"ffprobe printed a packet without stream or size: {fields!r}")
    header = (stream, number("dts"), number("pts"), number("duration"), size, str(fields.get("flags", "")))
    return header, number("pos"), str(fields.get("data_hash", ""))


def packet_list(path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS) -> PacketList:
    """Every packet of ``path`` with its SHA-256 (format: ``custody.media.packets``; how: this module's docstring).

    Raises ``MediaToolsMissing`` or ``MediaUnreadable`` (ffprobe failed); what ffprobe
    reported without failing is in ``warnings``."""
    name = os.fspath(path)
    try:
        try:
            return _listing(name, tools, from_file=True)[0]
        except _PositionsUnusable:
            return _listing(name, tools, from_file=False)[0]
    except OSError as exc:
        raise MediaUnreadable(name, f"cannot read: {exc.strerror or exc}") from exc
    except (ValueError, KeyError) as exc:
        raise MediaUnreadable(name, f"ffprobe printed unexpected output: {exc!r}") from exc


def probe_and_list(path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS) -> tuple[dict[str, Any], PacketList]:
    """``probe`` and ``packet_list`` of ``path`` from one ffprobe run (two where the packets'
    positions cannot be used, as in ``packet_list``): the same results as calling both.

    Raises ``MediaToolsMissing`` or ``MediaUnreadable`` (ffprobe failed, or printed what cannot
    be read)."""
    name = os.fspath(path)
    try:
        try:
            listing, raw = _listing(name, tools, from_file=True, describe=True)
        except _PositionsUnusable:
            listing, raw = _listing(name, tools, from_file=False, describe=True)
    except OSError as exc:
        raise MediaUnreadable(name, f"cannot read: {exc.strerror or exc}") from exc
    except (ValueError, KeyError) as exc:
        raise MediaUnreadable(name, f"ffprobe printed unexpected output: {exc!r}") from exc
    return describe(raw, name, tools), listing


def packet_hashes(path: str | os.PathLike[str], tools: MediaTools = DEFAULT_TOOLS) -> bytes:
    """The packet list of ``path`` in the ``custody-packets v1`` format."""
    return packet_list(path, tools).render()
