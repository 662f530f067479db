"""The tables of a release: counts by period and one other dimension, with their totals, and
what is suppressed in each.

Every table has periods as rows (every period from the first to the last incident, so that an
empty period shows as zero) and a ``Total`` row; rows and columns carry totals where summing
makes sense (an incident is in exactly one agency column, but may have several facts, so the
``characteristics`` table has column totals only). Suppressed values are published as empty.

Tables that count the same things (their ``measure``: incidents in the agency and district
tables, alleged violations in the category and agency tables) show the same ``Total`` column.
Suppression is joint: one system of equations over every table, in which such a total is one
unknown, so a total is hidden in every table that shows it or in none, and no hidden value
follows from the published values of all tables together. From edition 3 on the system holds the
month, quarter and year versions of every table, linked by the sums of months into quarters and
of quarters into years (the ``Total`` row is the same in all three), and a release publishes its
period's part of that one pattern: the releases of any periods at one checkpoint, read together,
publish a part of one safe pattern. From edition 4 on the system also holds what the latest earlier
release of each period hands on (``History``): its equations, a value it hid and that has not
changed hidden again, one it published known, so successive releases read together are safe too.
Edition 2 chose each period's pattern on its own (a hidden
month could be its quarter minus its other months); edition 1 suppressed each table on its own.
Both are kept so that their releases can still be recomputed exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from custody.publish.facts import IncidentFacts
from custody.publish.rules import PERIODS, PublishRules
from custody.publish.suppression import suppress

TOTAL = "Total"
Cell = tuple[str, str]
Key = tuple[str, str, str]
"""A value of the release's joint system: (table name, row, column), or for a total shared by
every table of one measure (``SHARED`` + measure, row, ``Total``)."""
SHARED = "shared:"


def period_of(day: date, period: str) -> str:
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


def period_range(first: date, last: date, period: str) -> list[str]:
    """Every period from the one holding ``first`` to the one holding ``last``."""
    step = {"month": 1, "quarter": 3, "year": 12}[period]
    start = (first.year * 12 + first.month - 1) // step * step
    end = (last.year * 12 + last.month - 1) // step * step
    return [period_of(date(m // 12, m % 12 + 1, 1), period) for m in range(start, end + 1, step)]


@dataclass
class Table:
    """One published table. ``counts`` holds every value (totals included); only ``published``
    values may leave the machine."""

    name: str
    title: str
    unit: str
    column_dimension: str
    rows: list[str]
    columns: list[str]
    column_titles: dict[str, str]
    row_totals: bool
    column_totals: bool
    counts: dict[Cell, int]
    measure: str = ""
    """What the ``Total`` column counts; tables of the same measure show the same totals."""
    suppressed: dict[Cell, str] = field(default_factory=dict)

    @property
    def all_rows(self) -> list[str]:
        return self.rows + ([TOTAL] if self.column_totals else [])

    @property
    def all_columns(self) -> list[str]:
        return self.columns + ([TOTAL] if self.row_totals else [])

    def cells(self) -> list[Cell]:
        return [(r, c) for r in self.all_rows for c in self.all_columns]

    def published(self, cell: Cell) -> int | None:
        return None if cell in self.suppressed else self.counts[cell]

    def equations(self) -> list[tuple[Cell, list[Cell]]]:
        found: list[tuple[Cell, list[Cell]]] = []
        if self.row_totals:
            found += [((r, TOTAL), [(r, c) for c in self.columns]) for r in self.all_rows]
        if self.column_totals:
            found += [((TOTAL, c), [(r, c) for r in self.rows]) for c in self.all_columns]
        return found

    def key(self, cell: Cell) -> Key:
        """The cell's unknown in the release's joint system: a row total (or the grand total) is
        shared with every table of the same measure."""
        row, column = cell
        if column == TOTAL and self.row_totals and self.measure:
            return (SHARED + self.measure, row, column)
        return (self.name, row, column)

    def apply_suppression(self, rules: PublishRules) -> None:
        """Suppression of this table on its own (edition 1)."""
        totals = {cell for cell in self.cells() if TOTAL in cell}
        self.suppressed = suppress(
            self.counts, self.equations(), low=rules.suppress_min, high=rules.suppress_max, totals=totals
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "unit": self.unit,
            "row_dimension": "period",
            "column_dimension": self.column_dimension,
            "rows": self.all_rows,
            "columns": self.all_columns,
            "column_titles": self.column_titles,
            **({"measure": self.measure} if self.measure else {}),
            "cells": [
                {"period": r, self.column_dimension: c, "count": self.published((r, c)),
                 "suppressed": self.suppressed.get((r, c))}
                for r, c in self.cells()
            ],
        }


def _table(
    name: str,
    title: str,
    unit: str,
    dimension: str,
    rows: list[str],
    columns: Sequence[str],
    titles: dict[str, str],
    contributions: Iterable[tuple[str, str, int]],
    *,
    row_totals: bool,
    measure: str = "",
) -> Table:
    counter: Counter[Cell] = Counter()
    for row, column, amount in contributions:
        counter[(row, column)] += amount
    counts: dict[Cell, int] = {(r, c): counter[(r, c)] for r in rows for c in columns}
    for r in rows:
        if row_totals:
            counts[(r, TOTAL)] = sum(counts[(r, c)] for c in columns)
    for c in [*columns, *([TOTAL] if row_totals else [])]:
        counts[(TOTAL, c)] = sum(counts[(r, c)] for r in rows)
    return Table(name, title, unit, dimension, rows, list(columns), titles, row_totals, True, counts, measure)


CHARACTERISTICS: tuple[tuple[str, str, Callable[[IncidentFacts], int]], ...] = (
    ("use-of-force", "Incidents with use of force", lambda f: int(f.use_of_force)),
    ("detention", "Incidents with detentions", lambda f: int(f.detention)),
    ("people-detained", "People detained (people, not incidents)", lambda f: f.people_detained),
    ("injury", "Incidents with injuries", lambda f: int(f.injury)),
    ("ems-summoned", "Incidents where EMS was summoned", lambda f: int(f.ems_summoned)),
    ("aid-rendered", "Incidents where aid was rendered", lambda f: int(f.aid_rendered)),
    ("supervisor-identified", "Incidents where the federal supervisor was identified", lambda f: int(f.supervisor_identified)),
    ("credentials-refused", "Incidents where credentials were refused", lambda f: int(f.credentials_refused)),
)


def build_tables(facts: Sequence[IncidentFacts], rules: PublishRules, period: str) -> list[Table]:
    """The release's tables by ``period``, counted, nothing suppressed yet.

    An alleged violation is counted once in the violations-by-agency table, in its incident's
    agency column, as the incident is in the incidents-by-agency table: an incident naming more
    than one of the configured agencies puts each of its violations under ``multiple``, never
    under each agency, so both agency tables sum to the totals of their measure."""
    joint = rules.edition >= 2
    if facts:
        rows = period_range(min(f.day for f in facts), max(f.day for f in facts), period)
    else:
        rows = []
    keyed = [(period_of(f.day, period), f) for f in facts]
    agencies = [*rules.agencies, "multiple", "other"]
    agency_titles = {a: a for a in rules.agencies} | {
        "multiple": "More than one of these agencies", "other": "Other or not stated"}
    categories = list(rules.taxonomy)
    unlisted = sorted({c for f in facts for c in f.categories if c not in rules.taxonomy})
    category_titles = {name: category.title for name, category in rules.taxonomy.items()}
    if unlisted:
        categories.append("unlisted")
        category_titles["unlisted"] = "Categories not in this taxonomy"
    incidents, violations = ("incidents", "alleged-violations") if joint else ("", "")
    tables = [
        _table("incidents_by_agency", "Documented incidents, by agency", "incidents", "agency", rows, agencies,
               agency_titles, ((p, f.agency, 1) for p, f in keyed), row_totals=True, measure=incidents),
        _table("violations_by_category", "Alleged violations, by category", "alleged violations", "category", rows,
               categories, category_titles,
               ((p, c if c in rules.taxonomy else "unlisted", 1) for p, f in keyed for c in f.categories),
               row_totals=True, measure=violations),
    ]
    if joint:
        tables.append(
            _table("violations_by_agency", "Alleged violations, by agency", "alleged violations", "agency", rows,
                   agencies, agency_titles, ((p, f.agency, len(f.categories)) for p, f in keyed if f.categories),
                   row_totals=True, measure=violations))
    tables += [
        _table("characteristics", "What happened in the incidents", "incidents (people-detained: people)",
               "characteristic", rows, [name for name, _, _ in CHARACTERISTICS],
               {name: title for name, title, _ in CHARACTERISTICS},
               ((p, name, get(f)) for p, f in keyed for name, _, get in CHARACTERISTICS), row_totals=False),
        _table("referrals", "Incidents referred to the State's Attorney", "incidents", "referral", rows,
               ["felony", "not-felony"], {"felony": "Felony evidence", "not-felony": "Not felony"},
               ((p, "felony" if f.felony else "not-felony", 1) for p, f in keyed if f.referred), row_totals=True,
               measure="referred-incidents" if joint else ""),
    ]
    if rules.location_level == "district":
        districts = sorted({f.district for f in facts if f.district}) + ["not-stated"]
        tables.append(
            _table("incidents_by_district", "Documented incidents, by police district", "incidents", "district",
                   rows, districts, {d: d for d in districts} | {"not-stated": "Not stated"},
                   ((p, f.district or "not-stated", 1) for p, f in keyed), row_totals=True, measure=incidents))
    return tables


@dataclass
class History:
    """What a release hands on to the next release of its period (edition 4): the value of every
    unknown of its tables, which it hid and why, and the equations a reader of it and of every
    release before it has: its own tables' and those it was handed, in which a value that has
    changed since is an unknown of its own (``WAS`` + release number + table), hidden for good,
    and a published value is ``CONSTANT``."""

    values: dict[Key, int]
    hidden: dict[Key, str]
    equations: list[tuple[Key, tuple[Key, ...]]]
    number: int = 0


WAS = "was:"
CONSTANT: Key = ("", "", "")
"""An equation's published value: known to every reader, never hidden."""


