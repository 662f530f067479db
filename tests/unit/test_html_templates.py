"""Every HTML page (report.html, a release's index.html) comes from a Jinja2 template rendered with
autoescaping on; no Python code builds HTML out of strings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for top in ("custody", "cli", "storage") for p in (ROOT / top).rglob("*.py"))
TAGS = r"(html|head|body|div|span|p|a|table|thead|tbody|tr|td|th|ul|ol|li|h[1-6]|img|svg|g|rect|line|text|path|" \
       r"circle|style|script|section|figure|br|em|strong|code|pre)"
TAG = re.compile(rf"</{TAGS}\s*>|<{TAGS}\s+[a-z-]+\s*=|<!doctype", re.I)
"""A closing tag, an opening tag with an attribute, or a doctype: HTML, not a ``<path>`` placeholder."""


def _docstrings(tree: ast.AST) -> set[int]:
    """The string statements (module, class, function and attribute docstrings): prose, not output."""
    return {
        id(node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


def test_no_python_string_holds_html_markup() -> None:
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if TAG.search(node.value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == []


def test_every_jinja_environment_for_html_autoescapes() -> None:
    environments = 0
    for path in SOURCES:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, str(path))
        templates = set(re.findall(r"get_template\(\s*\"([^\"]+)\"", source))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name != "Environment":
                continue
            environments += 1
            autoescape = next((k.value for k in node.keywords if k.arg == "autoescape"), None)
            on = isinstance(autoescape, ast.Constant) and autoescape.value is True
            plain_text_only = bool(templates) and all(t.endswith(".txt.j2") for t in templates)
            assert on or plain_text_only, f"{path.relative_to(ROOT)}:{node.lineno}: autoescape is not on for {templates}"
    assert environments >= 2


def test_the_html_templates_are_the_ones_the_autoescaped_environments_load() -> None:
    from custody.package.report import templates

    package = templates()
    assert package.autoescape is True
    rendered = package.from_string("<td>{{ value }}</td>").render(value="<script>alert(1)</script>")
    assert rendered == "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"
    html = sorted(p.name for p in (ROOT / "custody").rglob("*.html.j2"))
    assert "report.html.j2" in html and "index.html.j2" in html
    for name in html:
        owner = next(p for p in (ROOT / "custody").rglob(name))
        assert owner.parent.name == "templates"
