"""``custody incident coverage`` and the coverage chart of ``report.html``, from real clips.

Three ffmpeg-made clips with set creation times, ingested and linked with officer and camera:

    officer 10231, camera SN-A:  14:00:00-14:00:04 and 14:00:10-14:00:14  -> a 6 s gap
    officer 10232, camera SN-B:  14:00:02-14:00:07                        -> a 2 s overlap with SN-A
    no camera at all:            14:00:07-14:00:10                        -> 3 s not covered

The package's report draws it as an inline SVG; headless Chromium (offline, as in
test_package_chromium) renders it, and the DOM it built holds the chart's bars where the
times put them.
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody, require_tool
from tests.integration.test_package_chromium import WIDTH, chromium, page_requests, pixels

pytestmark = pytest.mark.integration

INCIDENT = "2026-1101-ICE-09"


def video(path: Path, creation_time: str, seconds: int, size: str) -> Path:
    """A video-only H.264 MP4 of exactly ``seconds`` (25 frames a second) with a creation time."""
    subprocess.run(
        [require_tool("ffmpeg"), "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={size}:rate=25:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-metadata", f"creation_time={creation_time}", str(path)],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[Custody, Path]:
    base = tmp_path_factory.mktemp("coverage")
    custody = Custody(base / "home", {"CUSTODY_HOME": str(base / "home"), "CUSTODY_ACTOR": "tech-0009",
                                      "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    a1 = video(base / "A1.mp4", "2026-11-01T14:00:00Z", 4, "160x120")
    a2 = video(base / "A2.mp4", "2026-11-01T14:00:10Z", 4, "176x144")
    b1 = video(base / "B1.mp4", "2026-11-01T14:00:02Z", 5, "192x144")
    for args in (
        ["init"],
        ["incident", "create", INCIDENT, "--occurred-at", "2026-11-01T08:00:00-06:00", "--agency", "ICE"],
        ["ingest", str(a1), str(a2), "--incident", INCIDENT, "--camera", "SN-A", "--officer", "10231"],
        ["ingest", str(b1), "--incident", INCIDENT, "--camera", "SN-B", "--officer", "10232"],
        ["export", "--incident", INCIDENT, "--out", str(base / "pkg"), "--recipient", "Cook County SAO"],
    ):
        result = custody(*args)
        assert result.exit_code == 0, (args, result.output)
    return custody, base / "pkg"


def test_coverage_json_finds_the_gap_the_overlap_and_the_hole(incident: tuple[Custody, Path]) -> None:
    custody, _ = incident
    report = custody.json("incident", "coverage", INCIDENT)
    assert report["span"] == {"start": "2026-11-01T14:00:00Z", "end": "2026-11-01T14:00:14Z", "duration_ms": 14000}
    tracks = {(t["officer"], t["camera"]): t for t in report["tracks"]}
    assert set(tracks) == {("10231", "SN-A"), ("10232", "SN-B")}
    a = tracks[("10231", "SN-A")]
    assert [(r["start"], r["end"]) for r in a["ranges"]] == [
        ("2026-11-01T14:00:00Z", "2026-11-01T14:00:04Z"), ("2026-11-01T14:00:10Z", "2026-11-01T14:00:14Z")]
    assert a["gaps"] == [{"start": "2026-11-01T14:00:04Z", "end": "2026-11-01T14:00:10Z", "duration_ms": 6000}]
    assert [r["start_source"] for r in a["recordings"]] == ["container", "container"]
    b = tracks[("10232", "SN-B")]
    assert b["gaps"] == [] and b["covered_ms"] == 5000
    assert report["overlaps"] == [{"start": "2026-11-01T14:00:02Z", "end": "2026-11-01T14:00:04Z", "duration_ms": 2000,
                                   "between": [{"officer": "10231", "camera": "SN-A"},
                                               {"officer": "10232", "camera": "SN-B"}]}]
    assert report["uncovered"] == [{"start": "2026-11-01T14:00:07Z", "end": "2026-11-01T14:00:10Z", "duration_ms": 3000}]
    assert report["gaps"] == 1 and report["untimed"] == []

    text = custody("incident", "coverage", INCIDENT)
    assert text.exit_code == 0
    assert "GAP 14:00:04Z - 14:00:10Z (6.0 s)" in text.stdout
    assert ("overlap 14:00:02Z - 14:00:04Z (2.0 s): officer 10231, camera SN-A and officer 10232, camera SN-B"
            in text.stdout)
    assert "NOT COVERED by any camera: 14:00:07Z - 14:00:10Z (3.0 s)" in text.stdout

    joined = custody.json("incident", "coverage", INCIDENT, "--join", "6000")
    assert [t["gaps"] for t in joined["tracks"]] == [[], []] and joined["uncovered"] == []

    assert report["occurred_at"] == "2026-11-01T14:00:00Z"  # 08:00 at -06:00, as the incident record says
    assert report["occurred_at_covered_by"] == [{"officer": "10231", "camera": "SN-A"}]
    assert "occurred at 2026-11-01T14:00:00Z: recorded by officer 10231, camera SN-A" in text.stdout

    amended = custody("incident", "amend", INCIDENT, "--occurred-at", "2026-11-01T08:00:08-06:00",
                      "--reason", "dispatch log: 08:00:08")
    assert amended.exit_code == 0, amended.output
    hole = custody.json("incident", "coverage", INCIDENT)
    assert hole["occurred_at"] == "2026-11-01T14:00:08Z" and hole["occurred_at_covered_by"] == []
    assert "occurred at 2026-11-01T14:00:08Z: NO recording covers that moment" in custody(
        "incident", "coverage", INCIDENT).stdout

    missing = custody("incident", "coverage", "no-such-incident")
    assert missing.exit_code == 2 and "no incident 'no-such-incident'" in missing.stderr


class _Svg(HTMLParser):
    """The coverage chart's rectangles (class, x, width) and its title, from a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.rects: list[tuple[str, float, float]] = []
        self.titles: list[str] = []
        self._title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "svg" and values.get("class") == "coverage":
            self.inside = True
        elif self.inside and tag == "rect":
            self.rects.append((str(values["class"]), float(values["x"] or 0), float(values["width"] or 0)))
        elif self.inside and tag == "title":
            self._title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.inside = False
        if tag == "title":
            self._title = False

    def handle_data(self, data: str) -> None:
        if self._title:
            self.titles.append(data)


