"""Coverage of an incident: which stretches of time the preserved recordings cover, per officer
and camera, where a camera stopped and started again (gaps), and where two cameras recorded at
the same time (overlaps), so that a prosecutor sees at a glance whether footage is missing.

A recording covers ``[start, start + duration)``: the start its ingest event names
(``recorded``: the camera's own creation time, a vendor's sidecar, or the file's modification
time, the source carried along) and the duration ffprobe measured. Its officer and camera are
those its link to the incident records (``custody ingest --incident --camera --officer``,
``custody link``); without a camera on the link, the serial number the camera wrote into the file.

A track is one (officer, camera). Recordings of a track that touch, or are separated by no more
than ``join`` (cameras split long recordings into files a few frames apart), form one range;
a longer pause is a gap. Overlaps are the stretches where ranges of different cameras intersect;
``uncovered`` are the stretches between the first start and the last end that no camera covers.
Recordings with no known duration (not audio or video) are listed as ``untimed``, never guessed.
Objects linked to the incident that were disposed of are not preserved and not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TYPE_CHECKING

from custody.cases.incident_state import require_incident
from custody.media.recorded import iso_utc, parse_time

if TYPE_CHECKING:
    from custody.ledger.database import Ledger

JOIN = timedelta(seconds=1)


@dataclass(frozen=True)
class Recording:
    blake3: str
    name: str
    officer: str | None
    camera: str | None
    start: datetime | None
    duration_us: int | None
    source: str | None

    @property
    def end(self) -> datetime | None:
        if self.start is None or self.duration_us is None:
            return None
        return self.start + timedelta(microseconds=self.duration_us)

    def as_dict(self) -> dict[str, Any]:
        return {
            "blake3": self.blake3, "name": self.name, "officer": self.officer, "camera": self.camera,
            "start": iso_utc(self.start) if self.start else None, "end": iso_utc(self.end) if self.end else None,
            "duration_ms": self.duration_us // 1000 if self.duration_us is not None else None,
            "start_source": self.source,
        }


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    @property
    def ms(self) -> int:
        return (self.end - self.start) // timedelta(milliseconds=1)

    def as_dict(self) -> dict[str, Any]:
        return {"start": iso_utc(self.start), "end": iso_utc(self.end), "duration_ms": self.ms}


@dataclass
class Track:
    officer: str | None
    camera: str | None
    recordings: list[Recording] = field(default_factory=list)
    ranges: list[Span] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)
    conflicts: list[tuple[Span, Recording, Recording]] = field(default_factory=list)
    """Stretches two recordings of the same camera both claim: one camera records one file at
    a time, so a wrong clock, a wrong link or the same footage twice (re-encoded)."""

    @property
    def label(self) -> str:
        return f"officer {self.officer or 'not recorded'}, camera {self.camera or 'not recorded'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "officer": self.officer, "camera": self.camera,
            "recordings": [r.as_dict() for r in self.recordings],
            "ranges": [s.as_dict() for s in self.ranges],
            "gaps": [s.as_dict() for s in self.gaps],
            "conflicts": [{**span.as_dict(), "recordings": [a.name, b.name]} for span, a, b in self.conflicts],
            "covered_ms": sum(s.ms for s in self.ranges),
        }


@dataclass
class Overlap:
    span: Span
    tracks: tuple[Track, Track]

    def as_dict(self) -> dict[str, Any]:
        return {**self.span.as_dict(), "between": [{"officer": t.officer, "camera": t.camera} for t in self.tracks]}


@dataclass
class Coverage:
    incident: str
    tracks: list[Track]
    overlaps: list[Overlap]
    uncovered: list[Span]
    untimed: list[Recording]
    join: timedelta = JOIN
    occurred_at: datetime | None = None
    """When the incident record says it happened (``occurred_at``), if it says."""

    @property
    def covering_occurrence(self) -> list[Track]:
        """The tracks recording at the moment the incident is said to have occurred."""
        moment = self.occurred_at
        if moment is None:
            return []
        return [t for t in self.tracks if any(s.start <= moment < s.end for s in t.ranges)]

    @property
    def span(self) -> Span | None:
        ranges = [s for t in self.tracks for s in t.ranges]
        if not ranges:
            return None
        return Span(min(s.start for s in ranges), max(s.end for s in ranges))

    def as_dict(self) -> dict[str, Any]:
        span = self.span
        return {
            "incident": self.incident,
            "span": span.as_dict() if span else None,
            "join_ms": self.join // timedelta(milliseconds=1),
            "tracks": [t.as_dict() for t in self.tracks],
            "gaps": sum(len(t.gaps) for t in self.tracks),
            "overlaps": [o.as_dict() for o in self.overlaps],
            "uncovered": [s.as_dict() for s in self.uncovered],
            "untimed": [r.as_dict() for r in self.untimed],
            "occurred_at": iso_utc(self.occurred_at) if self.occurred_at else None,
            "occurred_at_covered_by": [{"officer": t.officer, "camera": t.camera} for t in self.covering_occurrence],
        }


def _merge(spans: Iterable[Span], join: timedelta) -> list[Span]:
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if merged and span.start - merged[-1].end <= join:
            if span.end > merged[-1].end:
                merged[-1] = Span(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


def _between(ranges: Sequence[Span]) -> list[Span]:
    return [Span(a.end, b.start) for a, b in zip(ranges, ranges[1:]) if b.start > a.end]


def _conflicts(recordings: Sequence[Recording]) -> list[tuple[Span, Recording, Recording]]:
    found = []
    for i, first in enumerate(recordings):
        for second in recordings[i + 1:]:
            assert first.start and first.end and second.start and second.end
            if second.start >= first.end:
                break  # sorted by start: no later one reaches back into ``first``
            found.append((Span(second.start, min(first.end, second.end)), first, second))
    return found


def compute(incident: str, recordings: Iterable[Recording], join: timedelta = JOIN,
            occurred_at: datetime | None = None) -> Coverage:
    """Tracks, gaps, overlaps between cameras and uncovered stretches of ``recordings``;
    ``occurred_at``: when the incident record says it happened."""
    tracks: dict[tuple[str, str], Track] = {}
    untimed: list[Recording] = []
    for recording in recordings:
        if recording.end is None:
            untimed.append(recording)
            continue
        key = (recording.officer or "", recording.camera or "")
        tracks.setdefault(key, Track(recording.officer, recording.camera)).recordings.append(recording)
    ordered = [tracks[k] for k in sorted(tracks)]
    for track in ordered:
        track.recordings.sort(key=lambda r: (r.start, r.blake3))
        track.ranges = _merge((Span(r.start, r.end) for r in track.recordings if r.start and r.end), join)
        track.gaps = _between(track.ranges)
        track.conflicts = _conflicts(track.recordings) if track.camera else []
    overlaps: list[Overlap] = []
    for i, first in enumerate(ordered):
        for second in ordered[i + 1:]:
            if (first.camera or "") == (second.camera or "") and first.camera:
                continue  # the same camera handed between officers does not overlap itself
            for a in first.ranges:
                for b in second.ranges:
                    start, end = max(a.start, b.start), min(a.end, b.end)
                    if end > start:
                        overlaps.append(Overlap(Span(start, end), (first, second)))
    overlaps.sort(key=lambda o: (o.span.start, o.span.end))
    union = _merge((s for t in ordered for s in t.ranges), join)
    return Coverage(incident, ordered, overlaps, _between(union), untimed, join, occurred_at)


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def recording_of(blake3: str, name: str, link: Mapping[str, Any], details: Mapping[str, Any]) -> Recording:
    """A recording from its link to the incident and its ingest event's details."""
    media = details.get("media") if isinstance(details.get("media"), dict) else {}
    assert isinstance(media, dict)
    recorded = details.get("recorded") if isinstance(details.get("recorded"), dict) else None
    start, source = None, None
    if recorded is not None:
        start, source = _moment(recorded.get("start")), recorded.get("source")
    elif _moment(media.get("creation_time")) is not None:
        start, source = _moment(media.get("creation_time")), "container"
    duration = media.get("duration_us") if media.get("kind") in ("video", "audio") else None
    camera = link.get("camera") or (media.get("device") or {}).get("serial")
    return Recording(
        blake3, name, link.get("officer"), camera, start,
        duration if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0 else None,
        str(source) if source else None,
    )


