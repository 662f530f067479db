"""custody publish: a synthetic year of incidents, counted and checked.

The incidents are made through the custody API in-process (create, amend, refer); the test
keeps its own record of what each incident is at each stage and counts from that record,
independently of custody.publish, and compares every published value.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from custody.home import open_workspace
from custody.settings import Settings
from tests.conftest import Custody

AGENCY_CHOICES = (["ICE"], ["ICE"], ["CBP"], ["Border Patrol"], ["ICE", "CBP"], ["FBI"], [])
CATEGORIES = ("battery", "trust-act", "unlawful-restraint", "use-of-force", "identification-refused",
              "constitutional-rights")
SAO = "Cook County State's Attorney"


@dataclass
class Truth:
    """What the test itself says an incident is."""

    day: date
    agencies: list[str]
    categories: list[str]
    use_of_force: bool
    detentions: int
    injury: bool
    ems: bool | None
    aid: bool | None
    supervisor: bool
    credentials: str
    referrals: list[tuple[str, bool]] = field(default_factory=list)

    def fields(self, number: int) -> dict[str, Any]:
        values: dict[str, Any] = {
            "occurred_at": f"{self.day.isoformat()}T{number % 24:02d}:15:00-06:00",
            "location": f"{1000 + number} W Secret St",
            "agencies": self.agencies,
            "violation_categories": self.categories,
            "violations": [f"free-text citation SECRET-{number}"] if self.categories else [],
            "use_of_force": "baton strike" if self.use_of_force else None,
            "detentions": self.detentions,
            "injuries": "bruising" if self.injury else None,
            "ems_summoned": self.ems,
            "aid_rendered": self.aid,
            "supervisor_name": f"Supervisor Person{number}" if self.supervisor else None,
            "credentials": self.credentials,
            "report_number": f"RD-SECRET{number:05d}",
            "note": f"witness Name{number} phone 555-01{number:02d}",
        }
        return values


def _truth(rng: random.Random) -> Truth:
    month = rng.choice([1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 9, 9, 10, 11, 12])
    return Truth(
        day=date(2026, month, rng.randint(1, 28)),
        agencies=list(rng.choice(AGENCY_CHOICES)),
        categories=rng.sample(CATEGORIES, rng.choice([0, 1, 1, 2])),
        use_of_force=rng.random() < 0.35,
        detentions=rng.choice([0, 0, 1, 2, 3]),
        injury=rng.random() < 0.2,
        ems=rng.choice([True, False, None]),
        aid=rng.choice([True, None]),
        supervisor=rng.random() < 0.5,
        credentials=rng.choice(["verified", "refused", "refused", "not-attempted"]),
    )


@dataclass
class SyntheticYear:
    custody: Custody
    workspace: Any
    first: dict[str, Truth]
    """Every incident as it stood at ``checkpoint``."""
    final: dict[str, Truth]
    checkpoint: int


def _settings(home: Path) -> Settings:
    return Settings(home=home, db_url=Settings.default_db_url(home), store_url=Settings.default_store_url(home),
                    actor="analyst-17", role="analyst")


def _amend(ws: Any, rng: random.Random, incident: str, truth: Truth, number: int) -> None:
    from custody.cases.incidents import amend_incident

    choice = rng.randrange(4)
    if choice == 0:
        truth.day = date(2026, rng.randint(1, 12), rng.randint(1, 28))
        values = {"occurred_at": truth.fields(number)["occurred_at"]}
    elif choice == 1:
        truth.agencies = list(rng.choice([a for a in AGENCY_CHOICES if a and a != truth.agencies]))
        values = {"agencies": truth.agencies}
    elif choice == 2:
        truth.categories = rng.sample([c for c in CATEGORIES if c not in truth.categories], 2)
        values = {"violation_categories": truth.categories}
    else:
        truth.detentions += 1
        truth.use_of_force = True
        values = {"detentions": truth.detentions, "use_of_force": "taser"}
    amend_incident(ws, incident, values, reason="corrected after review of footage")


def _refer(ws: Any, rng: random.Random, incident: str, truth: Truth) -> None:
    from custody.cases.incidents import refer_incident

    to = SAO if rng.random() < 0.8 else "U.S. Attorney"
    felony = rng.random() < 0.5
    refer_incident(ws, incident, to, f"SAO-26-{rng.randint(1, 99999):05d}", felony)
    truth.referrals.append((to, felony))


def make_year(custody: Custody, incidents: int = 300, later: int = 40, seed: int = 17) -> SyntheticYear:
    """``incidents`` incidents with amendments and referrals, a checkpoint, then ``later`` more
    incidents and changes to earlier ones."""
    from copy import deepcopy

    from custody.cases.incidents import create_incident

    assert custody("init").exit_code == 0
    ws = open_workspace(_settings(custody.home))
    rng = random.Random(seed)
    truths: dict[str, Truth] = {}
    for number in range(incidents):
        incident = f"2026-INC-{number:04d}"
        truth = _truth(rng)
        create_incident(ws, incident, truth.fields(number))
        truths[incident] = truth
        if rng.random() < 0.25:
            _amend(ws, rng, incident, truth, number)
        if rng.random() < 0.2:
            _refer(ws, rng, incident, truth)
    checkpoint = ws.seal(force=True).size
    first = deepcopy(truths)
    for number in range(incidents, incidents + later):
        incident = f"2026-INC-{number:04d}"
        truths[incident] = truth = _truth(rng)
        create_incident(ws, incident, truth.fields(number))
    for number, (incident, truth) in enumerate(list(truths.items())[:60]):
        _amend(ws, rng, incident, truth, number)
        if number % 5 == 0:
            _refer(ws, rng, incident, truth)
    ws.seal()
    return SyntheticYear(custody, ws, first, truths, checkpoint)


# -- the independent count -------------------------------------------------------------------


def _period(day: date, period: str) -> str:
    return {"month": f"{day.year}-{day.month:02d}", "quarter": f"{day.year}-Q{(day.month + 2) // 3}",
            "year": str(day.year)}[period]


def _agency(agencies: list[str]) -> str:
    groups = {"ICE": "ICE", "CBP": "CBP", "Border Patrol": "CBP"}
    found = {groups[a] for a in agencies if a in groups}
    return found.pop() if len(found) == 1 else ("multiple" if found else "other")


def expected_counts(truths: dict[str, Truth], period: str) -> dict[tuple[str, str, str], int]:
    """(table, period, column) -> count, with totals, counted from the test's own record."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for truth in truths.values():
        p = _period(truth.day, period)
        for row in (p, "Total"):
            counts[("incidents_by_agency", row, _agency(truth.agencies))] += 1
            counts[("incidents_by_agency", row, "Total")] += 1
            for category in truth.categories:
                counts[("violations_by_category", row, category)] += 1
                counts[("violations_by_category", row, "Total")] += 1
                # each alleged violation once, in its incident's agency column
                counts[("violations_by_agency", row, _agency(truth.agencies))] += 1
                counts[("violations_by_agency", row, "Total")] += 1
            facts = {
                "use-of-force": truth.use_of_force, "detention": truth.detentions > 0, "injury": truth.injury,
                "ems-summoned": truth.ems is True, "aid-rendered": truth.aid is True,
                "supervisor-identified": truth.supervisor, "credentials-refused": truth.credentials == "refused",
            }
            for name, happened in facts.items():
                counts[("characteristics", row, name)] += int(happened)
            counts[("characteristics", row, "people-detained")] += truth.detentions
            to_sao = [felony for to, felony in truth.referrals if to == SAO]
            if to_sao:
                column = "felony" if any(to_sao) else "not-felony"
                counts[("referrals", row, column)] += 1
                counts[("referrals", row, "Total")] += 1
    return counts


