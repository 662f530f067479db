"""Every action custody records is one that some shipped role may record: otherwise, once people
are enrolled, nobody could do it (the append policy refuses every signed event whose role lacks
the action). The actions are read from the code: the first argument of every append to a ledger
or transaction, resolved to its string."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from custody.actors.roles import ALWAYS_ALLOWED, shipped_roles

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for top in ("custody", "cli") for p in (ROOT / top).rglob("*.py"))
RECEIVERS = ("ledger", "tx", "transaction")
PASS_THROUGH = {"action"}
"""A parameter handed on by a wrapper (``holds._record``, bulk ingest's batch, ``Ledger.append``):
its callers' arguments are read instead."""
WRAPPERS = {("custody/cases/holds.py", "_record"): 1, (None, "record_refusal"): None}
"""Helpers that append (in one module, or anywhere: None): the index of their action argument
(None: always ``refused``)."""


def _module(path: Path) -> object:
    return importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))


def _resolve(path: Path, expr: ast.expr) -> set[str]:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.Name):
        if expr.id in PASS_THROUGH:
            return set()
        value = getattr(_module(path), expr.id)
        assert isinstance(value, str), f"{path}:{expr.lineno}: {expr.id} is not a string"
        return {value}
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
        table = getattr(_module(path), expr.value.id)
        return {str(value) for value in table.values()}
    raise AssertionError(f"{path}:{expr.lineno}: cannot tell which action {ast.unparse(expr)} is")


def _receiver(expr: ast.expr) -> str | None:
    """The last name of what ``.append`` is called on (``workspace.ledger``: ``ledger``)."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else None


def recorded_actions() -> dict[str, list[str]]:
    """Every action appended by the code, with where."""
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            actions: set[str] = set()
            if isinstance(func, ast.Attribute) and func.attr == "append" and node.args:
                if _receiver(func.value) in RECEIVERS:
                    actions = _resolve(path, node.args[0])
            name = func.id if isinstance(func, ast.Name) else None
            wrapper = (str(path.relative_to(ROOT)), name) if (str(path.relative_to(ROOT)), name) in WRAPPERS else (None, name)
            if wrapper in WRAPPERS:
                index = WRAPPERS[wrapper]
                actions = {"refused"} if index is None else _resolve(path, node.args[index])
            for action in actions:
                found.setdefault(action, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_recorded_action_is_given_to_a_shipped_role() -> None:
    found = recorded_actions()
    assert {"ingested", "published", "key-rotated", "disposed", "refused", "export-prepared"} <= set(found), \
        "the scan must see the appends it is about"
    policy = shipped_roles()
    given = set().union(*policy.roles.values()) | ALWAYS_ALLOWED
    orphans = {action: where for action, where in found.items() if action not in given}
    assert orphans == {}, "actions no shipped role may record (add them to custody/actors/roles.toml)"


def test_publishing_is_the_supervisors_and_rotating_the_key_the_administrators() -> None:
    policy = shipped_roles()
    assert [role for role in sorted(policy.roles) if policy.allows(role, "published")] == ["supervisor"]
    assert [role for role in sorted(policy.roles) if policy.allows(role, "key-rotated")] == ["admin"]
