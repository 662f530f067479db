"""Joint suppression: over all the tables of a release, no suppressed value follows from the
published ones, though tables share totals (incidents per period in the agency and district
tables, alleged violations per period in the category and agency tables).

The attack (``joint_recoverable``, in tests/cli/test_publish.py) is the test's own: exact
elimination in fractions over every table's equations, a shared total one unknown."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from typing import Any

import pytest

from custody.cases.violations import taxonomy_from_dicts
from custody.errors import BadInput
from custody.publish.facts import IncidentFacts
from custody.publish.rules import PublishRules
from custody.publish.stats import TOTAL, compute_tables, period_of
from tests.cli.test_publish import joint_recoverable

TAXONOMY = taxonomy_from_dicts([{"name": n, "title": n.title(), "citations": [f"cite {n}"]}
                                for n in ("battery", "trust-act", "restraint")])
AGENCIES = ("ICE", "ICE", "CBP", "multiple", "other")


def incident(month: int, agency: str, categories: tuple[str, ...] = (), district: str | None = None,
             referred: bool = False, felony: bool = False, detained: int = 0) -> IncidentFacts:
    return IncidentFacts(day=date(2026, month, 3), agency=agency, categories=categories, use_of_force=False,
                         detention=detained > 0, people_detained=detained, injury=False, ems_summoned=False, aid_rendered=False,
                         supervisor_identified=False, credentials_refused=False, referred=referred, felony=felony,
                         district=district)


def release(facts: list[IncidentFacts], edition: int = 2, high: int = 10) -> list[dict[str, Any]]:
    rules = PublishRules(period="month", location_level="district", taxonomy=TAXONOMY, edition=edition,
                         suppress_max=high)
    return [t.as_dict() for t in compute_tables(facts, rules)]


def test_a_total_hidden_in_one_table_and_shown_in_another_leaked_and_no_longer_does() -> None:
    # January's 3 incidents must be suppressed. No district is stated, so the district table
    # has one column and must hide a second month with January; the agency table chooses its
    # own second month. Suppressed each on its own (edition 1), the agency table hides
    # February's total (25) and shows March's (24), the district table the reverse: January is
    # 52 - 25 - 24 = 3.
    facts = ([incident(1, "ICE")] * 3 + [incident(2, "ICE")] * 20 + [incident(2, "CBP")] * 5
             + [incident(3, "ICE")] * 12 + [incident(3, "CBP")] * 12)
    old = {(t["name"], c["period"], c[t["column_dimension"]]): c["count"]
           for t in release(facts, edition=1) for c in t["cells"]}
    assert old[("incidents_by_agency", "2026-02", TOTAL)] is None
    assert old[("incidents_by_district", "2026-02", TOTAL)] == 25
    assert old[("incidents_by_agency", "2026-03", TOTAL)] == 24
    assert old[("incidents_by_district", "2026-03", TOTAL)] is None
    assert old[("incidents_by_agency", TOTAL, TOTAL)] == 52
    assert old[("incidents_by_agency", "2026-01", TOTAL)] is None
    assert 52 - 25 - 24 == 3
    leaked = joint_recoverable(release(facts, edition=1))
    assert ("=incidents", "2026-01", TOTAL) in leaked

    tables = release(facts)
    assert joint_recoverable(tables) == []
    new = {(t["name"], c["period"], c[t["column_dimension"]]): (c["count"], c["suppressed"])
           for t in tables for c in t["cells"]}
    for period in ("2026-01", "2026-02", "2026-03", TOTAL):
        assert new[("incidents_by_agency", period, TOTAL)] == new[("incidents_by_district", period, TOTAL)]
    assert new[("incidents_by_agency", "2026-01", TOTAL)] == (None, "primary")


def _random_facts(rng: random.Random) -> list[IncidentFacts]:
    months = rng.randint(1, 4)
    return [incident(rng.randint(1, months), rng.choice(AGENCIES),
                     tuple(rng.sample(["battery", "trust-act", "restraint", "not-in-taxonomy"], rng.choice([0, 1, 1, 2]))),
                     rng.choice(["001", "002", "003", None]), rng.random() < 0.2, rng.random() < 0.5,
                     rng.choice([0, 0, 0, 1, 2]))
            for _ in range(rng.randint(1, 90))]


@pytest.mark.parametrize("block", range(6))
def test_random_releases_leak_nothing_across_tables(block: int) -> None:
    for seed in range(block * 50, block * 50 + 50):
        rng = random.Random(seed)
        facts = _random_facts(rng)
        high = rng.randint(1, 12)
        tables = release(facts, high=high)
        assert joint_recoverable(tables) == [], seed
        counts: Counter[tuple[str, str]] = Counter()
        for fact in facts:
            for row in (period_of(fact.day, "month"), TOTAL):
                for column in (fact.agency, TOTAL):
                    counts[(row, column)] += len(fact.categories)
        named = {t["name"]: t for t in tables}
        rules = PublishRules(period="month", location_level="district", taxonomy=TAXONOMY, suppress_max=high)
        computed = {t.name: t for t in compute_tables(facts, rules)}
        by_agency = computed["violations_by_agency"]
        assert {cell: by_agency.counts[cell] for cell in by_agency.cells()} == {
            cell: counts[cell] for cell in by_agency.cells()}, seed
        for table in computed.values():
            for cell in table.cells():
                value = table.counts[cell]
                if 1 <= value <= high:
                    assert table.suppressed.get(cell) == "primary", (seed, table.name, cell)
                else:
                    assert table.suppressed.get(cell) in (None, "complementary"), (seed, table.name, cell)
        assert {c["period"]: c["count"] for c in named["violations_by_agency"]["cells"] if c["agency"] == TOTAL} == {
            c["period"]: c["count"] for c in named["violations_by_category"]["cells"] if c["category"] == TOTAL}


def test_a_release_without_an_edition_is_recomputed_as_it_was_made() -> None:
    rules = PublishRules(period="month", taxonomy=TAXONOMY)
    record = rules.as_dict()
    assert record["edition"] == 4 and PublishRules.from_dict(record) == rules
    legacy = {k: v for k, v in record.items() if k != "edition"}
    old = PublishRules.from_dict(legacy)
    assert old.edition == 1 and "of its table" in old.suppression["method"]
    facts = [incident(1, "ICE", ("battery",))] * 3 + [incident(1, "CBP", ("battery",))] * 30
    assert [t.name for t in compute_tables(facts, old)] == [
        "incidents_by_agency", "violations_by_category", "characteristics", "referrals"]
    assert "violations_by_agency" in [t.name for t in compute_tables(facts, rules)]
    with pytest.raises(BadInput, match="edition 9 of the release format is not known"):
        PublishRules.from_dict({**record, "edition": 9})


def test_counts_a_reader_knows_are_zero_are_never_hidden_as_complements() -> None:
    from custody.publish.stats import known_zeros

    # January: 4 ICE incidents with alleged violations (suppressed), none of CBP, so CBP's
    # alleged violations are known to be 0; nobody detained in February.
    facts = ([incident(1, "ICE", ("battery",), detained=1)] * 4 + [incident(2, "ICE", ("battery",))] * 30
             + [incident(2, "CBP", ("battery",))] * 30 + [incident(1, "other", ("battery",), detained=1)] * 30)
    rules = PublishRules(period="month", taxonomy=TAXONOMY)
    tables = {t.name: t for t in compute_tables(facts, rules)}
    zeros = known_zeros(list(tables.values()))
    assert ("violations_by_agency", "2026-01", "CBP") in zeros
    assert ("characteristics", "2026-02", "people-detained") in zeros
    assert ("violations_by_agency", "2026-02", "CBP") not in zeros
    assert tables["violations_by_agency"].suppressed[("2026-01", "ICE")] == "primary"
    for table in tables.values():
        for cell, reason in table.suppressed.items():
            assert table.key(cell) not in zeros, (table.name, cell, reason)
    assert joint_recoverable([t.as_dict() for t in tables.values()]) == []