def published(release: Path) -> tuple[dict[tuple[str, str, str], int | None], dict[tuple[str, str, str], str]]:
    data = json.loads((release / "data.json").read_text())
    values, reasons = {}, {}
    for table in data["tables"]:
        dimension = table["column_dimension"]
        for cell in table["cells"]:
            key = (table["name"], cell["period"], cell[dimension])
            values[key] = cell["count"]
            if cell["suppressed"]:
                reasons[key] = cell["suppressed"]
    return values, reasons


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> SyntheticYear:
    base = tmp_path_factory.mktemp("publish-year")
    home = base / "home"
    custody = Custody(home, {"CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "analyst-17", "CUSTODY_DB": "",
                             "CUSTODY_STORE": ""})
    return make_year(custody)


@pytest.fixture(scope="module")
def release_at_first(year: SyntheticYear, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("releases") / "first"
    result = year.custody("publish", "stats", "--as-of", str(year.checkpoint), "--period", "month", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def _check_against_truth(release: Path, truths: dict[str, Truth], period: str) -> None:
    values, reasons = published(release)
    expected = expected_counts(truths, period)
    assert values, "the release has no cells"
    for key, value in values.items():
        truth = expected.get(key, 0)
        if value is not None:
            assert value == truth, key
            assert not 1 <= truth <= 10, f"{key}: {truth} should have been suppressed"
        elif reasons[key] == "primary":
            assert 1 <= truth <= 10, key
        else:
            assert reasons[key] == "complementary", key
    # every count of the test's own record is a cell of the release
    assert {k for k, v in expected.items() if v} <= set(values)


def test_every_published_count_equals_the_independent_count(year: SyntheticYear, release_at_first: Path) -> None:
    _check_against_truth(release_at_first, year.first, "month")
    values, reasons = published(release_at_first)
    assert values[("incidents_by_agency", "Total", "Total")] == 300
    periods = {key[1] for key in values}
    assert periods == {f"2026-{m:02d}" for m in range(1, 13)} | {"Total"}
    assert "primary" in reasons.values()
    assert sum(1 for v in values.values() if v) > 40, "most counts should be published"


@pytest.mark.parametrize("period", ["quarter", "year"])
def test_quarters_and_years_count_the_same_incidents(year: SyntheticYear, tmp_path: Path, period: str) -> None:
    out = tmp_path / period
    result = year.custody("publish", "stats", "--as-of", str(year.checkpoint), "--period", period, "--out", str(out))
    assert result.exit_code == 0, result.output
    _check_against_truth(out, year.first, period)
    values, reasons = published(out)
    rows = {key[1] for key in values}
    if period == "quarter":
        assert "complementary" in reasons.values() and "primary" in reasons.values()
    assert rows == ({"2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "Total"} if period == "quarter" else {"2026", "Total"})


def test_the_internal_counts_behind_suppressed_cells_are_exact(year: SyntheticYear) -> None:
    from custody.publish.release import compute_at
    from custody.publish.rules import rules_from_config

    tables = compute_at(year.workspace.ledger, year.checkpoint, rules_from_config({}, "month"))
    expected = expected_counts(year.first, "month")
    for table in tables:
        for (row, column), value in table.counts.items():
            assert value == expected.get((table.name, row, column), 0), (table.name, row, column)


def _lines(table: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """Every equation of a table as the list of its cells, the total last."""
    rows, columns = table["rows"], table["columns"]
    inner_rows = [r for r in rows if r != "Total"]
    inner_columns = [c for c in columns if c != "Total"]
    lines = []
    if "Total" in columns:
        lines += [[(r, c) for c in inner_columns] + [(r, "Total")] for r in rows]
    if "Total" in rows:
        lines += [[(r, c) for r in inner_rows] + [("Total", c)] for c in columns]
    return lines


def _recoverable(table: dict[str, Any], values: dict[tuple[str, str], int | None]) -> list[tuple[str, str]]:
    """Suppressed cells some combination of the table's equations determines (exact elimination)."""
    hidden = sorted(k for k, v in values.items() if v is None)
    position = {k: i for i, k in enumerate(hidden)}
    matrix = []
    for line in _lines(table):
        row = [Fraction(0)] * len(hidden)
        for cell in line[:-1]:
            if cell in position:
                row[position[cell]] += 1
        if line[-1] in position:
            row[position[line[-1]]] -= 1
        if any(row):
            matrix.append(row)
    found = []
    for target in range(len(hidden)):
        # the cell is determined iff the unit vector is in the row space: rank does not grow
        unit = [Fraction(int(i == target)) for i in range(len(hidden))]
        if _rank(matrix + [unit]) == _rank(matrix):
            found.append(hidden[target])
    return found


def _rank(matrix: list[list[Fraction]]) -> int:
    rows = [list(r) for r in matrix]
    rank = 0
    width = len(rows[0]) if rows else 0
    for column in range(width):
        pivot = next((i for i in range(rank, len(rows)) if rows[i][column] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for i in range(len(rows)):
            if i != rank and rows[i][column] != 0:
                factor = rows[i][column] / rows[rank][column]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[rank])]
        rank += 1
    return rank


SHARED_TOTALS = {"incidents_by_agency": "incidents", "incidents_by_district": "incidents",
                 "violations_by_category": "violations", "violations_by_agency": "violations"}
"""The test's own knowledge of which tables show the same Total column (the same things counted)."""


def _parent(label: str) -> str | None:
    """The test's own calendar: the quarter of a month, the year of a quarter."""
    if len(label) == 7 and label[4] == "-" and label[5:].isdigit():
        return f"{label[:4]}-Q{(int(label[5:]) + 2) // 3}"
    if len(label) == 7 and label[5] == "Q":
        return label[:4]
    return None


def _period_lines(tables: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each quarter is the sum of its months and each year of its quarters, for every column of
    every table whose finer version is among ``tables``: (table name, cells, the total last)."""
    rows: dict[str, set[str]] = {}
    columns: dict[str, list[str]] = {}
    for table in tables:
        rows.setdefault(table["name"], set()).update(table["rows"])
        columns[table["name"]] = table["columns"]
    lines = []
    for name, labels in rows.items():
        children: dict[str, list[str]] = {}
        for label in sorted(labels):
            parent = _parent(label)
            if parent is not None:
                children.setdefault(parent, []).append(label)
        for parent, parts in children.items():
            if parent in labels:
                lines += [(name, [(p, c) for p in parts] + [(parent, c)]) for c in columns[name]]
    return lines


def joint_recoverable(tables: list[dict[str, Any]], *, periods: bool = False,
                      nonnegative: bool = False) -> list[tuple[str, str, str]]:
    """Suppressed values that the published values of ALL the tables together determine.

    The attacker's system: every cell of every table an unknown, except that a Total column
    cell of tables counting the same things is one unknown (SHARED_TOTALS). Published values
    are constants; each table's row and column equations are rows of the system over the
    hidden unknowns, reduced in exact fractions. A hidden unknown is determined exactly when a
    row of the reduced echelon form is its unit vector. Also checks that a shared total is
    published with one value wherever it is published, and that the published values satisfy
    every equation. A total published in one table and hidden in another is recovered, and so
    is a hidden count of an agency's alleged violations where its incidents are published as 0,
    or of people detained where incidents with detentions are.

    ``tables`` may be those of several releases at one checkpoint: their ``Total`` rows are the
    same unknowns. With ``periods``, the sums of months into quarters and of quarters into years
    are equations too; with ``nonnegative``, every hidden part of a sum published as 0 is 0."""

    def unknown(name: str, row: str, column: str) -> tuple[str, str, str]:
        return ("=" + SHARED_TOTALS[name], row, column) if column == "Total" and name in SHARED_TOTALS else (
            name, row, column)

    shown: dict[tuple[str, str, str], set[int | None]] = {}
    for table in tables:
        dimension = table["column_dimension"]
        for cell in table["cells"]:
            shown.setdefault(unknown(table["name"], cell["period"], cell[dimension]), set()).add(cell["count"])
    known = {key: max((v for v in values if v is not None), default=None) for key, values in shown.items()}
    assert all(len(values - {None}) <= 1 for values in shown.values()), "a shared total differs between tables"
    # a total hidden in one table and shown in another is recovered by reading it
    exposed = sorted(key for key, values in shown.items() if None in values and len(values) > 1)
    # no incidents of an agency in a period: none of its alleged violations either; no
    # incident with detentions: nobody detained
    for (name, row, column), value in list(known.items()):
        if value is None and ((name == "violations_by_agency" and known.get(("incidents_by_agency", row, column)) == 0)
                              or (column == "people-detained" and known.get((name, row, "detention")) == 0)):
            exposed.append((name, row, column))
            known[(name, row, column)] = 0
    all_lines = [(t["name"], line) for t in tables for line in _lines(t)]
    if periods:
        all_lines += _period_lines(tables)
    while nonnegative:
        zeros = [key for name, line in all_lines if known.get(unknown(name, *line[-1])) == 0
                 for key in (unknown(name, *cell) for cell in line[:-1]) if known.get(key, 0) is None]
        exposed += sorted(set(zeros))
        known.update({key: 0 for key in zeros})
        nonnegative = bool(zeros)
    hidden = sorted(k for k, v in known.items() if v is None)
    position = {k: i for i, k in enumerate(hidden)}
    matrix: list[list[Fraction]] = []
    for name, line in all_lines:
        keys = [unknown(name, *cell) for cell in line]
        signs = [1] * (len(keys) - 1) + [-1]
        row = [Fraction(0)] * len(hidden)
        for key, sign in zip(keys, signs):
            if key in position:
                row[position[key]] += sign
        if any(row):
            matrix.append(row)
        elif all(known[k] is not None for k in keys):
            assert sum(sign * (known[k] or 0) for k, sign in zip(keys, signs)) == 0, (name, line)
    echelon = _echelon(matrix, len(hidden))
    return exposed + [hidden[j] for j in range(len(hidden))
                      if any(row[j] != 0 and all(v == 0 for i, v in enumerate(row) if i != j) for row in echelon)]


def _echelon(matrix: list[list[Fraction]], width: int) -> list[list[Fraction]]:
    """Reduced row echelon form (Gauss-Jordan, exact), column by column over sparse rows."""
    pending = [{i: v for i, v in enumerate(r) if v} for r in matrix]
    done: list[dict[int, Fraction]] = []
    for column in range(width):
        pivot = next((r for r in pending if r.get(column)), None)
        if pivot is None:
            continue
        pending.remove(pivot)
        lead = pivot[column]
        pivot = {i: v / lead for i, v in pivot.items()}
        for row in pending + done:
            factor = row.get(column)
            if factor:
                for i, v in pivot.items():
                    row[i] = row.get(i, Fraction(0)) - factor * v
                    if row[i] == 0:
                        del row[i]
        done.append(pivot)
    return [[row.get(i, Fraction(0)) for i in range(width)] for row in done]


def test_no_suppressed_value_can_be_recovered_by_any_subtraction(release_at_first: Path) -> None:
    data = json.loads((release_at_first / "data.json").read_text())
    hidden_total = 0
    for table in data["tables"]:
        dimension = table["column_dimension"]
        values = {(c["period"], c[dimension]): c["count"] for c in table["cells"]}
        hidden_total += sum(1 for v in values.values() if v is None)
        for line in _lines(table):
            unknown = [cell for cell in line if values[cell] is None]
            # one unknown in a line: total minus the others, or a part from the total
            assert len(unknown) != 1, (table["name"], unknown)
            if not unknown:
                assert sum(values[c] or 0 for c in line[:-1]) == values[line[-1]]
        assert _recoverable(table, values) == [], table["name"]
    assert hidden_total > 20
    summary = {s["table"]: s for s in data["suppression"]["tables"]}
    assert sum(s["primary"] + s["complementary"] for s in summary.values()) == hidden_total
    for table in data["tables"]:
        reasons = Counter(c["suppressed"] for c in table["cells"] if c["suppressed"])
        assert (summary[table["name"]]["primary"], summary[table["name"]]["complementary"]) == (
            reasons["primary"], reasons["complementary"])
    assert summary["violations_by_agency"]["totals_shared_with"] == ["violations_by_category"]
    assert summary["violations_by_category"]["totals_shared_with"] == ["violations_by_agency"]
    assert "totals_shared_with" not in summary["characteristics"]
    assert "1 to 10" in data["suppression"]["rule"]["method"]
    assert "of all the tables of the month, quarter and year releases" in data["suppression"]["rule"]["method"]
    page = (release_at_first / "index.html").read_text()
    assert "suppressed because they were from 1 to 10" in page
    assert "Its Total column is the same as that of “Alleged violations, by category”" in page


def test_no_suppressed_value_follows_from_all_tables_together(release_at_first: Path) -> None:
    data = json.loads((release_at_first / "data.json").read_text())
    tables = {t["name"]: t for t in data["tables"]}
    assert set(tables) == {"incidents_by_agency", "violations_by_category", "violations_by_agency",
                           "characteristics", "referrals"}
    by_category = {c["period"]: c for c in tables["violations_by_category"]["cells"] if c["category"] == "Total"}
    by_agency = {c["period"]: c for c in tables["violations_by_agency"]["cells"] if c["agency"] == "Total"}
    # the violations per period are one value, shown or suppressed alike in both tables
    assert by_category.keys() == by_agency.keys()
    for period, cell in by_category.items():
        assert (cell["count"], cell["suppressed"]) == (by_agency[period]["count"], by_agency[period]["suppressed"])
    assert any(c["count"] is None for c in tables["violations_by_agency"]["cells"])
    assert joint_recoverable(data["tables"]) == []


def test_releases_of_every_period_at_one_checkpoint_together_reveal_nothing(
        year: SyntheticYear, release_at_first: Path, tmp_path: Path) -> None:
    """The month, quarter and year releases at one checkpoint read together: the attacker
    adds the sums of months into quarters and of quarters into years, reads a Total row shown
    in one release where another hides it, and knows the parts of a sum of 0 are 0. Edition 2
    (the pattern of each period chosen on its own) let a hidden month be worked out as its
    quarter minus its two other months; edition 3 chooses one pattern for the three."""
    from dataclasses import replace

    from custody.publish.release import compute_at
    from custody.publish.rules import rules_from_config

    releases = [release_at_first]
    for period in ("quarter", "year"):
        out = tmp_path / period
        result = year.custody("publish", "stats", "--as-of", str(year.checkpoint), "--period", period, "--out", str(out))
        assert result.exit_code == 0, result.output
        releases.append(out)
    union = [t for release in releases for t in json.loads((release / "data.json").read_text())["tables"]]
    assert joint_recoverable(union, periods=True, nonnegative=True) == []
    for release in releases:
        data = json.loads((release / "data.json").read_text())
        assert data["rules"]["edition"] == 4 and "month, quarter and year releases" in data["suppression"]["rule"]["method"]
        _check_against_truth(release, year.first, data["period"])

    old = {period: [t.as_dict() for t in compute_at(year.workspace.ledger, year.checkpoint,
                                                     replace(rules_from_config({}, period), edition=2))]
           for period in ("month", "quarter", "year")}
    for tables in old.values():
        assert joint_recoverable(tables) == []
    leaked = joint_recoverable([t for tables in old.values() for t in tables], periods=True)
    assert ("characteristics", "2026-05", "credentials-refused") in leaked
    month = {(c["period"], c["characteristic"]): c["count"] for t in old["month"] if t["name"] == "characteristics"
             for c in t["cells"]}
    quarter = {(c["period"], c["characteristic"]): c["count"] for t in old["quarter"]
               if t["name"] == "characteristics" for c in t["cells"]}
    column = "credentials-refused"
    assert month[("2026-05", column)] is None
    worked_out = quarter[("2026-Q2", column)] - month[("2026-04", column)] - month[("2026-06", column)]
    assert worked_out == expected_counts(year.first, "month")[("characteristics", "2026-05", column)] == 5


def test_the_release_holds_no_personal_data_ids_places_or_dates(year: SyntheticYear, release_at_first: Path) -> None:
    text = "\n".join(p.read_text() for p in release_at_first.iterdir() if p.name != "published-event.json")
    for incident in list(year.first)[:300]:
        assert incident not in text
    for needle in ("Supervisor Person", "Secret St", "RD-SECRET", "witness Name", "555-01", "SECRET-", "SAO-26-"):
        assert needle not in text
    for truth in year.first.values():
        assert truth.day.isoformat() not in text
    assert "analyst-17" not in text


def test_the_data_package_is_valid_frictionless(release_at_first: Path, tmp_path: Path) -> None:
    from frictionless import validate

    report = validate(str(release_at_first / "datapackage.json"))
    assert report.valid, report.flatten(["resourceName", "type", "note"])
    package = json.loads((release_at_first / "datapackage.json").read_text())
    assert {r["path"] for r in package["resources"]} == {
        "incidents_by_agency.csv", "violations_by_category.csv", "violations_by_agency.csv", "characteristics.csv",
        "referrals.csv", "data.json"}
    schema = next(r["schema"] for r in package["resources"] if r["path"] == "violations_by_agency.csv")
    assert [f["name"] for f in schema["fields"]] == ["period", "agency", "count", "suppressed"]
    assert schema["fields"][1]["constraints"]["enum"] == ["ICE", "CBP", "multiple", "other", "Total"]
    copy = tmp_path / "copy"
    shutil.copytree(release_at_first, copy)
    path = copy / "referrals.csv"
    path.write_text(path.read_text().replace("\nTotal,Total,", "\nTotal,Total,9", 1))
    broken = validate(str(copy / "datapackage.json"))
    assert not broken.valid
    assert any(error[0] in ("hash-count", "byte-count") for error in broken.flatten(["type"]))


def test_the_published_event_names_every_file_and_is_proved(year: SyntheticYear, release_at_first: Path) -> None:
    import hashlib

    from custody.ledger import checkpoint as notes

    event = json.loads((release_at_first / "published-event.json").read_text())
    assert event["action"] == "published" and event["actor"] == "analyst-17"
    details = event["details"]
    assert details["checkpoint"]["size"] == year.checkpoint
    assert details["rules"]["suppression"]["min"] == 1 and details["rules"]["suppression"]["max"] == 10
    assert {c["name"] for c in details["rules"]["taxonomy"]} >= set(CATEGORIES)
    for name, digest in details["files"].items():
        assert hashlib.sha256((release_at_first / name).read_bytes()).hexdigest() == digest
    assert set(details["files"]) == {p.name for p in release_at_first.iterdir()} - {
        "published-event.json", "published-event.tlog-proof", "consistency-proof.txt", "verifier.key"}
    verifier = notes.Verifier.from_text((year.custody.home / "verifier.key").read_text().strip())
    proved = notes.verify_tlog_proof((release_at_first / "published-event.tlog-proof").read_text(), [verifier],
                                     entry=event["leaf"].encode())
    assert proved.index == event["seq"] and proved.checkpoint.size > event["seq"]
    logged = [e for e in year.custody.json("log") if e["action"] == "published"]
    assert any(e["seq"] == event["seq"] and e["hash"] == event["hash"] for e in logged)


def test_verify_passes_offline_and_names_each_tampered_file(release_at_first: Path, tmp_path: Path) -> None:
    from cli.main import cli
    from click.testing import CliRunner

    runner = CliRunner()
    nowhere = {"CUSTODY_HOME": str(tmp_path / "no-such-home"), "CUSTODY_DB": "sqlite:////nonexistent/x.db"}
    good = runner.invoke(cli, ["publish", "verify", str(release_at_first), "--json"], env=nowhere)
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    assert report["ok"] is True and report["files_checked"] == 10 and report["verifier_key_from"] == "release"

    copy = tmp_path / "tampered"
    shutil.copytree(release_at_first, copy)
    csv_path = copy / "incidents_by_agency.csv"
    lines = csv_path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.split(",")[2] not in ("", "count", "0"))
    fields = lines[index].split(",")
    fields[2] = str(int(fields[2]) + 1)
    lines[index] = ",".join(fields)
    csv_path.write_text("\n".join(lines) + "\n")
    (copy / "extra.csv").write_text("a,b\n")
    new_table = copy / "violations_by_agency.csv"
    rows = new_table.read_text().splitlines()
    index = next(i for i, line in enumerate(rows) if line.split(",")[2] not in ("", "count"))
    fields = rows[index].split(",")
    fields[2] = str(int(fields[2]) + 1)
    rows[index] = ",".join(fields)
    new_table.write_text("\n".join(rows) + "\n")
    bad = runner.invoke(cli, ["publish", "verify", str(copy), "--json"], env=nowhere)
    assert bad.exit_code == 3, bad.output
    findings = {(f["subject"], f["kind"]) for f in json.loads(bad.stdout)["findings"]}
    assert findings == {("incidents_by_agency.csv", "mismatch"), ("violations_by_agency.csv", "mismatch"),
                        ("extra.csv", "unexpected")}

    text = runner.invoke(cli, ["publish", "verify", str(copy)], env=nowhere)
    assert text.exit_code == 3
    assert "incidents_by_agency.csv: its SHA-256 is not the one the published event records" in text.stderr


def test_a_forged_event_or_a_foreign_key_is_caught(year: SyntheticYear, release_at_first: Path, tmp_path: Path) -> None:
    from custody.ledger.checkpoint import generate_signer

    copy = tmp_path / "forged"
    shutil.copytree(release_at_first, copy)
    event_path = copy / "published-event.json"
    event = json.loads(event_path.read_text())
    # a forger changes a cell and the event's digest of the file: the event's hash no longer fits
    csv_path = copy / "referrals.csv"
    csv_path.write_text(csv_path.read_text().replace("\nTotal,Total,", "\nTotal,Total,1", 1))
    import hashlib

    event["details"]["files"]["referrals.csv"] = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    event_path.write_text(json.dumps(event))
    result = year.custody("publish", "verify", str(copy), "--json")
    assert result.exit_code == 3
    subjects = {f["subject"] for f in json.loads(result.stdout)["findings"]}
    # the event no longer fits its hash nor its proof, and the CSV no longer says what data.json says
    assert subjects == {"published-event.json", "published-event.tlog-proof", "referrals.csv"}

    _, other = generate_signer("elsewhere/custody/0000")
    pinned = year.custody("publish", "verify", str(release_at_first), "--key", other, "--json")
    assert pinned.exit_code == 3
    subjects = {f["subject"] for f in json.loads(pinned.stdout)["findings"]}
    assert subjects == {"published-event.tlog-proof", "checkpoint.txt"}
    right = year.custody("publish", "verify", str(release_at_first), "--key",
                         str(year.custody.home / "verifier.key"), "--json")
    assert right.exit_code == 0 and json.loads(right.stdout)["verifier_key_from"] == "given"


def test_recompute_matches_every_cell_and_names_a_changed_one(year: SyntheticYear, release_at_first: Path,
                                                              tmp_path: Path) -> None:
    report = year.custody.json("publish", "verify", str(release_at_first), "--recompute")
    values, _ = published(release_at_first)
    assert report["recomputed"] is True and report["cells_compared"] == len(values)
    assert report["mismatched_cells"] == []

    copy = tmp_path / "changed"
    shutil.copytree(release_at_first, copy)
    data = json.loads((copy / "data.json").read_text())
    cell = next(c for c in data["tables"][0]["cells"] if c["count"] and c["period"] != "Total")
    cell["count"] += 5
    by_agency = next(t for t in data["tables"] if t["name"] == "violations_by_agency")
    other = next(c for c in by_agency["cells"] if c["count"] and c["period"] != "Total" and c["agency"] != "Total")
    other["count"] -= 1
    (copy / "data.json").write_text(json.dumps(data))
    result = year.custody("publish", "verify", str(copy), "--recompute", "--json")
    assert result.exit_code == 3
    changed = json.loads(result.stdout)
    assert changed["mismatched_cells"] == [
        {"table": "incidents_by_agency", "period": cell["period"], "column": cell["agency"],
         "recomputed": cell["count"] - 5, "release": cell["count"]},
        {"table": "violations_by_agency", "period": other["period"], "column": other["agency"],
         "recomputed": other["count"] + 1, "release": other["count"]}]


def test_a_csv_that_disagrees_with_data_json_is_caught_offline(year: SyntheticYear, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer itself is made to write two CSVs that disagree with data.json, so every digest,
    the event and its proof are consistent: only the cross-check of the files can tell."""
    import custody.publish.release as writer
    from cli.main import cli
    from click.testing import CliRunner

    real = writer.table_csv
    total = expected_counts(year.first, "quarter")[("incidents_by_agency", "Total", "Total")]
    unmarked: list[str] = []

    def patched(table: Any) -> bytes:
        data = real(table)
        if table.name == "incidents_by_agency":
            wrong = data.replace(f"\nTotal,Total,{total},".encode(), f"\nTotal,Total,{total + 100},".encode())
            assert wrong != data
            return wrong
        if not unmarked and b",,primary\n" in data:
            # a suppressed value no longer marked as suppressed
            unmarked.append(f"{table.name}.csv")
            return data.replace(b",,primary\n", b",,\n", 1)
        return data

    monkeypatch.setattr(writer, "table_csv", patched)
    out = tmp_path / "disagreeing"
    result = year.custody("publish", "stats", "--as-of", str(year.checkpoint), "--period", "quarter", "--out", str(out))
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    line = 1 + (out / "incidents_by_agency.csv").read_text().splitlines().index(f"Total,Total,{total + 100},")
    assert unmarked and unmarked[0] != "incidents_by_agency.csv"
    rows = (out / unmarked[0]).read_text().splitlines()
    blank = next(number for number, row in enumerate(rows, start=1) if row.endswith(",,"))
    period, column = rows[blank - 1].split(",")[:2]

    runner = CliRunner()
    nowhere = {"CUSTODY_HOME": str(tmp_path / "no-such-home"), "CUSTODY_DB": "sqlite:////nonexistent/x.db"}
    checked = runner.invoke(cli, ["publish", "verify", str(out), "--json"], env=nowhere)
    assert checked.exit_code == 3, checked.output
    report = json.loads(checked.stdout)
    assert report["files_checked"] == 10 and report["csv_cells_checked"] > 100
    assert sorted((f["subject"], f["kind"], f["message"]) for f in report["findings"]) == sorted([
        ("incidents_by_agency.csv", "mismatch", f"row Total, column Total (line {line}): count {total + 100}, but "
         f"data.json says {total} (the CSV and data.json disagree)"),
        (unmarked[0], "mismatch", f"row {period}, column {column} (line {blank}): count empty, but data.json says "
         "empty (primary) (the CSV and data.json disagree)"),
    ])
    text = runner.invoke(cli, ["publish", "verify", str(out)], env=nowhere)
    assert text.exit_code == 3
    assert (f"incidents_by_agency.csv: row Total, column Total (line {line}): count {total + 100}, "
            f"but data.json says {total}") in text.stderr


def test_a_revision_that_hides_a_change_is_caught_by_recompute(year: SyntheticYear, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer is made to state no change against the earlier quarter release: the files,
    digests and proofs are consistent (offline verify passes), the recomputation is not."""
    import custody.publish.release as writer

    earlier = tmp_path / "earlier"
    assert year.custody("publish", "stats", "--as-of", str(year.checkpoint), "--period", "quarter",
                        "--out", str(earlier)).exit_code == 0
    real = writer.revision_against
    hidden: list[dict[str, Any]] = []

    def hiding(*args: Any, **kwargs: Any) -> Any:
        revision = real(*args, **kwargs)
        hidden.extend(revision.changes)
        revision.changes = []
        return revision

    monkeypatch.setattr(writer, "revision_against", hiding)
    out = tmp_path / "hiding"
    result = year.custody("publish", "stats", "--as-of", "latest", "--period", "quarter", "--out", str(out))
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    assert hidden, "the later events should change some earlier quarter"
    data = json.loads((out / "data.json").read_text())
    assert data["revision"]["changes"] == []
    assert data["revision"]["previous"]["event"] == json.loads((earlier / "published-event.json").read_text())["seq"]

    assert year.custody.json("publish", "verify", str(out))["ok"] is True
    result = year.custody("publish", "verify", str(out), "--recompute", "--json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["revision_checked"] is True and report["mismatched_cells"] == []
    messages = [(f["subject"], f["message"]) for f in report["findings"]]
    shown = lambda v: "suppressed" if v is None else str(v)  # noqa: E731
    stated = [("data.json", f"its revision does not state that {c['table']} {c['period']} {c['column']} changed from "
               f"{shown(c['before'])} to {shown(c['after'])}") for c in sorted(
                   hidden, key=lambda c: (c["table"], c["period"], c["column"]))][:20]
    assert messages[:len(stated)] == stated
    assert messages[-1][0] == "published-event.json" and f"with {len(hidden)}" in messages[-1][1]
    assert year.custody.json("publish", "verify", str(earlier), "--recompute")["revision_checked"] is True


def test_a_release_at_an_older_checkpoint_ignores_later_events(year: SyntheticYear, release_at_first: Path,
                                                              tmp_path: Path) -> None:
    again = tmp_path / "again"
    result = year.custody("publish", "stats", "--as-of", str(year.checkpoint), "--out", str(again), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert published(again) == published(release_at_first)
    for name in ("incidents_by_agency.csv", "violations_by_category.csv", "violations_by_agency.csv",
                 "characteristics.csv", "referrals.csv"):
        assert (again / name).read_bytes() == (release_at_first / name).read_bytes()
    assert summary["revision"]["changes"] == []

    latest = tmp_path / "latest"
    result = year.custody("publish", "stats", "--as-of", "latest", "--out", str(latest), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    _check_against_truth(latest, year.final, "month")
    before, _ = published(again)
    after, _ = published(latest)
    differ = {k for k in after if k in before and k[1] != "Total" and before[k] != after[k]}
    assert differ, "the later events should change some earlier month"
    revision = json.loads((latest / "data.json").read_text())["revision"]
    assert revision["previous"]["event"] == json.loads((again / "published-event.json").read_text())["seq"]
    assert {(c["table"], c["period"], c["column"]) for c in revision["changes"]} == differ
    page = (latest / "index.html").read_text()
    assert "Changes from the earlier release" in page and f"ledger event {revision['previous']['event']}" in page
    assert year.custody.json("publish", "verify", str(release_at_first), "--recompute")["mismatched_cells"] == []


def test_unknown_checkpoint_or_nonempty_out_is_refused(year: SyntheticYear, tmp_path: Path) -> None:
    result = year.custody("publish", "stats", "--as-of", "999999", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "no signed checkpoint of size 999999" in result.stderr
    result = year.custody("publish", "stats", "--as-of", "soon", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "neither a checkpoint size nor 'latest'" in result.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("")
    result = year.custody("publish", "stats", "--as-of", "latest", "--out", str(tmp_path / "full"))
    assert result.exit_code == 2 and "is not empty" in result.stderr
    assert not (tmp_path / "x").exists()


# -- the taxonomy and tagging ----------------------------------------------------------------


def test_violation_categories_tag_incidents_and_unknown_ones_are_refused(initialized: Custody) -> None:
    refused = initialized("incident", "create", "INC-9", "--violation", "jaywalking")
    assert refused.exit_code == 2
    assert "unknown category 'jaywalking'" in refused.stderr and "battery, civil-rights-act" in refused.stderr
    assert initialized.json("log") == []
    created = initialized.json("incident", "create", "INC-9", "--violation", "trust-act", "--violation", "battery",
                               "--citation", "5 ILCS 805/15(h)")
    assert created["fields"]["violation_categories"] == ["trust-act", "battery"]
    assert created["fields"]["violations"] == ["5 ILCS 805/15(h)"]
    amended = initialized.json("incident", "amend", "INC-9", "--violation", "use-of-force", "--reason", "review")
    assert amended["fields"]["violation_categories"] == ["use-of-force"]
    assert amended["fields"]["violations"] == ["5 ILCS 805/15(h)"]
    again = initialized("incident", "amend", "INC-9", "--violation", "nope", "--reason", "x")
    assert again.exit_code == 2 and "unknown category 'nope'" in again.stderr


def test_the_taxonomy_cites_law_and_the_agency_can_extend_and_retire(initialized: Custody) -> None:
    shipped = {c["name"]: c for c in initialized.json("publish", "taxonomy")}
    assert "5 ILCS 805/15" in shipped["trust-act"]["citations"][0]
    assert "Way Forward Act" in shipped["trust-act"]["citations"][0]
    assert shipped["civil-rights-act"]["citations"] == ["Illinois Civil Rights Act of 2003, 740 ILCS 23/5"]
    assert shipped["identification-refused"]["generic"] is True
    (initialized.home / "config.toml").write_text(
        '[violations.categories.curfew-ordinance]\ntitle = "Local ordinance"\ncitations = ["MCC 8-16-020"]\n'
        '[violations.categories.welcoming-city]\nretired = true\n')
    extended = {c["name"]: c for c in initialized.json("publish", "taxonomy")}
    assert extended["curfew-ordinance"]["citations"] == ["MCC 8-16-020"] and extended["welcoming-city"]["retired"]
    assert initialized("incident", "create", "A", "--violation", "curfew-ordinance").exit_code == 0
    retired = initialized("incident", "create", "B", "--violation", "welcoming-city")
    assert retired.exit_code == 2 and "welcoming-city" not in retired.stderr.split("known categories:")[1]


def test_districts_are_the_finest_place_and_are_escaped(initialized: Custody, tmp_path: Path) -> None:
    (initialized.home / "config.toml").write_text('[publish]\nlocation_level = "district"\nsuppress_max = 2\n')
    for number in range(8):
        district = "<b>010</b>" if number < 5 else "011"
        result = initialized("incident", "create", f"D-{number}", "--occurred-at", "2026-05-02T10:00:00-05:00",
                             "--agency", "CBP", "--district", district, "--location", f"{number} Hidden Ave")
        assert result.exit_code == 0, result.output
    out = tmp_path / "rel"
    assert initialized("publish", "stats", "--as-of", "latest", "--out", str(out)).exit_code == 0
    values, reasons = published(out)
    assert values[("incidents_by_district", "2026-05", "<b>010</b>")] == 5
    assert values[("incidents_by_district", "2026-05", "011")] == 3
    assert values[("incidents_by_agency", "2026-05", "CBP")] == 8
    assert joint_recoverable(json.loads((out / "data.json").read_text())["tables"]) == []
    page = (out / "index.html").read_text()
    assert "&lt;b&gt;010&lt;/b&gt;" in page and "<b>010</b>" not in page and "Hidden Ave" not in page


def test_offline_verification_loads_no_database_code(release_at_first: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from custody.publish.verify import verify_release; "
            f"check = verify_release(Path({str(release_at_first)!r})); "
            "print(check.ok, check.files_checked, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'boto3', 'botocore', 'jinja2', 'psycopg')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True 10 []"


def test_a_release_after_one_of_the_old_edition_says_the_rules_changed(initialized: Custody, tmp_path: Path) -> None:
    """An earlier release whose rules name no edition (each table suppressed on its own, no
    violations-by-agency table) is recomputed as it was made, and the later release says its
    differences may come from the change of rules. The incidents are the case of
    tests/unit/test_publish_joint.py where suppressing each table on its own leaked."""
    from custody.publish.release import ACTION, checkpoint_row

    (initialized.home / "config.toml").write_text('[publish]\nlocation_level = "district"\n')
    plan = [("01", "ICE")] * 3 + [("02", "ICE")] * 20 + [("02", "CBP")] * 5 + [("03", "ICE")] * 12 + [("03", "CBP")] * 12
    for number, (month, agency) in enumerate(plan):
        result = initialized("incident", "create", f"E-{number}", "--occurred-at", f"2026-{month}-03T10:00:00-05:00",
                             "--agency", agency)
        assert result.exit_code == 0, result.output
    ws = open_workspace(_settings(initialized.home))
    ws.seal(force=True)
    point = checkpoint_row(ws.ledger, "latest")
    first = tmp_path / "first"
    assert initialized("publish", "stats", "--as-of", str(point["size"]), "--out", str(first)).exit_code == 0
    rules = json.loads((first / "published-event.json").read_text())["details"]["rules"]
    assert rules.pop("edition") == 4
    ws.ledger.append(ACTION, actor="analyst-17", role="analyst",
                     details={"checkpoint": {"size": point["size"], "root": point["root"]}, "rules": rules,
                              "files": {}})
    later = tmp_path / "later"
    result = initialized("publish", "stats", "--as-of", "latest", "--out", str(later), "--json")
    assert result.exit_code == 0, result.output
    revision = json.loads(result.stdout)["revision"]
    assert revision["previous"]["edition"] == 1
    # the old edition hid February's total in the agency table and showed March's; February's,
    # not changed since, stays hidden (now in every table that shows it), as a value an earlier
    # release hid does
    changes = {(c["table"], c["period"], c["column"]): (c["before"], c["after"]) for c in revision["changes"]}
    assert ("incidents_by_agency", "2026-02", "Total") not in changes
    assert changes[("incidents_by_district", "2026-02", "Total")] == (25, None)
    assert changes[("incidents_by_agency", "2026-03", "Total")] == (24, None)
    assert not any(table == "violations_by_agency" for table, _, _ in changes)
    page = (later / "index.html").read_text()
    assert "each table on its own (edition 1 of the rules)" in page
    values, _ = published(later)
    assert values[("incidents_by_district", "2026-03", "Total")] is None


def test_a_revision_links_the_earlier_release_and_recomputes(initialized: Custody, tmp_path: Path) -> None:
    """With ``release_url`` configured, a revision links the earlier release (its event number
    in the link), in data.json and on the page; --recompute makes the same revision statement."""
    (initialized.home / "config.toml").write_text(
        '[publish]\nrelease_url = "https://data.example.org/custody/releases/{event}/"\n')

    def incidents(first: int, count: int) -> None:
        for number in range(first, first + count):
            result = initialized("incident", "create", f"L-{number}", "--occurred-at",
                                 f"2026-0{1 + number % 3}-03T10:00:00-05:00", "--agency", ("ICE", "CBP")[number % 2])
            assert result.exit_code == 0, result.output

    incidents(0, 40)
    first = tmp_path / "first"
    assert initialized("publish", "stats", "--as-of", "latest", "--out", str(first)).exit_code == 0
    report = initialized.json("publish", "verify", str(first), "--recompute")
    assert report["ok"] and report["revision_checked"] and json.loads((first / "data.json").read_text())["revision"] is None
    incidents(40, 25)
    second = tmp_path / "second"
    assert initialized("publish", "stats", "--as-of", "latest", "--out", str(second)).exit_code == 0
    event = json.loads((first / "published-event.json").read_text())
    revision = json.loads((second / "data.json").read_text())["revision"]
    url = f"https://data.example.org/custody/releases/{event['seq']}/"
    assert revision["previous"]["url"] == url and revision["previous"]["event"] == event["seq"]
    assert revision["previous"]["datapackage_sha256"] == event["details"]["files"]["datapackage.json"]
    assert ("incidents_by_agency", "2026-01", "Total") in {(c["table"], c["period"], c["column"])
                                                          for c in revision["changes"]}
    page = (second / "index.html").read_text()
    assert f'<a href="{url}">{url}</a>' in page
    report = initialized.json("publish", "verify", str(second), "--recompute")
    assert report["ok"] and report["revision_checked"] and report["mismatched_cells"] == []
