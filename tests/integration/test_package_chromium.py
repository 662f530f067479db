"""``report.html`` of a real package, rendered by Debian's headless Chromium with no network.

Chromium runs in a network namespace of its own (``unshare -n``: only a loopback that is down)
and, in addition, with a proxy on a closed port, and its net log is read to show that the page
asked for nothing outside the package (a control page with an external image shows that such a
request would be seen). The screenshot is decoded with ffmpeg: it must show text and the colour
contact sheets (the page's own styles are greyscale, so colour can only come from the sheets'
``data:`` images). The DOM Chromium built must contain the incident id and every file name, and
the page must print to PDF.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody, require_tool

INCIDENT = "2026-1102-CBP-07"
WIDTH, HEIGHT = 1280, 3200


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, clips: list[Path]) -> Path:
    base = tmp_path_factory.mktemp("chromium-package")
    custody = Custody(base / "home", {"CUSTODY_HOME": str(base / "home"), "CUSTODY_ACTOR": "tech-0007",
                                      "CUSTODY_DB": "", "CUSTODY_STORE": ""})
    for args in (
        ["init"],
        ["incident", "create", INCIDENT, "--occurred-at", "2026-11-02T09:15:00-06:00", "--agency", "CBP",
         "--detentions", "2", "--supervisor-name", "J. Doe", "--supervisor-badge", "4411"],
        ["ingest", str(clips[0]), str(clips[1]), "--incident", INCIDENT],
        ["export", "--incident", INCIDENT, "--out", str(base / "pkg"), "--recipient", "Cook County SAO"],
    ):
        result = custody(*args)
        assert result.exit_code == 0, (args, result.output)
    return base / "pkg"


def _isolation() -> list[str]:
    """``unshare -n`` when this process may make a network namespace (root in CI), else nothing
    (the proxy flags still send every request to a closed port)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    program = require_tool("chromium")
    command = [
        *_isolation(), program, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def page_requests(net_log: Path) -> list[str]:
    """URLs that the page itself asked for (not the browser's own background requests, whose
    initiator is 'not an origin') other than ``file:`` and ``data:``."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    found = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and "url" in params and params.get("initiator") != "not an origin":
            url = str(params.get("url", ""))
            if not url.startswith(("file:", "data:")):
                found.append(url)
    return found


def pixels(png: Path, width: int, height: int, crop_top: int | None = None) -> bytes:
    """RGB bytes of a PNG (checked to be WIDTH x HEIGHT) scaled to ``width`` x ``height`` or,
    with ``crop_top``, its top ``crop_top`` rows at full size; decoded by ffmpeg."""
    probe = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "json", str(png)], capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"]) == (WIDTH, HEIGHT)
    vf = f"crop={WIDTH}:{crop_top}:0:0" if crop_top else f"scale={width}:{height}"
    raw = subprocess.run([require_tool("ffmpeg"), "-v", "error", "-i", str(png), "-vf", vf, "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    assert len(raw) == (WIDTH * crop_top if crop_top else width * height) * 3
    return raw


def count(raw: bytes, test: Any) -> int:
    return sum(1 for i in range(0, len(raw), 3) if test(raw[i], raw[i + 1], raw[i + 2]))


class _Text(HTMLParser):
    """The text of a document's body, and its images' sources."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = 0
        self.text: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "head", "script"):
            self.skip += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "head", "script"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.text.append(data)


def test_report_renders_offline_with_text_and_contact_sheets_and_fetches_nothing(package: Path, tmp_path: Path) -> None:
    shot, net_log = tmp_path / "report.png", tmp_path / "net.json"
    done = chromium(tmp_path / "profile", f"--log-net-log={net_log}", f"--screenshot={shot}",
                    (package / "report.html").as_uri())
    assert shot.exists(), done.stderr[-2000:]
    assert page_requests(net_log) == []
    top = pixels(shot, WIDTH, HEIGHT, crop_top=500)
    text = count(top, lambda r, g, b: r < 90 and g < 90 and b < 90)
    assert text > WIDTH * 500 // 100, "no text was drawn at the top of the page"
    assert count(top, lambda r, g, b: max(r, g, b) - min(r, g, b) > 120) == 0, "the page's own styles are greyscale"
    small = pixels(shot, 320, 800)
    colour = count(small, lambda r, g, b: max(r, g, b) - min(r, g, b) > 120)
    assert colour > 320 * 800 // 50, "the contact sheets (data: images) were not drawn"

    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="http://192.0.2.1/x.png">text</body></html>')
    control_log = tmp_path / "control.json"
    chromium(tmp_path / "profile-control", f"--log-net-log={control_log}", f"--screenshot={tmp_path / 'c.png'}",
             control.as_uri())
    assert page_requests(control_log) == ["http://192.0.2.1/x.png"]


def test_the_rendered_page_names_the_incident_and_every_file(package: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path / "profile", "--dump-dom", (package / "report.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = _Text()
    parsed.feed(done.stdout)
    text = " ".join(parsed.text)
    assert f"Evidence package: incident {INCIDENT}" in text
    items: list[dict[str, Any]] = json.loads((package / "custody/items.json").read_text())
    assert len(items) == 2
    for item in items:
        assert item["file"].split("/", 1)[1] in text
        flat = "".join(text.split())
        assert item["sha256"] in flat and item["sha512"] in flat and item["blake3"] in flat
    assert "J. Doe" in text and "ingested" in text and "linked" in text
    assert len(parsed.images) == 2 and all(src.startswith("data:image/png;base64,") for src in parsed.images)


def test_the_report_prints(package: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    done = chromium(tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                    (package / "report.html").as_uri())
    assert pdf.exists(), done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 2 and f"/Count {pages}".encode() in data
    assert f"/Title (Evidence package: incident {INCIDENT})".encode() in data


def test_every_printed_page_names_the_incident_and_its_number_and_the_facts_are_there(package: Path,
                                                                                    tmp_path: Path) -> None:
    """Printed as a browser prints it (no browser header or footer): the page's own margins carry
    the incident id and "Page N of M" on every page; the text says where "Recorded at" comes
    from and what was verified at export, shows SHA-512, and hashes in groups of four, eight to
    a line (never broken inside a group)."""
    from pypdf import PdfReader

    pdf = tmp_path / "report.pdf"
    done = chromium(tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                    (package / "report.html").as_uri())
    assert pdf.exists(), done.stderr[-2000:]
    pages = [unicodedata.normalize("NFKC", page.extract_text()) for page in PdfReader(pdf).pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, 1):
        assert INCIDENT in text, (number, text[:300])
        assert f"Page {number} of {len(pages)}" in text, (number, text[-300:])
    text = "\n".join(pages)
    flat = " ".join(text.split())
    assert "What was verified when this package was made" in flat
    assert "Where the retention lock is enforced: by the custody program only" in flat
    assert "the recording's own creation time" in flat and "modification time" in flat
    items: list[dict[str, Any]] = json.loads((package / "custody/items.json").read_text())
    lines = {" ".join(line.split()) for line in text.splitlines()}
    for item in items:
        for digest in (item["sha256"], item["sha512"], item["blake3"]):
            groups = [digest[i:i + 4] for i in range(0, len(digest), 4)]
            for start in range(0, len(groups), 8):
                line = " ".join(groups[start:start + 8])
                assert any(line in printed for printed in lines), (digest, line)
