"""Making a packet list (``custody.media.packets``) of a file with ffprobe.

How it is computed: ffprobe lists every packet with its byte position and an Adler-32 of the
demuxed data; the SHA-256 of the bytes at that position is taken here (OpenSSL, in a thread
pool, while ffprobe is still running; several times faster than ffmpeg's own SHA-256), and used
only if the Adler-32 of those bytes equals ffprobe's for every packet, i.e. the file holds each
packet's data as one contiguous run (true of MP4/MOV). Otherwise (MPEG-TS, laced Matroska,
parsed streams), or when a position is unknown, ffprobe hashes the packets itself
(``-show_data_hash sha256``); both ways give the same lines.
"""

from __future__ import annotations

import hashlib
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

from custody.media.packets import Packet, PacketList, StreamInfo
from custody.media.tools import DEFAULT_TOOLS, MediaTools, MediaToolsMissing, MediaUnreadable, _input_url, _tail, _us

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


@contextmanager
def _ffprobe_packets(path: str, tools: MediaTools, data_hash: str) -> Iterator[_ProbeRun]:
    """Run ffprobe over every packet; its records arrive while it runs. On leaving, raises
    ``MediaUnreadable`` if ffprobe failed, else puts what it printed on stderr in ``warnings``.

    ffprobe writes into unnamed temporary files (``tempfile.TemporaryFile``: made with
    ``O_TMPFILE``, or unlinked the moment they are made where the filesystem lacks it; they
    vanish with their last descriptor), so nothing is left behind however this process ends: a
    probe abandoned in a background thread when the process exits, a kill, a crash."""
    program = tools.ffprobe
    args = [
        program, "-v", "error",
        "-show_entries",
        "packet=stream_index,pts,dts,duration,size,pos,flags,data_hash:stream=index,codec_type,codec_name,time_base"
        ":format=start_time",
        "-show_data_hash", data_hash, "-of", "compact", _input_url(path),
    ]
    with tempfile.TemporaryFile(prefix="custody-ffprobe-") as sink, \
            tempfile.TemporaryFile(prefix="custody-ffprobe-") as errors:
        try:
            process = subprocess.Popen(args, stdout=sink, stderr=errors, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise MediaToolsMissing(program, f"cannot run {program!r}: {exc.strerror or exc}") from exc
        run = _ProbeRun(_records(_lines(_follow(process, sink.fileno()))))
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
    """Every packet of ``path`` with its SHA-256 (format: ``custody.media.packets``; how: this module's docstring).

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
