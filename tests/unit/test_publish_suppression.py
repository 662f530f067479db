"""Complementary suppression: no suppressed value follows from the published ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custody.publish.rules import PublishRules
from custody.publish.stats import TOTAL, Table
from custody.publish.suppression import COMPLEMENTARY, PRIMARY, determined, suppress
from tests.cli.test_publish import _lines, _recoverable


def _table(grid: list[list[int]], row_totals: bool) -> Table:
    rows = [f"r{i}" for i in range(len(grid))]
    columns = [f"c{j}" for j in range(len(grid[0]))]
    counts = {(r, c): grid[i][j] for i, r in enumerate(rows) for j, c in enumerate(columns)}
    if row_totals:
        for r in rows:
            counts[(r, TOTAL)] = sum(counts[(r, c)] for c in columns)
    for c in columns + ([TOTAL] if row_totals else []):
        counts[(TOTAL, c)] = sum(counts[(r, c)] for r in rows)
    return Table("t", "t", "incidents", "column", rows, columns, {}, row_totals, True, counts)


def test_a_cell_joining_two_hidden_cycles_is_found_though_every_line_hides_two() -> None:
    table = _table([[20, 20, 20, 20]] * 4, True)
    hidden = {("r0", "c0"), ("r0", "c1"), ("r1", "c0"), ("r1", "c1"),
              ("r2", "c2"), ("r2", "c3"), ("r3", "c2"), ("r3", "c3"), ("r0", "c2")}
    for total, parts in table.equations():
        assert len(hidden & {total, *parts}) != 1
    assert determined(table.equations(), hidden) == [("r0", "c2")]
    assert determined(table.equations(), hidden - {("r0", "c2")}) == []


def test_one_small_cell_takes_three_more_with_it() -> None:
    table = _table([[3, 40, 50], [60, 70, 80], [90, 95, 99]], True)
    table.apply_suppression(PublishRules(period="month"))
    assert table.suppressed[("r0", "c0")] == PRIMARY
    assert sorted(table.suppressed) == [("r0", "c0"), ("r0", "c1"), ("r1", "c0"), ("r1", "c1")]
    assert {v for k, v in table.suppressed.items() if k != ("r0", "c0")} == {COMPLEMENTARY}


def test_a_small_total_is_suppressed_and_protected() -> None:
    table = _table([[2, 3], [40, 50]], True)
    table.apply_suppression(PublishRules(period="month"))
    assert table.suppressed[("r0", TOTAL)] == PRIMARY
    values = {cell: table.published(cell) for cell in table.cells()}
    assert _recoverable(table.as_dict(), values) == []


grids = st.integers(1, 6).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda columns: st.lists(st.lists(st.integers(0, 30), min_size=columns, max_size=columns),
                                 min_size=rows, max_size=rows)))


@settings(max_examples=150, deadline=None)
@given(grid=grids, row_totals=st.booleans(), high=st.integers(1, 12))
def test_no_suppressed_value_is_recoverable_in_any_table(grid: list[list[int]], row_totals: bool, high: int) -> None:
    table = _table(grid, row_totals)
    table.apply_suppression(PublishRules(period="month", suppress_max=high))
    values = {cell: table.published(cell) for cell in table.cells()}
    for cell, value in table.counts.items():
        if 1 <= value <= high:
            assert table.suppressed.get(cell) == PRIMARY
        elif cell in table.suppressed:
            assert table.suppressed[cell] == COMPLEMENTARY
    record = table.as_dict()
    for line in _lines(record):
        assert sum(1 for cell in line if values[cell] is None) != 1
    assert _recoverable(record, values) == []


def test_suppress_works_on_any_keys() -> None:
    hidden = suppress({"a": 5, "b": 30, "t": 35}, [("t", ["a", "b"])], low=1, high=10, totals={"t"})
    assert hidden == {"a": PRIMARY, "b": COMPLEMENTARY}


def test_determined_agrees_with_rank_on_random_systems_including_non_unit_pivots() -> None:
    """A hidden key is determined iff adding its unit vector to the equations (restricted to
    the hidden keys) leaves their rank unchanged; a part named twice gives a pivot of 2."""
    import random
    from fractions import Fraction

    from custody.publish.suppression import determined
    from tests.cli.test_publish import _rank

    assert sorted(determined([("t", ["a", "a", "b"]), ("u", ["a", "b"])], {"a", "b"})) == ["a", "b"]
    for seed in range(100):
        rng = random.Random(seed)
        keys = list(range(rng.randint(2, 30)))
        equations = [(rng.choice(keys), [rng.choice(keys) for _ in range(rng.randint(1, 5))])
                     for _ in range(rng.randint(1, 25))]
        hidden = sorted(rng.sample(keys, rng.randint(1, len(keys))))
        matrix = []
        for total, parts in equations:
            row = [Fraction(0)] * len(hidden)
            for key, sign in [(total, -1)] + [(part, 1) for part in parts]:
                if key in hidden:
                    row[hidden.index(key)] += sign
            matrix.append(row)
        expected = [key for i, key in enumerate(hidden)
                    if _rank(matrix + [[Fraction(int(j == i)) for j in range(len(hidden))]]) == _rank(matrix)]
        assert determined(equations, set(hidden)) == sorted(expected, key=repr), seed


def test_a_value_known_without_the_release_is_never_a_complement() -> None:
    values = {"a": 4, "z": 0, "b": 30, "t": 34, "w": 30}
    equations = [("t", ["a", "z", "b"]), ("w", ["b"])]
    # a zero that closes the line is the cheapest complement ...
    assert suppress(values, equations, low=1, high=10, totals={"t", "w"}) == {"a": PRIMARY, "z": COMPLEMENTARY}
    # ... but if a reader knows it is zero (no incidents, so no violations), it protects nothing
    assert suppress(values, equations, low=1, high=10, totals={"t", "w"}, known={"z"}) == {
        "a": PRIMARY, "b": COMPLEMENTARY, "w": COMPLEMENTARY}


def test_forced_values_stay_hidden_and_what_no_hiding_protects_is_left_alone() -> None:
    """An earlier release's hidden values are forced hidden with their reason; its own changed
    value (not a value of this release) is hidden and protected through its equations; a value
    the earlier release's published ones already determine is neither protected nor a complement."""
    values = {"a": 12, "b": 20, "c": 0, "t": 32, "n": 15, "m": 40}
    # t = a + b + c now; the earlier release: its t (published, a constant) was a + b, and
    # was:x (its own hidden value, changed since) + a = n (published now, unchanged)
    equations = [("t", ["a", "b", "c"]), ("T0", ["a", "b"]), ("n", ["was:x", "a"]), ("m", ["b", "n", "c"])]
    hidden = suppress(values, equations, low=1, high=10, totals={"t"}, known={"T0"},
                      forced={"a": COMPLEMENTARY, "b": COMPLEMENTARY, "was:x": "earlier"})
    assert hidden["a"] == hidden["b"] == COMPLEMENTARY and hidden["was:x"] == "earlier"
    # c = t - (a + b) = t - T0 whatever is hidden: left published
    assert "c" not in hidden
    # with n published, b = m - n - c; with n hidden and m published, was:x = n - a =
    # (m - c - b) - a = m - c - T0: the earlier release's own value is protected too
    from custody.publish.suppression import determined
    assert hidden["n"] == hidden["m"] == COMPLEMENTARY and "t" not in hidden
    assert determined(equations, set(hidden)) == []