def incident_coverage(ledger: Ledger, incident_id: str, join: timedelta = JOIN) -> Coverage:
    """The coverage of an incident's preserved recordings, from the ledger."""
    state = require_incident(ledger, incident_id)
    disposed = {e.subject.get("evidence") for e in ledger.events(actions=("disposed",))}
    recordings = []
    for blake3, link in sorted(state.evidence.items()):
        row = ledger.evidence_row(blake3)
        if row is None or blake3 in disposed:
            continue
        ingest = next(ledger.events(evidence=blake3, start=row["first_seq"]))
        source = ingest.details.get("source") or {}
        recordings.append(recording_of(blake3, str(source.get("name") or blake3[:16]), link, ingest.details))
    return compute(incident_id, recordings, join, _moment(state.fields.get("occurred_at")))


def _clock(moment: datetime) -> str:
    return iso_utc(moment).split("T", 1)[1]


def _seconds(span: Span) -> str:
    return f"{span.ms / 1000:.1f} s"


def coverage_lines(coverage: Coverage) -> list[str]:
    """The coverage for people, one line each."""
    span = coverage.span
    timed = sum(len(t.recordings) for t in coverage.tracks)
    if span is None:
        lines = [f"incident {coverage.incident}: no preserved recording with a known start and duration"]
    else:
        lines = [f"incident {coverage.incident}: {timed} recording(s) on {len(coverage.tracks)} track(s), "
                 f"{iso_utc(span.start)} to {iso_utc(span.end)} ({_seconds(span)})"]
    for track in coverage.tracks:
        lines.append(f"{track.label}: {len(track.ranges)} range(s), {len(track.gaps)} gap(s)")
        for recording in track.recordings:
            assert recording.start is not None and recording.end is not None
            lines.append(f"  {_clock(recording.start)} - {_clock(recording.end)}  {recording.name} "
                         f"(start from {recording.source})")
        for gap in track.gaps:
            lines.append(f"  GAP {_clock(gap.start)} - {_clock(gap.end)} ({_seconds(gap)})")
        for span, a, b in track.conflicts:
            lines.append(f"  CONFLICT {_clock(span.start)} - {_clock(span.end)} ({_seconds(span)}): {a.name} and {b.name} "
                         "both claim it (one camera records one file at a time: check its clock)")
    for overlap in coverage.overlaps:
        lines.append(f"overlap {_clock(overlap.span.start)} - {_clock(overlap.span.end)} ({_seconds(overlap.span)}): "
                     + " and ".join(t.label for t in overlap.tracks))
    for hole in coverage.uncovered:
        lines.append(f"NOT COVERED by any camera: {_clock(hole.start)} - {_clock(hole.end)} ({_seconds(hole)})")
    for recording in coverage.untimed:
        lines.append(f"untimed (no start or duration known): {recording.name}")
    if coverage.occurred_at is not None:
        covering = coverage.covering_occurrence
        said = f"the incident record says it occurred at {iso_utc(coverage.occurred_at)}: "
        lines.append(said + ("recorded by " + " and ".join(t.label for t in covering) if covering
                             else "NO recording covers that moment"))
    return lines


