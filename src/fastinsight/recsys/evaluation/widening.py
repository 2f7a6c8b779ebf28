"""Grid edges and how a search widens past them (module doc of :mod:`.search`).

Pure functions of a grid and the best point: which numeric parameters sit on an edge,
the next value beyond it (geometric for positive grids, never crossing 0), and, when
the model refuses that value, the nearest one it takes (a real-valued bound is
approached in halving steps; an integer limit is taken when it lies halfway there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def numeric(values: Sequence[Any]) -> bool:
    return len(values) > 0 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def grid_edges(space: Mapping[str, Sequence[Any]], best: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """For each numeric parameter with two or more grid values: ``edge`` is "low" or
    "high" when ``best`` is at (or beyond) the lowest or highest value, else None."""
    out: dict[str, dict[str, Any]] = {}
    for name, values in space.items():
        if name not in best or not numeric(values):
            continue
        vals = sorted(set(values))
        if len(vals) < 2:
            continue
        value = best[name]
        if not numeric([value]):
            continue
        edge = "low" if value <= vals[0] else "high" if value >= vals[-1] else None
        out[name] = {"values": vals, "best": value, "edge": edge}
    return out


BOUND_STEPS = 4  # halvings towards a bound the model refuses (see accepted_widening)


def _nice(value: float) -> float:
    return float(f"{value:.4g}")


def widen(values: Sequence[Any], edge: str) -> Any | None:
    """One more value beyond ``edge`` of a numeric grid, or None when there is none.

    Positive grids step geometrically by the ratio of the two outermost values (100,
    200 -> 50); grids holding 0 step arithmetically and never cross 0 (a limit such as
    "no sessions"). Integer grids stay integer.
    """
    if not numeric(values):
        return None
    vals = sorted(set(values))
    if len(vals) < 2:
        return None
    integer = all(isinstance(v, int) for v in vals)
    if edge == "low":
        inner, outer = vals[1], vals[0]
    elif edge == "high":
        inner, outer = vals[-2], vals[-1]
    else:
        raise ValueError(f"unknown edge {edge!r}")
    if outer > 0 and inner > 0:
        new = outer * (outer / inner)
    else:
        new = outer + (outer - inner)
        if new * outer < 0 or (outer == 0 and edge == "low"):
            return None  # would cross zero
    result: Any = round(new) if integer else _nice(new)
    if result in vals or (integer and result <= 0 < outer):
        return None
    return result


def accepted_widening(
    name: str, values: Sequence[Any], edge: str, accepts: Callable[[str, Any], bool] | None,
) -> Any | None:
    """:func:`widen`, or, when the model refuses that value of a real-valued parameter
    (a bound such as dropout < 1), the point halfway towards it, halved up to
    ``BOUND_STEPS`` times (0.5 -> 1.0 refused -> 0.75). None: at a limit."""
    value = widen(values, edge)
    if value is None or accepts is None or accepts(name, value):
        return value
    outer = min(values) if edge == "low" else max(values)
    if any(isinstance(v, int) for v in values):
        return _last_accepted_integer(name, outer, value, accepts)
    for _ in range(BOUND_STEPS):
        value = _nice(outer + (value - outer) / 2)
        if value in values or value == outer:
            return None
        if accepts(name, value):
            return value
    return None


def _last_accepted_integer(
    name: str, outer: int, refused: int, accepts: Callable[[str, Any], bool],
) -> int | None:
    """The accepted integer between the grid's ``outer`` value and the ``refused`` step
    that lies nearest the refused one (bisection; acceptance is taken to be monotone),
    when it is at least halfway there (geometrically for positive grids); else None:
    ``outer`` is the limit, or near enough (ALS iterations 960 with 1000 the maximum,
    ALS factors at 1024, item-kNN's ``k`` at every other item)."""
    good, bad = outer, refused
    while abs(bad - good) > 1:
        middle = (good + bad) // 2
        if accepts(name, middle):
            good = middle
        else:
            bad = middle
    if outer > 0 and refused > 0:
        halfway = abs(np.log(refused / outer)) / 2
        far_enough = abs(np.log(good / outer)) >= halfway
    else:
        far_enough = abs(good - outer) >= abs(refused - outer) / 2
    return good if good != outer and far_enough else None
