"""Successive releases at different checkpoints (a release every month): read together, with the
earlier periods' values that did not change between them, they reveal no suppressed value.

The attacker holds every release's published values and knows (from a revision statement, or
by assuming it) which values did not change from one release to the next: such a value is one
unknown in both releases' systems. Exact elimination over all the releases' equations together
(``successive_recoverable``, the test's own) must determine no suppressed value. Edition 3
chose each release's complements afresh (new rows change the system), so a value hidden in one
release and published, unchanged, in the next gave away a hidden value of the first. With month
and quarter releases at each checkpoint, the attacker also has every period version's equations
and the sums of months into quarters (``periods_recoverable``)."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import date
from fractions import Fraction
from typing import Any

import pytest

from custody.publish.facts import IncidentFacts
from custody.publish.rules import PublishRules
from custody.publish.stats import History, Table, compute_release
from tests.cli.test_publish import SHARED_TOTALS, _lines
from tests.unit.test_publish_joint import AGENCIES, TAXONOMY

Var = tuple[int, str, str, str]


def successive_recoverable(releases: list[tuple[list[dict[str, Any]], dict[tuple[str, str, str], int]]]
                           ) -> list[Var]:
    """Suppressed values of any of ``releases`` (each: its published tables, and the true value
    of every cell, which the attacker uses only to know which values did not change from the
    release before) that all the releases' published values together determine. A value is
    ``(release, table, row, column)``, named by the first release of the run in which it stayed
    the same; a shared Total column is one value (``SHARED_TOTALS``)."""

    def base(name: str, row: str, column: str) -> tuple[str, str, str]:
        return ("=" + SHARED_TOTALS[name], row, column) if column == "Total" and name in SHARED_TOTALS else (
            name, row, column)

    alias: dict[tuple[int, tuple[str, str, str]], Var] = {}
    known: dict[Var, int | None] = {}
    lines: list[list[Var]] = []
    for number, (tables, truth) in enumerate(releases):
        bases = {base(*key): value for key, value in truth.items()}
        before = {base(*key): value for key, value in releases[number - 1][1].items()} if number else {}
        for key, value in bases.items():
            if key in before and before[key] == value:
                alias[(number, key)] = alias[(number - 1, key)]
            else:
                alias[(number, key)] = (number, *key)
        for table in tables:
            dimension = table["column_dimension"]
            for cell in table["cells"]:
                var = alias[(number, base(table["name"], cell["period"], cell[dimension]))]
                if cell["count"] is not None:
                    assert known.get(var) in (None, cell["count"]), var
                    known[var] = cell["count"]
                else:
                    known.setdefault(var, None)
            lines += [[alias[(number, base(table["name"], *cell))] for cell in line] for line in _lines(table)]
    hidden = {var for var, value in known.items() if value is None}
    basis: dict[Var, dict[Var, Fraction]] = {}
    for line in lines:
        row: dict[Var, Fraction] = {}
        for var, sign in zip(line, [1] * (len(line) - 1) + [-1]):
            if var in hidden:
                row[var] = row.get(var, Fraction(0)) + sign
        _reduce(basis, {var: value for var, value in row.items() if value})
    return sorted(pivot for pivot, row in basis.items() if len(row) == 1)


def _reduce(basis: dict[Var, dict[Var, Fraction]], row: dict[Var, Fraction]) -> None:
    """Gauss-Jordan, one row at a time, exact: every basis row holds its pivot and no other's."""
    for pivot in [var for var in row if var in basis]:
        factor = row.get(pivot, Fraction(0))
        for var, value in basis[pivot].items():
            row[var] = row.get(var, Fraction(0)) - factor * value
        row = {var: value for var, value in row.items() if value}
    if not row:
        return
    pivot = min(row)
    row = {var: value / row[pivot] for var, value in row.items()}
    for other in basis.values():
        factor = other.get(pivot)
        if factor:
            for var, value in row.items():
                other[var] = other.get(var, Fraction(0)) - factor * value
            for var in [var for var, value in other.items() if not value]:
                del other[var]
    basis[pivot] = row