def chart(coverage: Coverage, width: int = 960, row: int = 28, label: int = 230) -> dict[str, Any] | None:
    """Geometry of the coverage timeline for an SVG (numbers only; the template draws it):
    one row per track, a bar per range, gaps and overlaps marked, ticks on the time axis."""
    span = coverage.span
    if span is None:
        return None
    occurred = coverage.occurred_at
    if occurred is not None and (span.start - occurred > 3 * (span.end - span.start) or
                                 occurred - span.end > 3 * (span.end - span.start)):
        occurred = None  # far outside the recordings: said in words, not drawn (it would squash the bars)
    if occurred is not None:
        span = Span(min(span.start, occurred), max(span.end, occurred))
    total = max((span.end - span.start).total_seconds(), 1.0)
    plot = width - label - 10
    start = span.start

    def x(moment: datetime) -> float:
        return round(label + (moment - start).total_seconds() / total * plot, 2)

    def w(part: Span) -> float:
        return round(max((part.end - part.start).total_seconds() / total * plot, 1.0), 2)

    top = 24
    rows = []
    index = {id(t): i for i, t in enumerate(coverage.tracks)}
    for i, track in enumerate(coverage.tracks):
        y = top + i * row
        rows.append({
            "label": track.label, "y": y, "text_y": y + row // 2 + 4,
            "ranges": [{"x": x(s.start), "w": w(s), "title": f"{iso_utc(s.start)} to {iso_utc(s.end)}"} for s in track.ranges],
            "gaps": [{"x": x(s.start), "w": w(s), "title": f"gap {iso_utc(s.start)} to {iso_utc(s.end)} ({_seconds(s)})"}
                     for s in track.gaps],
        })
    overlaps = []
    for overlap in coverage.overlaps:
        ys = sorted(index[id(t)] for t in overlap.tracks)
        overlaps.append({"x": x(overlap.span.start), "w": w(overlap.span), "y": top + ys[0] * row,
                         "h": (ys[1] - ys[0] + 1) * row,
                         "title": f"overlap {iso_utc(overlap.span.start)} to {iso_utc(overlap.span.end)} ({_seconds(overlap.span)})"})
    height = top + len(rows) * row + 28
    ticks = []
    for n in range(5):
        moment = span.start + (span.end - span.start) * n / 4
        ticks.append({"x": x(moment), "text": _clock(moment)})
    uncovered = [{"x": x(s.start), "w": w(s), "title": f"not covered {iso_utc(s.start)} to {iso_utc(s.end)}"}
                 for s in coverage.uncovered]
    marker = {"x": x(occurred), "text": f"reported {_clock(occurred)}"} if occurred is not None else None
    return {"width": width, "height": height, "label": label, "plot": plot, "top": top, "row": row,
            "axis_y": top + len(rows) * row + 4, "rows": rows, "overlaps": overlaps, "ticks": ticks,
            "uncovered": uncovered, "occurred": marker}
