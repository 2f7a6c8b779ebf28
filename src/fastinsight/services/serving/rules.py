"""Business rules for ranking: mask, boost/bury, pin, items added after training, cap.

The catalogue side (hidden flags, categories, titles aligned with the model's items)
is the :class:`~fastinsight.services.serving.view.CatalogView`; what one user must never
be shown is the request's :class:`~fastinsight.services.serving.exclusions.NeverShow`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from fastinsight.config import Settings
from fastinsight.services.serving.exclusions import NeverShow
from fastinsight.services.serving.view import CatalogView, ColdItems

Picked = tuple[str, int, float, str | None]
NO_COLD = ColdItems()


def look_ahead(n: int, settings: Settings) -> int:
    """How many of the best items ranking must consider to fill ``n`` places: more than
    ``n`` only when a per-category cap may skip some."""
    return 4 * n + 50 if settings.max_per_category is not None else n


def apply_rules(
    scores: np.ndarray, allowed: np.ndarray, never: NeverShow, view: CatalogView,
    settings: Settings, n: int, cold: ColdItems = NO_COLD,
    cold_profile: dict[str, float] | None = None, include_categories: Sequence[str] = (),
    exclude_categories: Sequence[str] = (), cold_scores: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> list[Picked]:
    """Mask, boost/bury, pin, add new items by content, cap per category; best ``n``.

    ``allowed``: the category filters' mask; ``never``: what this user must not see.
    ``candidates``: only these item indices can be picked, and ``scores`` holds their
    scores (same order); without, ``scores`` covers the whole catalogue. ``cold``: the
    items added after training, with ``cold_scores`` from the item tower when the model
    has one (same order), else placed by ``cold_profile`` (the user's categories).
    """
    if candidates is None:
        s = never.scores(scores, allowed)
        finite = np.flatnonzero(np.isfinite(s))
        values = s[finite]
    else:
        keep = allowed[candidates] & np.isfinite(scores) & never.keep(candidates)
        finite, values = candidates[keep], scores[keep].astype(np.float32)
    for cat, factor in settings.boost_categories.items():
        m = view.category_mask(cat)[finite]
        values[m] = np.where(values[m] > 0, values[m] * factor, values[m] / max(factor, 1e-6))
    take = min(len(finite), look_ahead(n, settings))
    order = np.argpartition(-values, take - 1)[:take] if take else np.arange(0)
    top, top_values = finite[order], values[order]
    order = np.lexsort((top, -top_values))  # best first, ties by lower index
    ids = view.ids
    ranked: list[Picked] = [(ids[i], i, v, None) for i, v in
                            zip(top[order].tolist(), top_values[order].tolist(), strict=True)]
    best = ranked[0][2] if ranked else 1.0
    if cold_profile:
        for position, info in enumerate(cold):
            if not never.allows_new(info):
                continue
            if include_categories and not set(info.categories) & set(include_categories):
                continue
            if set(info.categories) & set(exclude_categories):
                continue
            if cold_scores is not None:
                # The item tower embedded it: score it like any trained item.
                ranked.append((info.item_id, -1, float(cold_scores[position]),
                               "new item, matches your taste"))
                continue
            affinity = sum(cold_profile.get(c, 0.0) for c in info.categories)
            if affinity > 0:
                label = next(c for c in info.categories if cold_profile.get(c))
                ranked.append((info.item_id, -1, affinity * abs(best),
                               f"new in {label}, matches your interest"))
        ranked.sort(key=lambda r: (-r[2], r[0]))
    # Pinned items come from what the masks above kept: never a blocked one.
    pinned: list[Picked] = []
    for item_id in settings.pinned_items:
        index = view.bundle.item_index.get(item_id)
        if index is None:
            continue
        at = np.flatnonzero(finite == index)
        if len(at):
            pinned.append((item_id, index, float(values[at[0]]), "pinned"))
    pinned_ids = {p[0] for p in pinned}
    out = list(pinned)
    cap = settings.max_per_category
    per_cat: Counter[str] = Counter(view.primary[p[1]] for p in pinned)
    for item in ranked:
        if len(out) >= n:
            break
        if item[0] in pinned_ids:
            continue
        if cap is not None and item[1] >= 0:
            cat = view.primary[item[1]]
            if cat and per_cat[cat] >= cap:
                continue
            per_cat[cat] += 1
        out.append(item)
    return out