def _incident(rng: random.Random, month: int) -> IncidentFacts:
    detained = rng.choice([0, 0, 0, 1, 2])
    return IncidentFacts(
        day=date(2025 + (month - 1) // 12, (month - 1) % 12 + 1, rng.randint(1, 28)), agency=rng.choice(AGENCIES),
        categories=tuple(rng.sample(["battery", "trust-act", "restraint"], rng.choice([0, 1, 1, 2]))),
        use_of_force=rng.random() < 0.3, detention=detained > 0, people_detained=detained,
        injury=rng.random() < 0.2, ems_summoned=rng.random() < 0.1, aid_rendered=rng.random() < 0.2,
        supervisor_identified=rng.random() < 0.5, credentials_refused=rng.random() < 0.3,
        referred=rng.random() < 0.2, felony=rng.random() < 0.5, district=rng.choice(["001", "002", None]))


def _months(rng: random.Random, first: int, last: int, count: int) -> list[IncidentFacts]:
    return [_incident(rng, rng.randint(first, last)) for _ in range(count)]


def _successive(rng: random.Random, releases: int) -> list[list[IncidentFacts]]:
    """The incidents at each of ``releases`` checkpoints: each adds incidents of the month that
    was the last one and of a month or two after it (and may amend one of the last month), so the
    months before stay as they were."""
    last = rng.randint(2, 8)
    facts = _months(rng, 1, last, rng.randint(20, 120))
    found = [list(facts)]
    for _ in range(releases - 1):
        new_last = last + rng.randint(1, 2)
        facts = facts + _months(rng, last, new_last, rng.randint(5, 40))
        latest = [i for i, f in enumerate(facts) if f.day.month == (last - 1) % 12 + 1 and rng.random() < 0.3]
        for index in latest[:2]:
            facts[index] = replace(facts[index], injury=not facts[index].injury)
        last = new_last
        found.append(list(facts))
    return found


def _rules(edition: int, high: int) -> PublishRules:
    return PublishRules(period="month", location_level="district", taxonomy=TAXONOMY, suppress_max=high,
                        edition=edition)


def release_run(stages: list[list[IncidentFacts]], edition: int, high: int = 10) -> list[list[Table]]:
    """The month releases at each stage, each made (from edition 4 on) with what the one before
    hands on."""
    made: list[list[Table]] = []
    earlier: list[History] = []
    for number, facts in enumerate(stages):
        tables, history = compute_release(facts, _rules(edition, high), earlier, number)
        made.append(tables)
        earlier = [history]
    return made


def _attack(run: list[list[Table]]) -> list[Var]:
    """The values suppressed as primary (small counts) in some release that the attacker finds."""
    primary = {(number, *base) for number, tables in enumerate(run) for t in tables
               for cell, reason in t.suppressed.items() if reason == "primary"
               for base in [("=" + SHARED_TOTALS[t.name], *cell) if cell[1] == "Total" and t.name in SHARED_TOTALS
                            else (t.name, *cell)]}
    return [var for var in _recoverable_in(run) if var in primary]


def _recoverable_in(run: list[list[Table]]) -> list[Var]:
    return successive_recoverable([([t.as_dict() for t in tables],
                                    {(t.name, *cell): t.counts[cell] for t in tables for cell in t.cells()})
                                   for tables in run])


def test_edition_3_successive_releases_leaked_a_suppressed_value() -> None:
    """On main before edition 4: two month releases a month apart, the earlier months unchanged."""
    leaks = []
    for seed in range(60):
        rng = random.Random(seed)
        run = release_run(_successive(rng, 2), edition=3, high=rng.randint(3, 10))
        for tables in run:
            assert _recoverable_in([tables]) == [], seed
        found = [var for var in _attack(run) if var[0] == 0]
        if found:
            leaks.append((seed, found))
    assert leaks, "edition 3 leaked nothing across successive releases"


@pytest.mark.parametrize("releases", [2, 3])
def test_successive_releases_of_edition_4_reveal_nothing(releases: int) -> None:
    began = time.monotonic()
    for seed in range(100, 100 + 80 // releases):
        rng = random.Random(seed)
        stages = _successive(rng, releases)
        high = rng.randint(3, 10)
        run = release_run(stages, edition=4, high=high)
        assert _attack(run) == [], seed
        # the first release is made as edition 3 made it; the values stay exact
        first = compute_release(stages[0], _rules(3, high))[0]
        assert [t.suppressed for t in run[0]] == [t.suppressed for t in first], seed
        for facts, tables in zip(stages, run):
            plain = compute_release(facts, _rules(3, high))[0]
            assert [t.counts for t in tables] == [t.counts for t in plain], seed
            for table in tables:
                for cell, value in table.counts.items():
                    if 1 <= value <= high:
                        assert table.suppressed.get(cell) == "primary", (seed, table.name, cell)
    assert time.monotonic() - began < 15


def periods_recoverable(stages: list[list[IncidentFacts]], releases: list[tuple[int, list[Table]]],
                        rules: PublishRules) -> list[Var]:
    """The attacker of ``successive_recoverable`` holding releases of several periods: at each
    stage every value of the month, quarter and year versions of every table is an unknown (a
    value that did not change since the stage before the same unknown), linked by every table's
    equations and by the sums of months into quarters and of quarters into years; each release
    (stage, tables) publishes some of them. Returns the determined values suppressed as primary."""
    from custody.publish.stats import build_tables
    from tests.cli.test_publish import _period_lines

    def base(name: str, row: str, column: str) -> tuple[str, str, str]:
        return ("=" + SHARED_TOTALS[name], row, column) if column == "Total" and name in SHARED_TOTALS else (
            name, row, column)

    alias: dict[tuple[int, tuple[str, str, str]], Var] = {}
    lines: list[list[Var]] = []
    previous_truth: dict[tuple[str, str, str], int] = {}
    for stage, facts in enumerate(stages):
        tables = [t.as_dict() | {"counts": t.counts} for p in ("month", "quarter", "year")
                  for t in build_tables(facts, rules, p)]
        truth = {base(t["name"], *cell): value for t in tables for cell, value in t["counts"].items()}
        before = {key[1]: alias[key] for key in alias if key[0] == stage - 1}
        for key, value in truth.items():
            same = previous_truth.get(key) == value
            alias[(stage, key)] = before[key] if same else (stage, *key)
        previous_truth = truth
        lines += [[alias[(stage, base(t["name"], *cell))] for cell in line] for t in tables for line in _lines(t)]
        lines += [[alias[(stage, base(name, *cell))] for cell in line] for name, line in _period_lines(tables)]
    known: dict[Var, int] = {}
    primary: set[Var] = set()
    for stage, tables in releases:
        for table in tables:
            for cell in table.cells():
                var = alias[(stage, base(table.name, *cell))]
                reason = table.suppressed.get(cell)
                if reason is None:
                    assert known.get(var, table.counts[cell]) == table.counts[cell], var
                    known[var] = table.counts[cell]
                elif reason == "primary":
                    primary.add(var)
    basis: dict[Var, dict[Var, Fraction]] = {}
    for line in lines:
        row: dict[Var, Fraction] = {}
        for var, sign in zip(line, [1] * (len(line) - 1) + [-1]):
            if var not in known:
                row[var] = row.get(var, Fraction(0)) + sign
        _reduce(basis, {var: value for var, value in row.items() if value})
    return sorted(pivot for pivot, row in basis.items() if len(row) == 1 and pivot in primary)


def _mixed_run(stages: list[list[IncidentFacts]], edition: int, high: int) -> list[tuple[int, list[Table]]]:
    """A month and a quarter release at each stage, each made (edition 4) with what the latest
    earlier release of each period hands on."""
    histories: dict[str, History] = {}
    releases: list[tuple[int, list[Table]]] = []
    for stage, facts in enumerate(stages):
        for period in ("month", "quarter"):
            rules = replace(_rules(edition, high), period=period)
            earlier = sorted(histories.values(), key=lambda h: h.number)
            tables, histories[period] = compute_release(facts, rules, earlier, len(releases))
            releases.append((stage, tables))
    return releases


def test_month_and_quarter_releases_at_successive_checkpoints_reveal_nothing() -> None:
    began = time.monotonic()
    leaked = 0
    for seed in range(200, 212):
        rng = random.Random(seed)
        stages = _successive(rng, 3)
        high = rng.randint(3, 10)
        assert periods_recoverable(stages, _mixed_run(stages, 4, high), _rules(4, high)) == [], seed
        if seed < 204:
            leaked += bool(periods_recoverable(stages, _mixed_run(stages, 3, high), _rules(3, high)))
    assert leaked, "the attack finds nothing on edition 3 either"
    assert time.monotonic() - began < 15
