"""``verify_clip``: is a clip, stream by stream, a contiguous run of an original's packets, and
which time range of the original does it cover?"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from custody.errors import Finding, FindingKind
from custody.ledger.canonical import printable_path
from custody.media.listing import packet_list
from custody.media.packets import Packet, PacketList
from custody.media.tools import DEFAULT_TOOLS, MediaTools, MediaUnreadable, format_time

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

    def _finding(self, kind: FindingKind, message: str, **extra: Any) -> None:
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
            FindingKind.ALTERED,
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
                    FindingKind.ALTERED,
                    f"original packets {expected}-{q - 1} ({start}-{end}) were replaced by {len(unknown)} "
                    f"packet(s) that are not in the original (clip packets {unknown[0]}-{unknown[-1]})",
                    original_packets=[expected, q - 1], clip_packets=[unknown[0], unknown[-1]], start=start, end=end,
                )
            else:
                self._finding(
                    FindingKind.GAP,
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
                FindingKind.OUT_OF_ORDER,
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
        report.findings.append(Finding(FindingKind.UNREADABLE, shown, f"cannot be read as audio or video: {exc.detail}"))
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
                FindingKind.NOT_DERIVED, shown,
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
        report.findings.append(Finding(FindingKind.EMPTY, shown, "the clip has no packets"))
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
                        FindingKind.MISALIGNED, shown,
                        f"clip streams {a.clip_stream} and {b.clip_stream} come from disjoint times of the original "
                        f"({format_time(a.start_us)}-{format_time(a.end_us)} and "
                        f"{format_time(b.start_us)}-{format_time(b.end_us)})",
                    ))
    report.original_streams_not_in_clip = sorted(set(listing.streams) - used)
    report.derived = not report.findings and bool(matched)
    return report
