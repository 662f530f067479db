"""Small-count suppression with complementary suppression.

A table's cells and its totals are linked by equations (each row's cells sum to the row total,
each column's to the column total, the totals to the grand total); a release's tables together
form one such system (``custody.publish.stats.joint_system``), a shared total one key in it. Primary suppression hides
every value from ``min`` to ``max``. Complementary suppression then hides more values until no
hidden value is determined by the published ones: a hidden value is determined exactly when
some combination of the equations involves it and no other hidden value, which is found by
exact (rational) elimination over the equations restricted to the hidden values. Checking
single equations only ("exactly one hidden value in a row") is not enough, so that is not what
is checked.

The complement chosen is, among the published values of an equation where the determined value
is the only hidden one (else of any equation that involves it): a non-total before a total, one
that adds the fewest equations with a lone hidden value, a non-zero before a zero, then the
smallest.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)

PRIMARY = "primary"
COMPLEMENTARY = "complementary"


def determined(equations: Sequence[tuple[Key, Sequence[Key]]], hidden: set[Key]) -> list[Key]:
    """Hidden keys whose value follows from the published values through ``equations``
    (each ``(total, parts)``: the parts sum to the total)."""
    unknowns = sorted(hidden, key=repr)
    index = {key: i for i, key in enumerate(unknowns)}
    rows: list[list[int]] = []
    for total, parts in equations:
        row = [0] * len(unknowns)
        involved = False
        if total in index:
            row[index[total]] -= 1
            involved = True
        for part in parts:
            if part in index:
                row[index[part]] += 1
                involved = True
        if involved:
            rows.append(row)
    pivots: Mapping[int, Sequence[int | Fraction]] = _reduce(rows, len(unknowns))
    found = []
    for column, reduced in pivots.items():
        if all(value == 0 for i, value in enumerate(reduced) if i != column):
            found.append(unknowns[column])
    return found


def _reduce(rows: list[list[int]], width: int) -> dict[int, list[Fraction]] | dict[int, list[int]]:
    """Reduced row echelon form: pivot column -> its row.

    A table's equations form a totally unimodular matrix (each value is in at most two of
    them), and pivoting keeps it so: every pivot is +1 or -1 and integers stay exact. Should a
    pivot ever be anything else, the elimination is redone in rationals."""
    work = [list(row) for row in rows]
    pivots: dict[int, list[int]] = {}
    rank = 0
    for column in range(width):
        pick = next((r for r in range(rank, len(work)) if work[r][column] != 0), None)
        if pick is None:
            continue
        work[rank], work[pick] = work[pick], work[rank]
        lead = work[rank][column]
        if lead not in (1, -1):
            return _reduce_rational([[Fraction(v) for v in row] for row in rows], width)
        pivot = [value * lead for value in work[rank]]
        work[rank] = pivot
        nonzero = [i for i, value in enumerate(pivot) if value]
        for r in range(len(work)):
            factor = work[r][column]
            if r != rank and factor != 0:
                target = work[r]
                for i in nonzero:
                    target[i] -= factor * pivot[i]
        rank += 1
    for r in range(rank):
        column = next(i for i, value in enumerate(work[r]) if value != 0)
        pivots[column] = work[r]
    return pivots


def _reduce_rational(rows: list[list[Fraction]], width: int) -> dict[int, list[Fraction]]:
    pivots: dict[int, list[Fraction]] = {}
    rank = 0
    for column in range(width):
        pick = next((r for r in range(rank, len(rows)) if rows[r][column] != 0), None)
        if pick is None:
            continue
        rows[rank], rows[pick] = rows[pick], rows[rank]
        lead = rows[rank][column]
        pivot = [value / lead for value in rows[rank]]
        rows[rank] = pivot
        for r in range(len(rows)):
            if r != rank and rows[r][column] != 0:
                factor = rows[r][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], pivot)]
        rank += 1
    for r in range(rank):
        column = next(i for i, value in enumerate(rows[r]) if value != 0)
        pivots[column] = rows[r]
    return pivots


def suppress(
    values: Mapping[Key, int],
    equations: Sequence[tuple[Key, Sequence[Key]]],
    *,
    low: int,
    high: int,
    totals: set[Key] | None = None,
    known: set[Key] | None = None,
) -> dict[Key, str]:
    """Which keys to hide, and why (``primary`` or ``complementary``). ``known`` values are
    known without the release (a count that must be zero because another published count is):
    hiding them would protect nothing, so they are never chosen as complements."""
    totals = totals or set()
    known = known or set()
    hidden: dict[Key, str] = {key: PRIMARY for key, value in values.items() if low <= value <= high}
    membership: dict[Key, list[int]] = {}
    for number, (total, parts) in enumerate(equations):
        for key in (total, *parts):
            membership.setdefault(key, []).append(number)
    while True:
        exposed = determined(equations, set(hidden))
        if not exposed:
            return hidden
        def open_lines(key: Key) -> list[int]:
            """Equations in which ``key`` is the only hidden value."""
            return [n for n in membership.get(key, [])
                    if sum(1 for k in (equations[n][0], *equations[n][1]) if k in hidden) == 1]

        target = next((key for key in exposed if open_lines(key)), exposed[0])
        lines = membership.get(target, [])
        lone_lines = open_lines(target)
        candidates = [
            key
            for number in (lone_lines or lines)
            for key in (equations[number][0], *equations[number][1])
            if key not in hidden and key not in known
        ]
        if not candidates:
            candidates = [key for key in values if key not in hidden and key not in known]
            if not candidates:
                return hidden

        def cost(key: Key) -> tuple[bool, int, bool, int, str]:
            """A non-total that closes a pattern (adds no line with a lone hidden value), then
            a non-zero, then the smallest."""
            lone = sum(
                1 for n in membership.get(key, []) if not any(k in hidden for k in (equations[n][0], *equations[n][1]))
            )
            return (key in totals, lone, values[key] == 0, values[key], repr(key))

        hidden[min(candidates, key=cost)] = COMPLEMENTARY