def history_of(tables: Sequence[Table], handed: Sequence[tuple[Key, tuple[Key, ...]]] = (),
               number: int = 0, everything: Sequence[Table] = ()) -> History:
    """The history a release of ``tables`` hands on (``handed``: the equations it was handed,
    whose values are among ``everything``, the tables of every period version it was computed with)."""
    _, equations, _ = joint_system(tables)
    named = {key for t in tables for key in map(t.key, t.cells())}
    named |= {key for total, parts in handed for key in (total, *parts)}
    values: dict[Key, int] = {}
    hidden: dict[Key, str] = {}
    for table in [*tables, *everything]:
        for cell in table.cells():
            key = table.key(cell)
            if key in named:
                values[key] = table.counts[cell]
                if cell in table.suppressed:
                    hidden[key] = table.suppressed[cell]
    own = [(total, tuple(parts)) for total, parts in equations]
    return History(values, hidden, list(dict.fromkeys([*own, *handed])), number)


def carried(earlier: History, values: Mapping[Key, int]) -> tuple[list[tuple[Key, list[Key]]], dict[Key, str]]:
    """The equations ``earlier`` hands on, over the unknowns of the new release's system, and the
    values they force hidden: a value the earlier release hid that has not changed is the same
    unknown in both, hidden again with the same reason; one that changed is the earlier
    release's own unknown, hidden for good; a value it published is known."""
    forced: dict[Key, str] = {}

    def unknown(key: Key) -> Key:
        if key == CONSTANT or key[0].startswith(WAS):
            if key != CONSTANT:
                forced[key] = "earlier"
            return key
        if key not in earlier.hidden:
            return CONSTANT
        if key not in earlier.values:
            raise AssertionError(f"{key}: an earlier release's equation names a value it does not hold")
        if values.get(key) == earlier.values[key]:
            forced[key] = earlier.hidden[key]
            return key
        was = (f"{WAS}{earlier.number}:{key[0]}", key[1], key[2])
        forced[was] = "earlier"
        return was

    equations = [(unknown(total), [unknown(part) for part in parts]) for total, parts in earlier.equations]
    return [(t, [p for p in parts if p != CONSTANT]) for t, parts in equations
            if t != CONSTANT or any(p != CONSTANT for p in parts)], forced


