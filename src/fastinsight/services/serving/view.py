"""The item catalogue aligned with a model version's item axis, kept current item by item.

A :class:`CatalogView` holds what ranking reads per item (hidden flags, titles,
categories, per-category masks) in arrays indexed like the model's items, plus the items
added after training (:class:`ColdItems`). Building one is a pass over the whole
catalogue (about 85 ms at 100,000 items), so it happens once per served version. An item
written afterwards changes only its own entries (:meth:`CatalogView.apply`): the serving
service's :class:`CatalogViewCache` replays the catalogue's change journal onto the view,
in the writer's thread for this process's writes and in the poller's for the others.
Requests keep reading the same view while it is updated; each entry is replaced whole,
and the items added after training are swapped as one object, so a request sees an item
either before or after its change.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.content import ItemContent
from fastinsight.services.serving.bundle import ItemCatalog, ItemInfo, ModelBundle

Explain = Callable[[Sequence[int]], list[str]]


@dataclass(frozen=True)
class ColdItems:
    """Visible items the model has no column for, with their item-tower vectors (two-tower
    models with content) in the same order, or None."""

    infos: tuple[ItemInfo, ...] = ()
    vectors: np.ndarray | None = None

    def __bool__(self) -> bool:
        return bool(self.infos)

    def __iter__(self) -> Any:
        return iter(self.infos)

    def __len__(self) -> int:
        return len(self.infos)


class CatalogView:
    def __init__(self, bundle: ModelBundle, catalog: ItemCatalog) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self.revision, items = catalog.snapshot()
        self._loaded = catalog.refreshed_at is not None
        n = len(bundle.item_ids)
        self.n = n
        self.ids: list[str] = [str(i) for i in bundle.item_ids.tolist()]  # plain str: cheap to index
        infos = [items.get(i) for i in self.ids]
        self.hidden = np.array([self._hides(info) for info in infos], dtype=bool)
        self._visible = ~self.hidden
        self.visible = self._visible.view()
        self.visible.setflags(write=False)  # read-only for readers; apply writes the base
        self.titles = [info.title if info else i for info, i in zip(infos, self.ids, strict=True)]
        self.categories: list[tuple[str, ...]] = [info.categories if info else () for info in infos]
        self.tags: list[tuple[str, ...]] = [info.tags if info else () for info in infos]
        self.primary = [c[0] if c else "" for c in self.categories]
        self._cat_masks: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # category masks: built and updated one at a time
        self.everything = np.ones(n, dtype=bool)
        self.everything.setflags(write=False)
        self.popularity = bundle.trending_scores(bundle.daily.shape[1])
        cold = tuple(info for item_id, info in items.items()
                     if item_id not in bundle.item_index and not info.hidden)
        self.cold_items = ColdItems(cold, self._vectors(cold))

    def _hides(self, info: ItemInfo | None) -> bool:
        # An item missing from a loaded catalogue was deleted: never recommend it.
        return (info is None and self._loaded) or (info is not None and info.hidden)

    def _vectors(self, infos: Sequence[ItemInfo]) -> np.ndarray | None:
        """Item-tower embeddings of ``infos`` (two-tower models with content), or None."""
        if not infos:
            return None
        rows = [ItemContent(item_id=c.item_id, title=c.title, categories=c.categories, tags=c.tags)
                for c in infos]
        vectors = self.bundle.model.cold_item_vectors(rows)
        return None if vectors is None else np.atleast_2d(np.asarray(vectors, dtype=np.float32))

    @property
    def cold(self) -> ColdItems:
        return self.cold_items

    @property
    def cold_vectors(self) -> np.ndarray | None:
        return self.cold_items.vectors

    # ---- incremental updates ---------------------------------------------------------
    def apply(self, revision: int, changes: Iterable[tuple[str, ItemInfo | None]]) -> None:
        """Bring the view to catalogue ``revision``: each changed item (None: deleted)
        touches only its own entries, whatever the size of the catalogue."""
        cold: dict[str, ItemInfo | None] = {}
        with self._lock:
            for item_id, info in changes:
                index = self.bundle.item_index.get(item_id)
                if index is None:
                    cold[item_id] = info
                else:
                    self._apply_known(index, item_id, info)
        if cold:
            self._apply_cold(cold)
        self.revision = revision

    def _apply_known(self, index: int, item_id: str, info: ItemInfo | None) -> None:
        hidden = self._hides(info)
        self.hidden[index] = hidden
        self._visible[index] = not hidden
        self.titles[index] = info.title if info else item_id
        before = self.categories[index]
        cats = info.categories if info else ()
        self.categories[index] = cats
        self.tags[index] = info.tags if info else ()
        self.primary[index] = cats[0] if cats else ""
        for cat in set(before) | set(cats):
            mask = self._cat_masks.get(cat)
            if mask is not None:
                mask[index] = cat in cats

    def _apply_cold(self, changed: dict[str, ItemInfo | None]) -> None:
        """Replace the items added after training as one object, embedding only the
        changed ones (the rest keep their vectors)."""
        current = self.cold_items
        kept = [n for n, info in enumerate(current.infos) if info.item_id not in changed]
        added = [info for info in changed.values() if info is not None and not info.hidden]
        infos = tuple(current.infos[n] for n in kept) + tuple(added)
        new = self._vectors(added)  # None when nothing is added or the model cannot embed
        if not infos or (added and new is None):
            vectors = None
        elif current.vectors is None:
            vectors = new if not kept else self._vectors(infos)
        else:
            vectors = current.vectors[kept] if new is None else np.concatenate([current.vectors[kept], new])
        self.cold_items = ColdItems(infos, vectors)

    # ---- masks ------------------------------------------------------------------------
    def category_mask(self, category: str) -> np.ndarray:
        mask = self._cat_masks.get(category)
        if mask is None:
            with self._lock:
                mask = self._cat_masks.get(category)
                if mask is None:
                    mask = np.fromiter((category in cats for cats in self.categories), dtype=bool,
                                       count=self.n)
                    self._cat_masks[category] = mask
        return mask

    def mask(self, include: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
        """Items the category filters let through (visibility is the ``NeverShow``'s)."""
        allowed = self.everything  # read-only; combined below into new arrays
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

    def history_reasons(self, seen: np.ndarray) -> Explain:
        """Explains picks for a history of the items ``seen``: the liked item each one is
        most similar to."""
        vectors = self.bundle.item_unit_vectors
        neighbours = self.bundle.model.item_neighbours()
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
            label = self._top_category_reason(seen, "because you like {}")
            return lambda indices: [label] * len(indices)

        def reasons(indices: Sequence[int]) -> list[str]:
            if not len(indices):
                return []
            # One product for all picks: (picks x dim) @ (dim x seen).
            closest = seen[np.argmax(vectors[np.asarray(indices)] @ vectors[seen].T, axis=1)]
            return [f"similar to {self.titles[int(b)]} you liked" for b in closest]

        return reasons

    def _top_category_reason(self, seen: np.ndarray, template: str = "because you like {}") -> str:
        top = Counter(c for i in seen.tolist() for c in self.categories[i]).most_common(1)
        return template.format(top[0][0]) if top else "popular with similar users"

    def category_profile(self, history: sp.csr_matrix) -> dict[str, float]:
        weights: dict[str, float] = {}
        for index, w in zip(history.indices.tolist(), history.data.tolist(), strict=True):
            for cat in self.categories[index]:
                weights[cat] = weights.get(cat, 0.0) + float(w)
        total = sum(weights.values())
        return {c: w / total for c, w in weights.items()} if total else {}

    # ---- content similarity (items the model has not seen) -----------------------------
    def similar_by_content(self, item_id: str, k: int) -> list[tuple[str, float, str]]:
        cold = self.cold_items
        by_vector = self._similar_by_item_tower(cold, item_id, k)
        if by_vector:
            return by_vector
        source = self._info(cold, item_id)
        if source is None:
            return []
        labels = set(source.categories) | set(source.tags)
        if not labels:
            return []
        out: list[tuple[str, float, float, str]] = []
        for i in range(self.n):
            other = self.ids[i]
            if other == item_id or self.hidden[i]:
                continue
            overlap = labels & (set(self.categories[i]) | set(self.tags[i]))
            if overlap:
                jac = len(overlap) / len(labels | set(self.categories[i]) | set(self.tags[i]))
                out.append((other, jac, float(self.popularity[i]), sorted(overlap)[0]))
        for info in cold:
            if info.item_id == item_id:
                continue
            overlap = labels & (set(info.categories) | set(info.tags))
            if overlap:
                jac = len(overlap) / len(labels | set(info.categories) | set(info.tags))
                out.append((info.item_id, jac, 0.0, sorted(overlap)[0]))
        out.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return [(i, round(j, 6), f"shares {label}") for i, j, _, label in out[:k]]

    def _similar_by_item_tower(self, cold: ColdItems, item_id: str, k: int) -> list[tuple[str, float, str]]:
        vectors = self.bundle.item_unit_vectors
        if cold.vectors is None or vectors is None:
            return []
        position = next((n for n, c in enumerate(cold) if c.item_id == item_id), None)
        if position is None:
            return []
        query = cold.vectors[position]
        query = query / max(float(np.linalg.norm(query)), 1e-9)
        scores = np.where(self.hidden, -np.inf, vectors @ query)
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.ids[i], round(float(scores[i]), 6), "similar content")
                for i in best.tolist() if np.isfinite(scores[i])]

    def _info(self, cold: ColdItems, item_id: str) -> ItemInfo | None:
        index = self.bundle.item_index.get(item_id)
        if index is not None:
            return ItemInfo(item_id, self.titles[index], self.categories[index], self.tags[index],
                            bool(self.hidden[index]), None)
        return next((c for c in cold if c.item_id == item_id), None)


class CatalogViewCache:
    """The view of the served version, kept at the catalogue's revision.

    Owned by the service that serves recommendations (one per process), never global. A
    new version gets a new view (a full pass); catalogue changes are applied to the
    current one item by item (a full pass only if the journal no longer reaches back).
    """

    def __init__(self) -> None:
        self._view: CatalogView | None = None
        self._lock = threading.Lock()

    def ready(self, bundle: ModelBundle, catalog: ItemCatalog) -> bool:
        """True when ``get`` would return at once (nothing to build or apply)."""
        view = self._view
        return (view is not None and view.bundle is bundle and view.catalog is catalog
                and view.revision == catalog.revision)

    def get(self, bundle: ModelBundle, catalog: ItemCatalog) -> CatalogView:
        view = self._view
        if (view is not None and view.bundle is bundle and view.catalog is catalog
                and view.revision == catalog.revision):
            return view
        with self._lock:
            view = self._view
            if view is None or view.bundle is not bundle or view.catalog is not catalog:
                view = CatalogView(bundle, catalog)
            elif view.revision != catalog.revision:
                pending = catalog.changes_since(view.revision)
                if pending is None:
                    view = CatalogView(bundle, catalog)
                else:
                    view.apply(*pending)
            self._view = view
            return view
