"""report.html is rendered by Jinja2 with autoescaping: text from the ledger (incident fields,
names, actors, camera serials) reaches the page escaped, never as markup."""

from __future__ import annotations

import html.parser
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from custody.ledger import checkpoint as notes
from custody.package.model import ExportContext, ExportItem
from custody.package.report import render_report

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _context(tmp_path: Path) -> ExportContext:
    signer_text, verifier_text = notes.generate_signer("example.org/custody")
    verifier = notes.Verifier.from_text(verifier_text)
    item = ExportItem(
        blake3="b" * 64, sha256="a" * 64, sha512="c" * 128, size=1234, file=f"data/{HOSTILE}.mp4",
        original_name=HOSTILE, camera=HOSTILE, officer=HOSTILE, recorded_at=HOSTILE, ingest_seq=0,
        ingested_at="2026-11-01T00:00:00Z", ingested_by=HOSTILE, source={"name": HOSTILE}, media_kind=None,
        duration_us=None,
    )
    event = SimpleNamespace(seq=0, time="2026-11-01T00:00:00Z", actor=HOSTILE, role="technician", action="note",
                            subject={"incident": HOSTILE}, details={"note": HOSTILE})
    return ExportContext(
        workspace=SimpleNamespace(settings=SimpleNamespace(actor=HOSTILE),
                                  store=SimpleNamespace(capabilities=SimpleNamespace(worm=None))),
        state={"incident": HOSTILE, "fields": {"location": HOSTILE, "use_of_force": HOSTILE}},
        items=[item], events=[event], checkpoint=notes.Checkpoint("example.org/custody", 1, b"\0" * 32),
        checkpoint_note="", verifier=verifier, package_id="id", recipient=HOSTILE, organization=HOSTILE,
        organization_given=True, created=datetime(2026, 11, 2, tzinfo=timezone.utc), sheets_tool=None,
        bag_root=tmp_path, disposed=[{"blake3": HOSTILE, "sha256": HOSTILE, "size": 3, "disposed_at": HOSTILE,
                                      "seq": 1, "actor": HOSTILE}],
    )


def test_every_value_from_the_ledger_is_escaped(tmp_path: Path) -> None:
    page = render_report(_context(tmp_path))
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags
    assert parser.tags.count("img") == 0
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "<" not in style and "&" not in style
    text = "".join(parser.text)
    assert text.count(HOSTILE) >= 10


def test_the_template_environment_escapes_by_default() -> None:
    from custody.package.report import templates

    env: Any = templates()
    assert env.autoescape is True
    assert env.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"


def test_text_in_the_printed_page_margins_cannot_leave_its_css_string() -> None:
    from custody.package.report import css_string

    escaped = str(css_string('a"; } body { display: none } </style><script>'))
    assert not set(escaped) & set('";{}<>/')
    assert escaped.startswith("a\\000022")


def test_hashes_are_grouped_to_be_read_aloud() -> None:
    from custody.package.report import hex_lines

    digest = "0123456789abcdef" * 8
    assert hex_lines(digest[:64]) == ["0123 4567 89ab cdef 0123 4567 89ab cdef"] * 2
    assert len(hex_lines(digest)) == 4 and all(len(line.split()) == 8 for line in hex_lines(digest))
