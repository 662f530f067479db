"""A release's index.html in Debian's headless Chromium, at a phone's width, offline.

Chromium runs as in test_package_chromium (its own network namespace where possible, a proxy on
a closed port, its net log read to show the page asked for nothing). The screenshot is taken at
390 CSS pixels wide and decoded with ffmpeg: text and the charts' bars must be drawn. The DOM
Chromium built must hold every table, one bar per period in each chart, and no script; the
page must print to PDF.
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.cli.test_publish import make_year
from tests.conftest import Custody, require_tool
from tests.integration.test_package_chromium import _isolation, count, page_requests

PHONE_WIDTH, PHONE_HEIGHT = 390, 2400


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("publish-chromium")
    custody = Custody(base / "home", {"CUSTODY_HOME": str(base / "home"), "CUSTODY_ACTOR": "analyst-3",
                                      "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    make_year(custody, incidents=150, later=5, seed=3)
    result = custody("publish", "stats", "--as-of", "latest", "--period", "month", "--out", str(base / "release"))
    assert result.exit_code == 0, result.output
    return base / "release"


def phone(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        *_isolation(), require_tool("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile}", f"--window-size={PHONE_WIDTH},{PHONE_HEIGHT}", "--hide-scrollbars", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_page_draws_text_and_charts_at_phone_width_and_fetches_nothing(release: Path, tmp_path: Path) -> None:
    shot, net_log = tmp_path / "phone.png", tmp_path / "net.json"
    done = phone(tmp_path / "profile", f"--log-net-log={net_log}", f"--screenshot={shot}",
                 (release / "index.html").as_uri())
    assert shot.exists(), done.stderr[-2000:]
    assert page_requests(net_log) == []
    probe = subprocess.run([require_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "json", str(shot)], capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout)["streams"][0] == {"width": PHONE_WIDTH, "height": PHONE_HEIGHT}
    raw = subprocess.run([require_tool("ffmpeg"), "-v", "error", "-i", str(shot), "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True).stdout
    assert len(raw) == PHONE_WIDTH * PHONE_HEIGHT * 3
    top = raw[: PHONE_WIDTH * 300 * 3]
    assert count(top, lambda r, g, b: r < 90 and g < 90 and b < 90) > PHONE_WIDTH * 300 // 50, "no heading text drawn"
    # the first chart's bars are solid dark rectangles: long dark runs in some row below the heading
    width = PHONE_WIDTH * 3
    rows = [raw[y * width:(y + 1) * width] for y in range(300, 1400)]
    longest = max(_longest_dark_run(row) for row in rows)
    assert longest >= 6, "no chart bars were drawn"
    # nothing of the page is wider than the phone: the right-most column holds no text or bars
    right = b"".join(row[-3 * 4:] for row in rows)
    assert count(right, lambda r, g, b: r < 90 and g < 90 and b < 90) == 0


def _longest_dark_run(row: bytes) -> int:
    best = run = 0
    for i in range(0, len(row), 3):
        if row[i] < 90 and row[i + 1] < 90 and row[i + 2] < 90:
            run += 1
            best = max(best, run)
        else:
            run = 0
    return best


def test_the_dom_holds_every_table_and_a_bar_per_period(release: Path, tmp_path: Path) -> None:
    done = phone(tmp_path / "profile", "--dump-dom", (release / "index.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    text = " ".join(dom.text)
    data = json.loads((release / "data.json").read_text())
    periods = [r for r in data["tables"][0]["rows"] if r != "Total"]
    assert len(periods) == 12
    for table in data["tables"]:
        assert f"{table['title']}, by month" in text
    assert "Documented encounters with federal immigration agents" in text
    assert not any(tag == "script" for tag, _ in dom.tags)
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in dom.tags
    svgs = [i for i, (tag, _) in enumerate(dom.tags) if tag == "svg"]
    assert len(svgs) == 4
    # three charts of totals (a bar per period) and one of alleged violations by agency (a bar
    # per period and agency, and a legend naming the agencies)
    by_agency = next(t for t in data["tables"] if t["name"] == "violations_by_agency")
    agencies = [c for c in by_agency["columns"] if c != "Total"]
    assert agencies == ["ICE", "CBP", "multiple", "other"]
    bars = [attrs for tag, attrs in dom.tags if tag == "rect"]
    assert len(bars) == (3 + len(agencies)) * len(periods)
    assert sum(1 for tag, attrs in dom.tags if tag == "span" and attrs.get("class") == "key") == len(agencies)
    assert "Alleged violations per month, by agency" in text
    hidden = sum(1 for attrs in bars if attrs.get("class") == "hidden")
    suppressed_totals = sum(
        1 for t in data["tables"] if t["name"] in ("incidents_by_agency", "violations_by_category", "referrals")
        for c in t["cells"] if c[t["column_dimension"]] == "Total" and c["period"] != "Total" and c["count"] is None)
    suppressed_by_agency = sum(1 for c in by_agency["cells"]
                               if c["agency"] != "Total" and c["period"] != "Total" and c["count"] is None)
    assert suppressed_by_agency > 0
    assert hidden == suppressed_totals + suppressed_by_agency
    wrapped = sum(1 for tag, attrs in dom.tags if tag == "div" and attrs.get("class") == "scroll")
    assert wrapped >= len(data["tables"])
    assert not [attrs for tag, attrs in dom.tags if any(str(v).startswith(("http:", "https:")) for v in attrs.values()
                                                         if tag in ("img", "link", "script", "iframe", "object"))]


def test_the_page_prints(release: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "release.pdf"
    done = phone(tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                 (release / "index.html").as_uri())
    assert pdf.exists(), done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 2 and f"/Count {pages}".encode() in data
    assert b"/Title (Documented encounters with federal immigration agents)" in data