def translated(history: History, alias: Mapping[Key, Key]) -> History:
    """``history`` with its keys as ``alias`` names them (a key two of its tables held apart
    that is now one: hidden if either hid it)."""
    def key(k: Key) -> Key:
        return alias.get(k, k)
    hidden: dict[Key, str] = {}
    for k, reason in history.hidden.items():
        hidden[key(k)] = reason
    return History({key(k): v for k, v in history.values.items()}, hidden,
                   [(key(t), tuple(map(key, parts))) for t, parts in history.equations], history.number)


def compute_tables(facts: Sequence[IncidentFacts], rules: PublishRules,
                   earlier: Sequence[History] = ()) -> list[Table]:
    """The release's tables, suppression applied: from edition 3 on, jointly over the month,
    quarter and year versions of every table (``suppress_over_periods``), of which the
    release's period is returned, and from edition 4 on with what the ``earlier`` releases (the
    latest of each period) hand on; edition 2, jointly over the release's tables; edition 1,
    each table on its own."""
    return compute_release(facts, rules, earlier)[0]


def compute_release(facts: Sequence[IncidentFacts], rules: PublishRules, earlier: Sequence[History] = (),
                    number: int = 0) -> tuple[list[Table], History]:
    """The release's tables (``compute_tables``) and the history it hands on, as release
    ``number`` (its event's sequence number), to the next."""
    if rules.edition >= 4 and earlier:
        versions = {period: build_tables(facts, rules, period) for period in PERIODS}
        values, _, _ = joint_system([t for period in PERIODS for t in versions[period]])
        equations: list[tuple[Key, list[Key]]] = []
        forced: dict[Key, str] = {}
        # an earlier edition's key of a total the tables now share is the shared key
        alias = {(t.name, *cell): t.key(cell) for period in PERIODS for t in versions[period] for cell in t.cells()}
        shown: set[Key] = set()
        for history in (translated(h, alias) for h in earlier):
            more, hide = carried(history, values)
            # a value an earlier release published and that has not changed is known: hiding it
            # now protects nothing, so it is never a complement
            shown |= {key for key, value in history.values.items()
                      if key not in history.hidden and values.get(key) == value}
            equations += more
            for key, reason in hide.items():
                if forced.get(key) != "primary":
                    forced[key] = reason
        suppress_over_periods(versions, rules, equations, forced, shown)
        tables = versions[rules.period]
        return tables, history_of(tables, [(t, tuple(p)) for t, p in equations], number,
                                  [t for period in PERIODS for t in versions[period]])
    tables = compute_tables_alone(facts, rules)
    return tables, history_of(tables, (), number)


