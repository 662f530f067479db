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
    (each ``(total, parts)``: the parts sum to the total), in the order of their ``repr``.

    A hidden key is determined exactly when its unit vector is in the row space of the
    equations restricted to the hidden keys, i.e. when a row of the reduced row echelon form is
    that unit vector. The rows are sparse (an equation names a few keys of many), so they are
    kept as dictionaries and reduced one at a time into a basis whose rows each hold their own
    pivot and no other row's. Pivots of +1 or -1 keep integers exact; any other pivot divides in
    fractions."""
    unknowns = sorted(hidden, key=repr)
    index = {key: i for i, key in enumerate(unknowns)}
    basis: dict[int, dict[int, int | Fraction]] = {}
    for total, parts in equations:
        row: dict[int, int | Fraction] = {}
        if total in index:
            row[index[total]] = -1
        for part in parts:
            if part in index:
                row[index[part]] = row.get(index[part], 0) + 1
        row = {c: v for c, v in row.items() if v}
        if row:
            _insert(basis, row)
    return [unknowns[column] for column in sorted(basis) if len(basis[column]) == 1]


def _insert(basis: dict[int, dict[int, int | Fraction]], row: dict[int, int | Fraction]) -> None:
    """Reduce ``row`` by the basis (one pass: a basis row holds no other row's pivot, so
    subtracting it brings in no pivot); if anything is left, it joins the basis (its lowest column
    its pivot, scaled to 1) and that pivot is cleared from every other row."""
    for column in [c for c in row if c in basis]:
        factor = row[column]
        for c, v in basis[column].items():
            updated = row.get(c, 0) - factor * v
            if updated:
                row[c] = updated
            else:
                row.pop(c, None)
    if not row:
        return
    pivot = min(row)
    lead = row[pivot]
    if lead == 1:
        scaled = row
    elif lead == -1:
        scaled = {c: -v for c, v in row.items()}
    else:
        scaled = {c: Fraction(v) / lead for c, v in row.items()}
    for other in basis.values():
        factor = other.get(pivot, 0)
        if factor:
            for c, v in scaled.items():
                updated = other.get(c, 0) - factor * v
                if updated:
                    other[c] = updated
                else:
                    other.pop(c, None)
    basis[pivot] = scaled


def suppress(
    values: Mapping[Key, int],
    equations: Sequence[tuple[Key, Sequence[Key]]],
    *,
    low: int,
    high: int,
    totals: set[Key] | None = None,
    known: set[Key] | None = None,
    forced: Mapping[Key, str] | None = None,
) -> dict[Key, str]:
    """Which keys to hide, and why (``primary`` or ``complementary``). ``known`` values are
    known without the release (a count that must be zero because another published count is):
    hiding them would protect nothing, so they are never chosen as complements. ``forced`` keys
    are hidden from the start with the reason given (a value an earlier release hid, or an
    earlier release's own value that the equations name); a key of ``forced`` that is not in
    ``values`` is never published and never a complement."""
    totals = totals or set()
    known = known or set()
    hidden: dict[Key, str] = {key: PRIMARY for key, value in values.items() if low <= value <= high}
    for key, reason in (forced or {}).items():
        hidden.setdefault(key, reason)
    inevitable: set[Key] = set()
    if forced:
        # what an earlier release already gives away (a value that follows from its published
        # values even when all that may be hidden is): hiding more would not protect it, so it is
        # neither protected nor a complement
        inevitable = set(determined(equations, set(hidden) | {k for k in values if k not in known}))
        known = known | inevitable
    membership: dict[Key, list[int]] = {}
    for number, (total, parts) in enumerate(equations):
        for key in (total, *parts):
            membership.setdefault(key, []).append(number)
    while True:
        exposed = [key for key in determined(equations, set(hidden)) if key not in inevitable]
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
            if key not in hidden and key not in known and key in values
        ]
        if not candidates:
            candidates = _nearest(target, equations, membership, hidden, known, values)
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


def _nearest(target: Key, equations: Sequence[tuple[Key, Sequence[Key]]], membership: Mapping[Key, list[int]],
             hidden: Mapping[Key, str], known: set[Key], values: Mapping[Key, int]) -> list[Key]:
    """Where every equation of ``target`` holds only hidden values (an earlier release's value
    determined through the equations of its hidden neighbours): the publishable values of the
    nearest equations reached through hidden values, breadth first."""
    seen = {target}
    frontier = [target]
    while frontier:
        lines = {n for key in frontier for n in membership.get(key, [])}
        keys = [key for n in sorted(lines) for key in (equations[n][0], *equations[n][1])]
        found = [key for key in keys if key not in hidden and key not in known and key in values]
        if found:
            return found
        frontier = [key for key in dict.fromkeys(keys) if key not in seen]
        seen.update(frontier)
    return []
