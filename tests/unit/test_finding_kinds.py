"""Finding kinds are one enum (custody.errors.FindingKind): every kind the code produces is a
member, docs/findings.md documents exactly the members, and output keeps the plain strings."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from custody.errors import Finding, FindingKind, IntegrityFailure

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for top in ("custody", "cli", "storage") for p in (ROOT / top).rglob("*.py"))
MAKERS = {"Finding", "finding", "_finding"}
"""The constructor and the helpers that build findings (their first argument is the kind, but
for audit's ``_finding(obj, kind, ...)``)."""


def _kind_arguments(path: Path, call: ast.Call) -> list[ast.expr]:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in MAKERS:
        return []
    index = 1 if path.parent.name == "audit" and path.name == "objects.py" and name == "_finding" else 0
    given = [call.args[index]] if len(call.args) > index else []
    given += [k.value for k in call.keywords if k.arg == "kind"]
    out: list[ast.expr] = []
    for expr in given:
        out.extend([expr.body, expr.orelse] if isinstance(expr, ast.IfExp) else [expr])
    return out


def _produced() -> tuple[list[str], set[str], int]:
    """(string literals given as a kind, FindingKind members named, kind arguments seen)."""
    literals: list[str] = []
    named: set[str] = set()
    seen = 0
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for expr in _kind_arguments(path, node):
                    seen += 1
                    if isinstance(expr, ast.Constant):
                        literals.append(f"{path.relative_to(ROOT)}:{expr.lineno}: {expr.value!r}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "FindingKind":
                named.add(node.attr)
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "kind":
                for other in node.comparators:
                    if isinstance(other, ast.Constant) and isinstance(node.left.value, ast.Name) \
                            and node.left.value.id in ("f", "finding"):
                        literals.append(f"{path.relative_to(ROOT)}:{other.lineno}: compared with {other.value!r}")
    return literals, named, seen


def test_every_kind_the_code_produces_is_a_member() -> None:
    literals, named, seen = _produced()
    assert seen > 150, "the scan found too few findings to be looking at the right code"
    assert literals == [], "kinds given as strings instead of FindingKind members"
    assert named <= set(FindingKind.__members__), named - set(FindingKind.__members__)
    produced_elsewhere = {"MANIFEST_CHANGED"}  # an ingest manifest's verdict, turned into a kind (as_findings)
    assert set(FindingKind.__members__) - named <= produced_elsewhere


def test_the_documented_kinds_are_the_members() -> None:
    table = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.MULTILINE)
    assert len(documented) == len(set(documented))
    assert set(documented) == {kind.value for kind in FindingKind}


def test_a_kind_outside_the_enum_is_refused_and_output_keeps_plain_strings() -> None:
    with pytest.raises(ValueError, match="no-such-kind"):
        Finding("no-such-kind", "clip.mp4", "made up")  # type: ignore[arg-type]
    computed = Finding("manifest-changed", "SHA256SUMS", "changed")  # type: ignore[arg-type]
    assert computed.kind is FindingKind.MANIFEST_CHANGED
    record = Finding(FindingKind.WEAK_RETENTION, "objects/ab", "lock ends early").as_dict()
    assert type(record["kind"]) is str and record["kind"] == "weak-retention"
    failure = IntegrityFailure([Finding(FindingKind.UNDER_QUORUM, "cosignatures", "1 of 2")])
    assert json.loads(json.dumps([f.as_dict() for f in failure.findings]))[0]["kind"] == "under-quorum"
