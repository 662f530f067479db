"""custody publish: a release every month, on the synthetic year. Three month releases at three
checkpoints (the first of the old edition 3, as releases made before edition 4 are), read
together with the values that did not change between them, reveal no small count; each is
recomputed from the ledger exactly as it was made."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_publish import (SyntheticYear, Truth, _settings, _truth, expected_counts,  # noqa: F401
                                    make_year, year)
from tests.unit.test_publish_successive import successive_recoverable


def _release(year: SyntheticYear, out: Path, as_of: str) -> dict[str, Any]:
    result = year.custody("publish", "stats", "--as-of", as_of, "--period", "month", "--out", str(out))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "data.json").read_text())
    return data


def _truth_of(data: dict[str, Any], truths: dict[str, Truth]) -> dict[tuple[str, str, str], int]:
    counts = expected_counts(truths, "month")
    return {(t["name"], c["period"], c[t["column_dimension"]]): counts[(t["name"], c["period"], c[t["column_dimension"]])]
            for t in data["tables"] for c in t["cells"]}


def test_monthly_releases_read_together_reveal_no_small_count(year: SyntheticYear, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import custody.publish.release as writer
    from custody.cases.incidents import create_incident
    from custody.home import open_workspace

    real = writer.rules_from_config
    monkeypatch.setattr(writer, "rules_from_config", lambda config, period: replace(real(config, period), edition=3))
    first = _release(year, tmp_path / "first", str(year.checkpoint))
    monkeypatch.undo()
    assert first["rules"]["edition"] == 3
    second = _release(year, tmp_path / "second", "latest")
    assert second["rules"]["edition"] == 4 and "earlier releases of this period" in second["suppression"]["rule"]["method"]
    assert second["revision"]["previous"]["edition"] == 3
    # a month later: incidents of January 2027 only, so 2026 stays as it was
    ws = open_workspace(_settings(year.custody.home))
    rng = random.Random(99)
    third_truths = dict(year.final)
    for number in range(30):
        truth = replace(_truth(rng), day=date(2027, 1, 1 + number % 28))
        create_incident(ws, f"2027-INC-{number:04d}", truth.fields(number))
        third_truths[f"2027-INC-{number:04d}"] = truth
    third = _release(year, tmp_path / "third", "latest")

    run = [(first, year.first), (second, year.final), (third, third_truths)]
    found = successive_recoverable([(data["tables"], _truth_of(data, truths)) for data, truths in run])
    primary = {(number, t["name"], c["period"], c[t["column_dimension"]]) for number, (data, _) in enumerate(run)
               for t in data["tables"] for c in t["cells"] if c["suppressed"] == "primary"}
    shared = {"incidents_by_agency": "=incidents", "violations_by_category": "=violations",
              "violations_by_agency": "=violations"}
    primary |= {(n, shared[name], row, column) for n, name, row, column in primary
                if column == "Total" and name in shared}
    assert [var for var in found if var in primary] == []
    # 2026 did not change between the second and third release: nothing hidden there is shown
    values2 = {(t["name"], c["period"], c[t["column_dimension"]]): c for t in second["tables"] for c in t["cells"]}
    for table in third["tables"]:
        for cell in table["cells"]:
            before = values2.get((table["name"], cell["period"], cell[table["column_dimension"]]))
            if before is not None and before["suppressed"] and cell["period"].startswith("2026"):
                assert cell["suppressed"] == before["suppressed"], (table["name"], cell)
    changes = third["revision"]["changes"]
    assert all(c["period"] != "Total" for c in changes)
    assert not any(c["before"] is None and c["period"].startswith("2026") for c in changes)
    # each recomputed as made: the edition 3 one without the releases before it
    for name in ("first", "second", "third"):
        report = year.custody.json("publish", "verify", str(tmp_path / name), "--recompute")
        assert report["ok"] and report["mismatched_cells"] == [] and report["revision_checked"], (name, report)