def test_report_draws_the_timeline_in_chromium(incident: tuple[Custody, Path], tmp_path: Path) -> None:
    _, package = incident
    html = (package / "report.html").read_text()
    assert "<svg class=\"coverage\"" in html and "<script" not in html and "href=" not in html.split("<svg", 1)[1]
    done = chromium(tmp_path / "profile", "--dump-dom", (package / "report.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    svg = _Svg()
    svg.feed(done.stdout)
    kinds = [kind for kind, _, _ in svg.rects]
    assert sorted(kinds) == ["gap", "overlap", "range", "range", "range", "uncovered"]
    assert f"Coverage of incident {INCIDENT}: 2 track(s), 1 gap(s), 1 overlap(s)" in svg.titles
    assert any("gap 2026-11-01T14:00:04Z to 2026-11-01T14:00:10Z (6.0 s)" in t for t in svg.titles)
    ranges = sorted((x, w) for kind, x, w in svg.rects if kind == "range")
    gap = next((x, w) for kind, x, w in svg.rects if kind == "gap")
    overlap = next((x, w) for kind, x, w in svg.rects if kind == "overlap")
    scale = ranges[0][1] / 4  # pixels per second: the first range is 4 s from the chart's start
    assert gap[0] == pytest.approx(ranges[0][0] + 4 * scale, abs=0.05) and gap[1] == pytest.approx(6 * scale, abs=0.05)
    assert overlap[0] == pytest.approx(ranges[0][0] + 2 * scale, abs=0.05)
    assert overlap[1] == pytest.approx(2 * scale, abs=0.05)
    assert ranges[-1][0] + ranges[-1][1] == pytest.approx(ranges[0][0] + 14 * scale, abs=0.05)

    assert '<line class="occurred"' in done.stdout and "reported 14:00:00Z" in done.stdout  # the record's time, marked
    text = re.sub(r"<[^>]+>", " ", done.stdout)
    flat = " ".join(text.split())
    assert "Gap 2026-11-01T14:00:04Z 2026-11-01T14:00:10Z 6.0 officer 10231, camera SN-A" in flat
    assert "No camera 2026-11-01T14:00:07Z 2026-11-01T14:00:10Z 3.0" in flat


def test_the_chart_is_drawn_and_fetches_nothing(incident: tuple[Custody, Path], tmp_path: Path) -> None:
    """The report's coverage section, rendered alone under the report's own head (styles, CSP) so
    that it is in the first screen: the screenshot shows the bars and the gap in their colours,
    and the page asked for nothing."""
    _, package = incident
    page = tmp_path / "chart.html"
    html = (package / "report.html").read_text()
    head, rest = html.split("<h2 id=\"coverage\">", 1)
    chart_only = head.split("<body>", 1)[0] + "<body><h2>" + rest.split("<h2>Linked", 1)[0].split("<h2>Custody timeline", 1)[0]
    page.write_text(chart_only + "</body></html>")
    shot, net_log = tmp_path / "chart.png", tmp_path / "net.json"
    done = chromium(tmp_path / "profile", f"--log-net-log={net_log}", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), done.stderr[-2000:]
    assert page_requests(net_log) == []
    top = pixels(shot, WIDTH, 0, crop_top=700)
    rgb = [tuple(top[i:i + 3]) for i in range(0, len(top), 3)]
    bars = sum(1 for r, g, b in rgb if abs(r - 0x34) < 12 and abs(g - 0x49) < 12 and abs(b - 0x5e) < 12)
    gaps = sum(1 for r, g, b in rgb if abs(r - 0xa6) < 12 and abs(g - 0x53) < 12 and abs(b - 0x53) < 12)
    assert bars > 2000, "the recordings' bars were not drawn"
    assert gaps > 300, "the gap was not drawn"


def test_items_json_says_where_each_time_came_from(incident: tuple[Custody, Path]) -> None:
    _, package = incident
    items: list[dict[str, Any]] = json.loads((package / "custody/items.json").read_text())
    assert {i["recorded_at_source"] for i in items} == {"container"}
    assert {i["content_credentials"]["status"] for i in items} == {"absent"}
    assert sorted(i["recorded_at"] for i in items) == ["2026-11-01T14:00:00Z", "2026-11-01T14:00:02Z", "2026-11-01T14:00:10Z"]
    certification = (package / "hash-certification.txt").read_text()
    assert "recorded at: 2026-11-01T14:00:10Z (from container)" in certification
