"""Item masks, explanations, content fallback and business rules for ranking.

A :class:`CatalogView` aligns the catalogue (hidden flags, categories, titles) with a
model version's item axis. Building one costs a pass over the catalogue, so the serving
service keeps one in its :class:`CatalogViewCache` per (model version, catalogue
revision), shared by all its requests.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.config import Settings
from fastinsight.recsys.content import ItemContent
from fastinsight.services.serving.bundle import ItemCatalog, ItemInfo, ModelBundle

Picked = tuple[str, int, float, str | None]
Explain = Callable[[Sequence[int]], list[str]]


class CatalogView:
    def __init__(self, bundle: ModelBundle, catalog: ItemCatalog) -> None:
        self.bundle = bundle
        n = len(bundle.item_ids)
        infos: list[ItemInfo | None] = [catalog.get(str(i)) for i in bundle.item_ids.tolist()]
        known = catalog.refreshed_at is not None
        # An item missing from a loaded catalogue was deleted: never recommend it.
        self.hidden = np.array([(info is None and known) or (info is not None and info.hidden)
                                for info in infos], dtype=bool)
        self.visible = ~self.hidden
        self.visible.setflags(write=False)
        self.ids: list[str] = [str(i) for i in bundle.item_ids.tolist()]  # plain str: cheap to index
        self.titles = [info.title if info else str(i) for info, i in zip(infos, bundle.item_ids, strict=True)]
        self.categories: list[tuple[str, ...]] = [info.categories if info else () for info in infos]
        self.tags: list[tuple[str, ...]] = [info.tags if info else () for info in infos]
        self.primary = [c[0] if c else "" for c in self.categories]
        self._cat_masks: dict[str, np.ndarray] = {}
        self.cold = [info for item_id, info in catalog.items.items()
                     if item_id not in bundle.item_index and not info.hidden]
        self.popularity = bundle.trending_scores(bundle.daily.shape[1])
        self.n = n
        self.cold_vectors = self._cold_item_vectors()

    def _cold_item_vectors(self) -> np.ndarray | None:
        """Item-tower embeddings of items added after training (two-tower models with content)."""
        if not self.cold:
            return None
        rows = [ItemContent(item_id=c.item_id, title=c.title, categories=c.categories, tags=c.tags)
                for c in self.cold]
        vectors = self.bundle.model.cold_item_vectors(rows)
        return None if vectors is None else np.atleast_2d(np.asarray(vectors, dtype=np.float32))

    # ---- masks ------------------------------------------------------------------------
    def category_mask(self, category: str) -> np.ndarray:
        mask = self._cat_masks.get(category)
        if mask is None:
            mask = np.fromiter((category in cats for cats in self.categories), dtype=bool, count=self.n)
            self._cat_masks[category] = mask
        return mask

    def mask(self, include: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
        allowed = self.visible  # read-only; combined below into new arrays
        if include:
            any_of = np.zeros(self.n, dtype=bool)
            for cat in include:
                any_of |= self.category_mask(cat)
            allowed = allowed & any_of
        for cat in exclude:
            allowed = allowed & ~self.category_mask(cat)
        return allowed

    def indices(self, item_ids: Iterable[str]) -> np.ndarray:
        index = self.bundle.item_index
        return np.array([index[i] for i in item_ids if i in index], dtype=np.int64)

    def title(self, index: int) -> str:
        return self.titles[index]

    # ---- explanations -----------------------------------------------------------------
    def trending_reasons(self, indices: Sequence[int]) -> list[str]:
        return [f"trending in {self.primary[i]}" if self.primary[i] else "popular" for i in indices]

    def history_reasons(self, history: sp.csr_matrix) -> Explain:
        """Explains picks for this history: the liked item each one is most similar to."""
        seen = history.indices
        vectors = self.bundle.item_unit_vectors
        neighbours = self._neighbours()
        if vectors is None and neighbours is not None and len(seen):
            best: dict[int, tuple[float, int]] = {}
            for h in seen.tolist():
                for r, score in zip(neighbours[0][h].tolist(), neighbours[1][h].tolist(), strict=True):
                    if r >= 0 and score > best.get(r, (-np.inf, -1))[0]:
                        best[r] = (score, h)
            fallback = self._top_category_reason(seen)
            return lambda indices: [f"similar to {self.titles[best[i][1]]} you liked"
                                    if i in best else fallback for i in indices]
        if vectors is None or len(seen) == 0:
            top = Counter(c for i in seen for c in self.categories[i]).most_common(1)
            label = f"because you like {top[0][0]}" if top else "popular with similar users"
            return lambda indices: [label] * len(indices)

        def reasons(indices: Sequence[int]) -> list[str]:
            if not len(indices):
                return []
            # One product for all picks: (picks x dim) @ (dim x seen).
            closest = seen[np.argmax(vectors[np.asarray(indices)] @ vectors[seen].T, axis=1)]
            return [f"similar to {self.titles[int(b)]} you liked" for b in closest]

        return reasons

    def _neighbours(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.bundle.model.item_neighbours()

    def _top_category_reason(self, seen: np.ndarray) -> str:
        top = Counter(c for i in seen.tolist() for c in self.categories[i]).most_common(1)
        return f"because you like {top[0][0]}" if top else "popular with similar users"

    def category_profile(self, history: sp.csr_matrix) -> dict[str, float]:
        weights: dict[str, float] = {}
        for index, w in zip(history.indices.tolist(), history.data.tolist(), strict=True):
            for cat in self.categories[index]:
                weights[cat] = weights.get(cat, 0.0) + float(w)
        total = sum(weights.values())
        return {c: w / total for c, w in weights.items()} if total else {}

    # ---- content similarity (items the model has not seen) -----------------------------
    def similar_by_content(self, item_id: str, k: int) -> list[tuple[str, float, str]]:
        by_vector = self._similar_by_item_tower(item_id, k)
        if by_vector:
            return by_vector
        source = self._info(item_id)
        if source is None:
            return []
        labels = set(source.categories) | set(source.tags)
        if not labels:
            return []
        out: list[tuple[str, float, float, str]] = []
        for i in range(self.n):
            other = str(self.bundle.item_ids[i])
            if other == item_id or self.hidden[i]:
                continue
            overlap = labels & (set(self.categories[i]) | set(self.tags[i]))
            if overlap:
                jac = len(overlap) / len(labels | set(self.categories[i]) | set(self.tags[i]))
                out.append((other, jac, float(self.popularity[i]), sorted(overlap)[0]))
        for info in self.cold:
            if info.item_id == item_id:
                continue
            overlap = labels & (set(info.categories) | set(info.tags))
            if overlap:
                jac = len(overlap) / len(labels | set(info.categories) | set(info.tags))
                out.append((info.item_id, jac, 0.0, sorted(overlap)[0]))
        out.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return [(i, round(j, 6), f"shares {label}") for i, j, _, label in out[:k]]

    def _similar_by_item_tower(self, item_id: str, k: int) -> list[tuple[str, float, str]]:
        vectors = self.bundle.item_unit_vectors
        if self.cold_vectors is None or vectors is None:
            return []
        position = next((n for n, c in enumerate(self.cold) if c.item_id == item_id), None)
        if position is None:
            return []
        query = self.cold_vectors[position]
        query = query / max(float(np.linalg.norm(query)), 1e-9)
        scores = np.where(self.hidden, -np.inf, vectors @ query)
        best = np.argsort(-scores, kind="stable")[:k]
        return [(str(self.bundle.item_ids[i]), round(float(scores[i]), 6), "similar content")
                for i in best.tolist() if np.isfinite(scores[i])]

    def _info(self, item_id: str) -> Any:
        index = self.bundle.item_index.get(item_id)
        if index is not None:
            return ItemInfo(item_id, self.titles[index], self.categories[index], self.tags[index],
                            bool(self.hidden[index]), None)
        return next((c for c in self.cold if c.item_id == item_id), None)


class CatalogViewCache:
    """The view of the served version and catalogue revision, rebuilt when either changes.

    Owned by the service that serves recommendations, never global: one per served model,
    so services over different versions (experiment arms) do not evict each other's.
    """

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._view: CatalogView | None = None
        self._lock = threading.Lock()

    def ready(self, bundle: ModelBundle, revision: int) -> bool:
        """True when ``get`` would return at once (no catalogue pass to make)."""
        return self._view is not None and self._key == (id(bundle), revision)

    def get(self, bundle: ModelBundle, catalog: ItemCatalog, revision: int) -> CatalogView:
        key = (id(bundle), revision)
        view = self._view
        if view is not None and self._key == key:
            return view
        with self._lock:
            if self._view is None or self._key != key:
                self._view = CatalogView(bundle, catalog)
                self._key = key
            return self._view



def look_ahead(n: int, settings: Settings) -> int:
    """How many of the best items ranking must consider to fill ``n`` places: more than
    ``n`` only when a per-category cap may skip some."""
    return 4 * n + 50 if settings.max_per_category is not None else n


def _member(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin`` for a short candidate list, without its sorting overhead."""
    if len(values) * len(of) > 4096:
        return np.isin(values, of)
    inside = set(of.tolist())
    return np.fromiter((v in inside for v in values.tolist()), dtype=bool, count=len(values))


def apply_rules(
    scores: np.ndarray, allowed: np.ndarray, blocked: np.ndarray, view: CatalogView,
    settings: Settings, n: int, cold_profile: dict[str, float] | None = None,
    include_categories: Sequence[str] = (), excluded_ids: set[str] | None = None,
    exclude_categories: Sequence[str] = (), cold_scores: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> list[Picked]:
    """Mask, boost/bury, pin, add new items by content, cap per category; best ``n``.

    ``candidates``: only these item indices can be picked, and ``scores`` holds their
    scores (same order); without, ``scores`` covers the whole catalogue.
    """
    if candidates is None:
        s = np.where(allowed, scores, -np.inf).astype(np.float32)
        if len(blocked):
            s[blocked] = -np.inf
        finite = np.flatnonzero(np.isfinite(s))
        values = s[finite]
    else:
        keep = allowed[candidates] & np.isfinite(scores)
        if len(blocked):
            keep &= ~_member(candidates, blocked)
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
    excluded = excluded_ids or set()
    if cold_profile:
        for position, info in enumerate(view.cold):
            if info.item_id in excluded:
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
