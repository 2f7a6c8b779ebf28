"""Recommendations, similar items, trending and session recommendations.

Scores come from the served model version; the user's history is the training row plus
the events posted since that version's snapshot (``fresh_interactions``), folded in at
request time so a new interaction changes the next answer without retraining. Hidden,
disliked, seen and caller-excluded items are masked before ranking; business rules
(boost/bury categories, pinned items, max items per category) are applied after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.errors import NotFoundError, Unavailable
from fastinsight.recsys.matrix import history_row
from fastinsight.schemas_recs import (
    RecommendationsOut,
    RecommendedItem,
    SimilarOut,
    TrendingOut,
)
from fastinsight.services.bundle import ModelBundle
from fastinsight.services.models import ModelManager
from fastinsight.services.rules import CatalogView, apply_rules, views
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.users import UserRepository

log = logging.getLogger(__name__)

COLD_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Filters:
    exclude_seen: bool = True
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class RecommendService:
    def __init__(self, db: Database[Document], settings: Settings, manager: ModelManager) -> None:
        self.settings = settings
        self.manager = manager
        self.users = UserRepository(db)
        self.interactions = InteractionRepository(db)

    def _bundle(self) -> ModelBundle:
        bundle = self.manager.current
        if bundle is None:
            raise Unavailable("no model version is active yet; train one (fastinsight train)")
        return bundle

    def _view(self, bundle: ModelBundle) -> CatalogView:
        return views.get(bundle, self.manager.catalog, self.manager.catalog_revision)

    # ---- per user --------------------------------------------------------------------
    def for_user(self, user_id: str, k: int, offset: int, filters: Filters) -> RecommendationsOut:
        if self.users.get(user_id) is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        bundle = self._bundle()
        history, disliked = self._history(bundle, user_id)
        items = self._rank(bundle, history, disliked, k, offset, filters)
        return RecommendationsOut(user_id=user_id, model_version=bundle.version, items=items)

    def for_session(self, item_ids: Sequence[str], k: int, exclude: Sequence[str]) -> RecommendationsOut:
        bundle = self._bundle()
        cols = [bundle.item_index[i] for i in dict.fromkeys(item_ids) if i in bundle.item_index]
        history = sp.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (np.zeros(len(cols), dtype=np.int64), cols)),
            shape=(1, len(bundle.item_ids)),
        )
        filters = Filters(exclude=tuple(exclude) + tuple(item_ids))
        items = self._rank(bundle, history, np.empty(0, dtype=np.int64), k, 0, filters)
        return RecommendationsOut(user_id=None, model_version=bundle.version, items=items)

    def _history(self, bundle: ModelBundle, user_id: str) -> tuple[sp.csr_matrix, np.ndarray]:
        n_items = len(bundle.item_ids)
        row = bundle.user_index.get(user_id)
        trained = bundle.model.user_items
        base = (trained[row] if row is not None and trained is not None
                else sp.csr_matrix((1, n_items), dtype=np.float32))
        disliked = bundle.negatives[row].indices if row is not None else np.empty(0, np.int64)
        fresh = self.interactions.fresh_for_user(user_id)
        if fresh:
            records = [(f["item_id"], f["type"], f.get("value"), f["timestamp"]) for f in fresh
                       if f["item_id"] in bundle.item_index]
            # Weigh over just the fresh items (same rules as training), then place the
            # columns on the model's item axis: cheap even for a large catalogue.
            fresh_items = sorted({r[0] for r in records})
            small, small_neg = history_row(
                records, self.settings.interaction_weights, np.asarray(fresh_items, dtype=str),
                half_life_days=self.settings.time_decay_half_life_days, now=datetime.now(UTC),
            )
            cols = np.asarray([bundle.item_index[i] for i in fresh_items], dtype=np.int64)
            extra = sp.csr_matrix((small.data, cols[small.indices], [0, small.nnz]),
                                  shape=(1, n_items), dtype=np.float32)
            extra_neg = cols[small_neg]
            base = sp.csr_matrix(base + extra)
            # A fresh dislike wins over an older positive signal.
            if len(extra_neg):
                base = base.tolil()
                base[0, extra_neg] = 0
                base = sp.csr_matrix(base)
                base.eliminate_zeros()
            disliked = np.union1d(disliked, extra_neg)
        return base, np.asarray(disliked, dtype=np.int64)

    def _rank(
        self, bundle: ModelBundle, history: sp.csr_matrix, disliked: np.ndarray, k: int,
        offset: int, filters: Filters,
    ) -> list[RecommendedItem]:
        view = self._view(bundle)
        reasons: Callable[[int], str]
        if history.nnz == 0:
            scores = bundle.trending_scores(COLD_WINDOW_DAYS)
            if not scores.any():
                scores = bundle.trending_scores(bundle.daily.shape[1])
            reasons = view.trending_reasons
        else:
            scores = bundle.model.score_history(history)[0].astype(np.float32)
            reasons = view.history_reasons(history)
        mask = view.mask(filters.categories, filters.exclude_categories)
        blocked = [disliked, view.indices(filters.exclude)]
        if filters.exclude_seen:
            blocked.append(history.indices.astype(np.int64))
        picked = apply_rules(
            scores, mask, np.concatenate(blocked), view, self.settings, k + offset,
            cold_profile=view.category_profile(history) if history.nnz else None,
            include_categories=filters.categories, excluded_ids=set(filters.exclude),
            exclude_categories=filters.exclude_categories,
            cold_scores=self._cold_scores(bundle, view, history),
        )
        return [
            RecommendedItem(item_id=item_id, score=round(float(score), 6),
                            reason=reason or reasons(index))
            for item_id, index, score, reason in picked[offset: offset + k]
        ]

    @staticmethod
    def _cold_scores(bundle: ModelBundle, view: CatalogView, history: sp.csr_matrix) -> np.ndarray | None:
        user_vectors = getattr(bundle.model, "user_vectors_for", None)
        if view.cold_vectors is None or user_vectors is None or history.nnz == 0:
            return None
        return np.asarray(view.cold_vectors @ user_vectors(history)[0], dtype=np.float32)

    # ---- per item --------------------------------------------------------------------
    def similar(self, item_id: str, k: int) -> SimilarOut:
        bundle = self._bundle()
        view = self._view(bundle)
        if self.manager.catalog.get(item_id) is None and item_id not in bundle.item_index:
            raise NotFoundError(f"item {item_id!r} does not exist")
        index = bundle.item_index.get(item_id)
        if index is None:
            results = view.similar_by_content(item_id, k)
        else:
            found = bundle.similar_by_vector(index, k * 3 + 10)
            ids, scores = found if found is not None else bundle.model.similar_items(index, k * 3 + 10)
            title = view.title(index)
            results = [(bundle.item_ids[i], float(s), f"often liked together with {title}")
                       for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
                       if not view.hidden[i]][:k]
            if len(results) < k:
                seen = {r[0] for r in results} | {item_id}
                results += [r for r in view.similar_by_content(item_id, k) if r[0] not in seen]
        items = [RecommendedItem(item_id=str(i), score=round(s, 6), reason=r) for i, s, r in results[:k]]
        return SimilarOut(item_id=item_id, model_version=bundle.version, items=items)

    def trending(self, k: int, window_days: int, category: str | None) -> TrendingOut:
        bundle = self._bundle()
        view = self._view(bundle)
        scores = bundle.trending_scores(window_days, self.settings.time_decay_half_life_days)
        mask = view.mask((category,) if category else (), ())
        scores = np.where(mask & ~view.hidden & (scores > 0), scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:k]
        label = f"trending in {category}" if category else "trending"
        items = [RecommendedItem(item_id=str(bundle.item_ids[i]), score=round(float(scores[i]), 6),
                                 reason=label)
                 for i in order.tolist() if np.isfinite(scores[i])]
        return TrendingOut(model_version=bundle.version, computed_at=bundle.doc["snapshot"]["taken_at"],
                           window_days=min(window_days, bundle.daily.shape[1]), category=category,
                           items=items)
