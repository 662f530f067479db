"""Laws of an incident's coverage (custody.media.coverage.compute), for any recordings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from custody.media.coverage import Recording, Span, compute

T0 = datetime(2026, 11, 1, 14, 0, tzinfo=timezone.utc)

recordings = st.lists(
    st.tuples(st.sampled_from(["SN-A", "SN-B", "SN-C"]), st.integers(0, 600_000), st.integers(1, 120_000)),
    max_size=12,
).map(lambda rows: [
    Recording(f"{i:064x}", f"clip-{i}", f"badge-{camera[-1]}", camera, T0 + timedelta(milliseconds=start),
              duration * 1000, "container")
    for i, (camera, start, duration) in enumerate(rows)
])


def _inside(moment: datetime, spans: list[Span]) -> bool:
    return any(s.start <= moment < s.end for s in spans)


@settings(max_examples=200, deadline=None)
@given(recordings, st.integers(0, 5000))
def test_tracks_gaps_overlaps_and_holes(items: list[Recording], join_ms: int) -> None:
    join = timedelta(milliseconds=join_ms)
    coverage = compute("I-1", items, join)
    for track in coverage.tracks:
        ranges = track.ranges
        assert all(a.end < b.start and b.start - a.end > join for a, b in zip(ranges, ranges[1:]))
        # ranges and gaps tile the track from its first start to its last end
        tiles = sorted([*ranges, *track.gaps], key=lambda s: s.start)
        assert all(a.end == b.start for a, b in zip(tiles, tiles[1:]))
        for recording in track.recordings:
            assert any(s.start <= recording.start and recording.end <= s.end for s in ranges)  # type: ignore[operator]
        for gap in track.gaps:  # no recording of the track covers any part of a gap
            assert all(r.end <= gap.start or r.start >= gap.end for r in track.recordings)  # type: ignore[operator]
    every = [s for t in coverage.tracks for s in t.ranges]
    for hole in coverage.uncovered:
        assert all(s.end <= hole.start or s.start >= hole.end for s in every)
    for overlap in coverage.overlaps:
        first, second = overlap.tracks
        assert first.camera != second.camera
        for track in (first, second):
            assert any(s.start <= overlap.span.start and overlap.span.end <= s.end for s in track.ranges)
    # two cameras recording at the same moment are always reported as an overlap
    for a in items:
        for b in items:
            if a.camera < b.camera and a.start < b.end and b.start < a.end:  # type: ignore[operator]
                moment = max(a.start, b.start)  # type: ignore[type-var]
                assert any(o.span.start <= moment < o.span.end for o in coverage.overlaps)
    # two recordings of one camera that claim the same moment are always a conflict, never hidden
    for track in coverage.tracks:
        for a in track.recordings:
            for b in track.recordings:
                if a is not b and a.start <= b.start < a.end:  # type: ignore[operator]
                    assert any(c.start == b.start and {x.blake3 for x in (p, q)} == {a.blake3, b.blake3}
                               for c, p, q in track.conflicts)
        for c, p, q in track.conflicts:
            assert p.start <= c.start < c.end <= p.end and q.start <= c.start < c.end <= q.end  # type: ignore[operator]
    span = coverage.span
    if span is not None:
        assert span.start == min(r.start for r in items) and span.end == max(r.end for r in items)  # type: ignore[type-var]


def test_untimed_recordings_are_listed_not_guessed() -> None:
    timed = Recording("a" * 64, "clip.mp4", "1", "SN-A", T0, 4_000_000, "container")
    untimed = Recording("b" * 64, "notes.json", "1", "SN-A", T0, None, None)
    coverage = compute("I-2", [timed, untimed])
    assert coverage.untimed == [untimed]
    assert [r.name for t in coverage.tracks for r in t.recordings] == ["clip.mp4"]
