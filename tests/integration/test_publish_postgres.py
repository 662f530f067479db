"""custody publish on a real PostgreSQL ledger: the release counts what was recorded there, an
amendment made after the release's checkpoint does not change it, and --recompute matches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Custody

pytestmark = pytest.mark.integration


def test_publish_and_recompute_on_postgres(pg_url: str, tmp_path: Path) -> None:
    custody = Custody(tmp_path / "home", {"CUSTODY_HOME": str(tmp_path / "home"), "CUSTODY_ACTOR": "analyst-5",
                                          "CUSTODY_DB": pg_url, "CUSTODY_STORE": ""})
    assert custody("init").exit_code == 0
    for number in range(14):
        agency = "ICE" if number < 12 else "CBP"
        result = custody("incident", "create", f"PG-{number}", "--occurred-at", "2026-04-03T10:00:00-05:00",
                         "--agency", agency, "--violation", "battery")
        assert result.exit_code == 0, result.output
    assert custody("incident", "refer", "PG-0", "--to", "Cook County State's Attorney", "--reference", "S-1",
                   "--felony").exit_code == 0
    checkpoint = custody.json("ledger", "checkpoint")["size"]
    assert custody("incident", "amend", "PG-1", "--agency", "CBP", "--reason", "misread").exit_code == 0
    out = tmp_path / "release"
    result = custody("publish", "stats", "--as-of", str(checkpoint), "--out", str(out))
    assert result.exit_code == 0, result.output
    cells = {(t["name"], c["period"], c[t["column_dimension"]]): (c["count"], c["suppressed"])
             for t in json.loads((out / "data.json").read_text())["tables"] for c in t["cells"]}
    # 12 ICE and 2 CBP as of the checkpoint (the later amendment does not count): 2 is
    # suppressed, and 12 with it, or 14 - 12 would give it away
    assert cells[("incidents_by_agency", "2026-04", "CBP")] == (None, "primary")
    assert cells[("incidents_by_agency", "2026-04", "ICE")] == (None, "complementary")
    assert cells[("incidents_by_agency", "2026-04", "Total")] == (14, None)
    assert cells[("violations_by_category", "2026-04", "battery")] == (14, None)
    assert cells[("referrals", "2026-04", "felony")] == (None, "primary")
    report = custody.json("publish", "verify", str(out), "--recompute")
    assert report["ok"] is True and report["recomputed"] is True and report["mismatched_cells"] == []
