"""The static checks run by the test command: ``mypy --strict`` on custody/, storage/ and cli/
and the import-linter contracts of ``pyproject.toml`` (the layering of ../shared/DESIGN.md,
"Layout and dependency direction"). Both run from this virtual environment, as a developer
would run them; their own output is shown when they fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ("custody", "storage", "cli")


def _run(program: str, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = BIN / program
    if not executable.exists():
        pytest.fail(f"{executable} is missing: install the test dependencies (pip install -e '.[test]')")
    return subprocess.run(
        [str(executable), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=540, check=False
    )


def _shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_mypy_strict_is_clean_on_custody_storage_and_cli() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["strict"] is True and sorted(config["files"]) == sorted(PACKAGES)
    result = _run("mypy", cwd=ROOT)
    assert result.returncode == 0, _shown(result)
    checked = re.search(r"Success: no issues found in (\d+) source files", result.stdout)
    assert checked is not None, _shown(result)
    modules = sum(1 for package in PACKAGES for _ in (ROOT / package).rglob("*.py"))
    assert int(checked.group(1)) == modules, _shown(result)


def _contracts(root: Path) -> list[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    return [contract["name"] for contract in config["contracts"]]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return _run("lint-imports", "--no-cache", cwd=root, env=env)


def test_the_layering_contracts_are_kept() -> None:
    names = _contracts(ROOT)
    assert {
        "cli -> custody -> storage", "custody's wings, top to bottom", "no two modules import each other",
        "SQL only in custody.ledger", "the migrations see only the ledger's tables",
    } <= set(names)
    result = _lint_imports(ROOT)
    assert result.returncode == 0, _shown(result)
    for name in names:
        assert f"{name} KEPT" in result.stdout, _shown(result)
    assert f"Contracts: {len(names)} kept, 0 broken." in result.stdout, _shown(result)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _add_import(module: Path, line: str) -> None:
    """Put ``line`` after the module's ``from __future__`` import (or first)."""
    text = module.read_text(encoding="utf-8")
    anchor = "from __future__ import annotations\n"
    assert anchor in text, module
    module.write_text(text.replace(anchor, anchor + line + "\n", 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("module", "line", "contract", "named"),
    [
        ("storage/base.py", "from custody import errors as _upward", "cli -> custody -> storage",
         "storage.base -> custody.errors"),
        ("custody/errors.py", "import cli.render as _upward", "cli -> custody -> storage",
         "custody.errors -> cli.render"),
        ("custody/ledger/tree.py", "import custody.evidence.hashing as _upward", "custody's wings, top to bottom",
         "custody.ledger.tree -> custody.evidence.hashing"),
        ("custody/cases/holds.py", "import custody.home as _upward", "custody's wings, top to bottom",
         "custody.cases.holds -> custody.home"),
        ("storage/base.py", "import storage.local as _upward", "storage: the URL opener, the backends, their shared parts",
         "storage.base -> storage.local"),
        ("cli/context.py", "import cli.commands.ingest_cmd as _upward", "cli: main, the commands, their helpers",
         "cli.context -> cli.commands.ingest_cmd"),
        ("custody/audit/run.py", "import sqlalchemy as _sql", "SQL only in custody.ledger",
         "custody.audit.run -> sqlalchemy"),
        ("cli/commands/db_cmd.py", "from sqlalchemy import event as _event", "SQL only in custody.ledger",
         "cli.commands.db_cmd -> sqlalchemy"),
        ("custody/ledger/migrations/env.py", "from custody.ledger.database import Ledger as _upward",
         "the migrations see only the ledger's tables", "custody.ledger.migrations.env -> custody.ledger.database"),
    ],
)
def test_one_forbidden_import_breaks_a_contract_naming_it(
    tmp_path: Path, module: str, line: str, contract: str, named: str
) -> None:
    assert not re.search(rf"^{re.escape(line)}$", (ROOT / module).read_text(encoding="utf-8"), re.M)
    root = _copy(tmp_path)
    _add_import(root / module, line)
    broken = _lint_imports(root)
    assert broken.returncode != 0, _shown(broken)
    assert f"{contract} BROKEN" in broken.stdout, _shown(broken)
    assert re.search(rf"-\s+{re.escape(named)} \(l\.\d+\)", broken.stdout), _shown(broken)