def compute_tables_alone(facts: Sequence[IncidentFacts], rules: PublishRules) -> list[Table]:
    """The release's tables as made with no earlier release (every edition before 4 too)."""
    if rules.edition >= 3:
        return compute_all_periods(facts, rules)[rules.period]
    tables = build_tables(facts, rules, rules.period)
    if rules.edition == 2:
        suppress_jointly(tables, rules)
    else:
        for table in tables:
            table.apply_suppression(rules)
    return tables


def compute_all_periods(facts: Sequence[IncidentFacts], rules: PublishRules) -> dict[str, list[Table]]:
    """Edition 3: the month, quarter and year versions of the release's tables, suppressed
    together (``suppress_over_periods``); a release of any period is one of them."""
    versions = {period: build_tables(facts, rules, period) for period in PERIODS}
    suppress_over_periods(versions, rules)
    return versions


def parent_period(label: str) -> str:
    """The quarter of a month (``2026-05`` -> ``2026-Q2``), the year of a quarter."""
    year, _, rest = label.partition("-")
    return year if rest.startswith("Q") else f"{year}-Q{(int(rest) - 1) // 3 + 1}"


def period_equations(versions: Mapping[str, Sequence[Table]]) -> list[tuple[Key, list[Key]]]:
    """Each quarter's value of a table cell is the sum of its months' (those the month version
    shows: a month before the first incident or after the last has no row, and counts 0, as in
    ``period_range``), each year's the sum of its quarters'. The ``Total`` row is the same
    unknown in every version."""
    found: list[tuple[Key, list[Key]]] = []
    for finer, coarser in (("month", "quarter"), ("quarter", "year")):
        coarse = {t.name: t for t in versions[coarser]}
        for table in versions[finer]:
            other = coarse[table.name]
            if other.all_columns != table.all_columns:
                raise AssertionError(f"{table.name}: the {finer} and {coarser} versions differ in columns")
            children: dict[str, list[str]] = {}
            for row in table.rows:
                children.setdefault(parent_period(row), []).append(row)
            if set(children) != set(other.rows):
                raise AssertionError(f"{table.name}: the {finer} rows do not make up the {coarser} rows")
            for row in other.rows:
                for column in table.all_columns:
                    found.append((other.key((row, column)), [table.key((child, column)) for child in children[row]]))
    return found


