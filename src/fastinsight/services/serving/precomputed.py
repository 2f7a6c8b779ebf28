"""Answers read from ordered lists, without scoring: the serving fast path.

A known user whose history has not changed since training gets the training-time
candidate list (:mod:`fastinsight.recsys.candidates`); a user without history gets the
version's trending order. Both lists are already best first, and a trained user's is
free of their seen and disliked items, so a request only walks the list: it skips
what the request's ``NeverShow`` blocks (hidden items, caller exclusions, and the
user's history again) and excluded categories, applies the per-category cap, and
stops at ``offset + k``. That is the live path's answer whenever the live path would have
picked from the same list: the caller checks the conditions (see
``RecommendService._walkable``) and this returns None when the list runs out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastinsight.services.serving.exclusions import NeverShow
from fastinsight.services.serving.view import CatalogView

_CHUNK = 64


def walk(
    ordered: Iterator[tuple[int, int]], view: CatalogView, allowed: np.ndarray,
    never: NeverShow, need: int, cap: int | None,
) -> list[tuple[int, int]] | None:
    """The first ``need`` (position, item) pairs that may be shown, or None if too few:
    let through by the category filters (``allowed``) and by ``never``."""
    out: list[tuple[int, int]] = []
    per_cat: Counter[str] = Counter()
    primary = view.primary
    allows = never.allows
    for pos, item in ordered:
        if not allowed[item] or not allows(item):
            continue
        if cap is not None:
            cat = primary[item]
            if cat and per_cat[cat] >= cap:
                continue
            per_cat[cat] += 1
        out.append((pos, item))
        if len(out) == need:
            return out
    return None


def in_list(ids: np.ndarray) -> Iterator[tuple[int, int]]:
    """(position, item) of a padded candidate row, up to its first -1."""
    for pos, item in enumerate(ids.tolist()):
        if item < 0:
            return
        yield pos, item


def in_order(order: np.ndarray) -> Iterator[tuple[int, int]]:
    """(position, item) of a full ranking, converted to Python ints a chunk at a time."""
    for start in range(0, len(order), _CHUNK):
        for offset, item in enumerate(order[start:start + _CHUNK].tolist()):
            yield start + offset, item


def items(
    picked: list[int], scores: list[float], reasons: list[str], view: CatalogView
) -> list[dict[str, Any]]:
    """Response items as plain dicts, validated once with the whole response (one call
    into pydantic-core: a third of the cost of building the item models one by one)."""
    ids = view.ids
    return [{"item_id": ids[item], "score": round(score, 6), "reason": reason}
            for item, score, reason in zip(picked, scores, reasons, strict=True)]
