"""On a real PostgreSQL: init's output (text and --json) and every later message show the
database URL with its password masked, whichever way the password was given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Custody

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("form", ["query", "userinfo"])
def test_init_output_masks_the_password(pg_url: str, tmp_path: Path, form: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://postgres@")
    if form == "query":
        db = pg_url + "?password=hunter2-init"
    else:
        db = pg_url.replace("://postgres@", "://postgres:hunter2-init@")
    custody = Custody(tmp_path / "home", {"CUSTODY_HOME": str(tmp_path / "home"), "CUSTODY_ACTOR": "t", "CUSTODY_DB": db, "CUSTODY_STORE": ""})
    text = custody("init")
    assert text.exit_code == 0, text.output
    assert "hunter2" not in text.output
    assert "***" in text.stdout
    again = custody("init", "--json")
    assert again.exit_code == 0
    assert "hunter2" not in again.output
    assert "***" in json.loads(again.stdout)["database"]
    status = custody("db", "status")
    assert "hunter2" not in status.output