def suppress_over_periods(versions: Mapping[str, Sequence[Table]], rules: PublishRules,
                          handed: Sequence[tuple[Key, list[Key]]] = (), forced: Mapping[Key, str] | None = None,
                          shown: set[Key] | None = None) -> None:
    """Edition 3: one joint system over every table of every period version, with the period
    equations, so that the releases of any periods at one checkpoint together publish a part of
    one pattern in which no hidden value is determined. A count is known to be zero (so never a
    complement) where another version's count is, and wherever it is a part of a sum that is 0:
    counts are never negative, so a published 0 shows all its parts."""
    tables = [t for period in PERIODS for t in versions[period]]
    known: set[Key] = set(shown or ())
    for period in PERIODS:
        known |= known_zeros(versions[period])
    suppress_jointly(tables, rules, [*period_equations(versions), *handed], known, nonnegative=True, forced=forced)


def joint_system(tables: Sequence[Table]) -> tuple[dict[Key, int], list[tuple[Key, list[Key]]], set[Key]]:
    """Every value of the release as one unknown each (a shared total once), every table's
    equations over those unknowns (each once), and which unknowns are totals."""
    values: dict[Key, int] = {}
    totals: set[Key] = set()
    for table in tables:
        for cell in table.cells():
            key = table.key(cell)
            if values.setdefault(key, table.counts[cell]) != table.counts[cell]:
                raise AssertionError(f"{table.name} {cell}: a shared total differs between tables ({key})")
            if TOTAL in cell:
                totals.add(key)
    equations: dict[tuple[Key, tuple[Key, ...]], None] = {}
    for table in tables:
        for total, parts in table.equations():
            equations[(table.key(total), tuple(table.key(part) for part in parts))] = None
    return values, [(total, list(parts)) for total, parts in equations], totals


def known_zeros(tables: Sequence[Table]) -> set[Key]:
    """Counts a reader knows are zero from another published zero, so that hiding them would
    protect nothing: the alleged violations of an agency in a period (or in all) where it had no
    incidents, and the people detained in a period with no incident with detentions. (Were that
    other zero hidden as a complement, the count would still be zero and shown, which tells
    nothing about it.)"""
    named = {t.name: t for t in tables}
    found: set[Key] = set()
    incidents, violations = named.get("incidents_by_agency"), named.get("violations_by_agency")
    if incidents is not None and violations is not None:
        found |= {violations.key(cell) for cell in violations.cells() if incidents.counts.get(cell) == 0}
    characteristics = named.get("characteristics")
    if characteristics is not None:
        found |= {characteristics.key((row, "people-detained")) for row in characteristics.all_rows
                  if characteristics.counts.get((row, "detention")) == 0}
    return found


def suppress_jointly(tables: Sequence[Table], rules: PublishRules, extra: Sequence[tuple[Key, list[Key]]] = (),
                     known: set[Key] | None = None, *, nonnegative: bool = False,
                     forced: Mapping[Key, str] | None = None) -> None:
    """Primary and complementary suppression over the joint system of ``tables`` (and the
    ``extra`` equations); each table's ``suppressed`` then says, for each of its cells, why its
    unknown is hidden. With ``nonnegative``, a sum that is 0 and its parts are known zeros: counts are
    never negative, so its parts are 0, never hidden, and then the sum follows from them."""
    values, equations, totals = joint_system(tables)
    system = list(dict.fromkeys([*((t, tuple(p)) for t, p in equations), *((t, tuple(p)) for t, p in extra)]))
    known = known_zeros(tables) if known is None else known
    if nonnegative:
        known = known | {key for total, parts in system if values.get(total) == 0 for key in (total, *parts)}
    hidden = suppress(values, system, low=rules.suppress_min, high=rules.suppress_max, totals=totals,
                      known=known, forced=forced)
    for table in tables:
        table.suppressed = {cell: hidden[table.key(cell)] for cell in table.cells() if table.key(cell) in hidden}


def published_cells(tables: Sequence[Table]) -> dict[tuple[str, str, str], int | None]:
    """(table, period, column) -> published value (None: suppressed)."""
    return {(t.name, r, c): t.published((r, c)) for t in tables for r, c in t.cells()}
