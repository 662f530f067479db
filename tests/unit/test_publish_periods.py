"""Suppression over the period hierarchy (edition 3): the month, quarter and year releases of
the same incidents at one checkpoint, read together, reveal no suppressed value.

The attack is the test's own (``joint_recoverable`` in tests/cli/test_publish.py, with the sums
of months into quarters and of quarters into years, and the parts of a sum of 0 known to be 0).
The incidents span one to fourteen months from a month of 2025, often into 2026 or 2027, so first and last quarters and years are partial:
they hold months with no row (before the first incident, after the last)."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from custody.publish.facts import IncidentFacts
from custody.publish.rules import PERIODS, PublishRules
from custody.publish.stats import TOTAL, Table, build_tables, compute_all_periods, compute_tables, period_of
from tests.cli.test_publish import joint_recoverable
from tests.unit.test_publish_joint import AGENCIES, TAXONOMY


def _facts(rng: random.Random) -> list[IncidentFacts]:
    start = rng.randint(0, 11)
    span = rng.randint(1, 14)
    found = []
    for _ in range(rng.randint(1, 140)):
        month = start + rng.randrange(span)
        detained = rng.choice([0, 0, 0, 1, 2])
        found.append(IncidentFacts(
            day=date(2025 + month // 12, month % 12 + 1, rng.randint(1, 28)), agency=rng.choice(AGENCIES),
            categories=tuple(rng.sample(["battery", "trust-act", "restraint", "not-in-taxonomy"],
                                        rng.choice([0, 1, 1, 2]))),
            use_of_force=rng.random() < 0.3, detention=detained > 0, people_detained=detained,
            injury=rng.random() < 0.2, ems_summoned=rng.random() < 0.1, aid_rendered=rng.random() < 0.2,
            supervisor_identified=rng.random() < 0.5, credentials_refused=rng.random() < 0.3,
            referred=rng.random() < 0.2, felony=rng.random() < 0.5, district=rng.choice(["001", "002", None])))
    return found


def _releases(facts: list[IncidentFacts], high: int, edition: int = 3) -> dict[str, list[Table]]:
    """The three releases (edition 3: computed once, as ``compute_tables`` does for each period)."""
    if edition >= 3:
        return compute_all_periods(facts, PublishRules(period="month", location_level="district", taxonomy=TAXONOMY,
                                                       suppress_max=high, edition=edition))
    return {period: compute_tables(facts, PublishRules(period=period, location_level="district", taxonomy=TAXONOMY,
                                                       suppress_max=high, edition=edition))
            for period in PERIODS}


def _union(releases: dict[str, list[Table]]) -> list[dict[str, Any]]:
    return [t.as_dict() for tables in releases.values() for t in tables]


@pytest.mark.parametrize("block", range(3))
def test_random_releases_of_all_periods_together_leak_nothing(block: int) -> None:
    began = time.monotonic()
    for seed in range(block * 20, block * 20 + 20):
        rng = random.Random(seed)
        facts = _facts(rng)
        high = rng.randint(1, 12)
        releases = _releases(facts, high)
        assert joint_recoverable(_union(releases), periods=True, nonnegative=True) == [], seed
        for period, tables in releases.items():
            # the exact counts, against the test's own count of incidents per period and agency
            incidents: Counter[tuple[str, str]] = Counter()
            for fact in facts:
                for row in (period_of(fact.day, period), TOTAL):
                    for column in (fact.agency, TOTAL):
                        incidents[(row, column)] += 1
            table = next(t for t in tables if t.name == "incidents_by_agency")
            assert {cell: table.counts[cell] for cell in table.cells()} == {
                cell: incidents[cell] for cell in table.cells()}, (seed, period)
            for table in tables:
                for cell in table.cells():
                    if 1 <= table.counts[cell] <= high:
                        assert table.suppressed.get(cell) == "primary", (seed, period, table.name, cell)
                    else:
                        assert table.suppressed.get(cell) in (None, "complementary"), (seed, period, table.name, cell)
    assert time.monotonic() - began < 10


def test_the_pattern_does_not_depend_on_the_period_asked_for() -> None:
    facts = _facts(random.Random(5))
    releases = _releases(facts, 10)
    for period, tables in releases.items():
        for other in PERIODS:
            again = {t.name: t for t in compute_tables(facts, PublishRules(
                period=other, location_level="district", taxonomy=TAXONOMY))}
            # the Total row, which every period shows, is hidden alike in every release
            for table in tables:
                assert {c: r for c, r in table.suppressed.items() if c[0] == TOTAL} == {
                    c: r for c, r in again[table.name].suppressed.items() if c[0] == TOTAL}, (period, other, table.name)


def test_the_old_edition_leaked_across_periods_on_random_incidents_and_is_still_computed_as_made() -> None:
    from custody.publish.stats import suppress_jointly

    leaked = 0
    for seed in range(20):
        rng = random.Random(seed)
        facts = _facts(rng)
        old = _releases(facts, 10, edition=2)
        for period, tables in old.items():
            # edition 2: each period's tables suppressed jointly on their own, as before
            rules = PublishRules(period=period, location_level="district", taxonomy=TAXONOMY, edition=2)
            alone = build_tables(facts, rules, period)
            suppress_jointly(alone, rules)
            assert [t.suppressed for t in alone] == [t.suppressed for t in tables], (seed, period)
        leaked += bool(joint_recoverable(_union(old), periods=True))
    assert leaked >= 3


def test_a_partial_quarter_and_year_sum_only_the_months_shown() -> None:
    from custody.publish.stats import period_equations

    rules = PublishRules(period="month", taxonomy=TAXONOMY)
    base = _facts(random.Random(3))[0]
    facts = [replace(base, day=date(2025, 11, 2))] * 20 + [replace(base, day=date(2026, 2, 2))] * 20
    versions = {period: build_tables(facts, rules, period) for period in PERIODS}
    assert versions["month"][0].rows == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert versions["quarter"][0].rows == ["2025-Q4", "2026-Q1"]
    equations = {total: parts for total, parts in period_equations(versions)}
    assert equations[("shared:incidents", "2025-Q4", TOTAL)] == [
        ("shared:incidents", "2025-11", TOTAL), ("shared:incidents", "2025-12", TOTAL)]
    assert equations[("characteristics", "2026", "injury")] == [("characteristics", "2026-Q1", "injury")]
