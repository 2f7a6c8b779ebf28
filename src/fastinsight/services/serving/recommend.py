"""Recommendations, similar items, trending and session recommendations.

Scores come from the served model version; the user's history is the training row plus
the events posted since that version's snapshot (``fresh_interactions``, held in memory
by :mod:`fastinsight.services.serving.realtime`), folded in at request time so a new interaction
changes the next answer without retraining. A request for a known user makes no
database round trip; when the user has no events since training, the answer is walked
from the version's per-user candidate lists (:mod:`fastinsight.services.serving.precomputed`);
with events since, it is scored exactly from a short candidate pool
(:mod:`fastinsight.services.serving.live`), or through the retrieval index. What the
user must never be shown (seen, disliked, hidden, caller-excluded items, known to the
served version or not) is one set per request (``exclusions.NeverShow``), checked by
every path that adds an item; business rules (boost/bury categories, pinned items, max
items per category) are applied after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.errors import NotFoundError, Unavailable
from fastinsight.observability import LIVE_PATHS, LIVE_SCORING
from fastinsight.recsys.ranking import row_items
from fastinsight.schemas.recs import (
    RecommendationsOut,
    RecommendedItem,
    SimilarOut,
    TrendingOut,
)
from fastinsight.services.serving import precomputed
from fastinsight.services.serving.bundle import ModelBundle
from fastinsight.services.serving.exclusions import NO_ITEMS, NeverShow, UserHistory, user_history
from fastinsight.services.serving.live import LiveEntry, PoolCache, history_key, pooled
from fastinsight.services.serving.realtime import RealtimeState, Record
from fastinsight.services.serving.rules import apply_rules, look_ahead
from fastinsight.services.serving.versions import ServedModel
from fastinsight.services.serving.view import CatalogView, CatalogViewCache, ColdItems, Explain
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.users import UserRepository

log = logging.getLogger(__name__)

COLD_WINDOW_DAYS = 7
# Extra candidates fetched to make up for blocked (seen, disliked, excluded) items.
BLOCKED_ROOM = 400


@dataclass(frozen=True)
class Filters:
    exclude_seen: bool = True
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class RecommendService:
    def __init__(
        self, db: Database[Document], settings: Settings, manager: ServedModel,
        realtime: RealtimeState | None = None, views: CatalogViewCache | None = None,
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.users = UserRepository(db)
        self.interactions = InteractionRepository(db)
        self.items = ItemRepository(db)
        self.realtime = realtime or RealtimeState(InteractionRepository(db), self.users,
                                                  max_users=settings.realtime_max_users)
        self.views = views or CatalogViewCache()
        self._cutoff_for: str | None = None
        self._paths = {path: LIVE_SCORING.labels(path) for path in LIVE_PATHS}
        self.pool_cache = PoolCache(settings.live_cache_users)
        self.realtime.on_erase(self.pool_cache.drop_erased)

    def warm(self) -> None:
        """Build what the served version needs (cutoff, catalogue view) before a request does."""
        if self.manager.current is not None:
            self._view(self._bundle())

    def item_changed(self, _item_id: str) -> None:
        """An item write of this process: bring the view up to date in the writer's thread
        (only that item's entries change), so no request waits for it."""
        self.warm()

    def _bundle(self) -> ModelBundle:
        bundle = self.manager.current
        if bundle is None:
            raise Unavailable("no model version is active yet; train one (fastinsight train)")
        if bundle.version != self._cutoff_for:
            taken = bundle.doc.get("snapshot", {}).get("taken_at")
            if taken is not None:
                self.realtime.set_cutoff(taken)
            self._cutoff_for = bundle.version
        return bundle

    def _trained_row(self, bundle: ModelBundle, user_id: str) -> int | None:
        """The user's row in the served version, or None; 404 if the user does not exist.

        Known users are answered from memory. A user erased after the version was trained
        is looked up in the database (the id may have been created again) and never
        served from the old row.
        """
        erased = self.realtime.erased_at(user_id)
        row = bundle.user_index.get(user_id)
        if erased is not None and erased >= bundle.doc["snapshot"]["taken_at"]:
            row = None
        elif row is not None or self.realtime.is_known(user_id):
            return row
        if self.users.get(user_id) is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        if erased is None:
            self.realtime.remember(user_id)
        return row

    def _view(self, bundle: ModelBundle) -> CatalogView:
        return self.views.get(bundle, self.manager.catalog)

    # ---- per user --------------------------------------------------------------------
    def answers_from_memory(self, user_id: str) -> bool:
        """True when ``for_user`` needs no database round trip and no catalogue pass, so
        it may run on the event loop instead of a worker thread."""
        bundle = self.manager.current
        if (bundle is None or bundle.version != self._cutoff_for
                or not self.views.ready(bundle, self.manager.catalog)
                or self.realtime.erased_at(user_id) is not None
                or not self.realtime.in_memory(user_id)):
            return False
        return user_id in bundle.user_index or self.realtime.is_known(user_id)

    def for_user(self, user_id: str, k: int, offset: int, filters: Filters) -> RecommendationsOut:
        return RecommendationsOut.model_validate(self.for_user_data(user_id, k, offset, filters))

    def for_user_data(self, user_id: str, k: int, offset: int, filters: Filters) -> dict[str, Any]:
        """``for_user`` as plain data in the shape of ``RecommendationsOut``, for the route
        that serialises it straight to JSON (validating it first would cost more than
        the answer when it comes from the training-time lists)."""
        if self.manager.current is None and self.manager.fallback is not None:
            return self._while_loading(self.manager.fallback, user_id, k, offset, filters)
        bundle = self._bundle()
        view = self._view(bundle)
        row = self._trained_row(bundle, user_id)
        fresh = self.realtime.events(user_id)
        history = user_history(bundle, row, fresh, self.settings)
        never = NeverShow.for_user(view, history, filters.exclude_seen, filters.exclude)
        listed = self._listed(bundle, fresh, row, filters)
        items = self._from_lists(bundle, view, never, row, k, offset, filters) if listed else None
        tried = False
        if items is None and not listed and self._walkable_pools(bundle, view, history, filters):
            items = self._from_pools(user_id, bundle, view, history, never, k, offset, filters)
            tried = True
        if items is None:
            items = self._rank(bundle, view, history, never, k, offset, filters,
                               row if listed and len(history.seen) else None, tried)
        return {"user_id": user_id, "model_version": bundle.version, "items": items}

    def _while_loading(self, fallback: Document, user_id: str, k: int, offset: int,
                       filters: Filters) -> dict[str, Any]:
        """The answer while this process loads the active version (a tenant loaded on
        demand): its most popular items, minus what the user interacted with (the newest
        1,000 events), hidden items and the request's exclusions. Category filters need the
        catalogue and are not applied; the next answers come from the loaded version."""
        if self.users.get(user_id) is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        events = self.interactions.for_user(user_id, 1000)
        weights = self.settings.interaction_weights
        skip = set(filters.exclude) | {str(d["item_id"]) for d in events
                                       if filters.exclude_seen or weights.get(d["type"], 0.0) < 0}
        ranked = [(str(item), float(score)) for item, score in
                  zip(fallback["items"], fallback["scores"], strict=True) if item not in skip]
        wanted = ranked[:offset + k + 100]
        hidden = self.items.hidden_among([item for item, _ in wanted])
        shown = [(item, score) for item, score in wanted if item not in hidden]
        return {"user_id": user_id, "model_version": str(fallback.get("version", "loading")),
                "items": [{"item_id": item, "score": round(score, 6), "reason": "popular"}
                          for item, score in shown[offset:offset + k]]}

    def _listed(self, bundle: ModelBundle, fresh: Sequence[Record], row: int | None,
                filters: Filters) -> bool:
        """Whether the training-time candidates (or, without history, the trending order)
        hold this request's answer: the history is the training row, seen items are to be
        excluded, and no category restriction, boost or pin can promote another item."""
        return (filters.exclude_seen and self._narrowable(filters) and not self.settings.pinned_items
                and not fresh and (row is None or bundle.candidates is not None))

    def _from_lists(
        self, bundle: ModelBundle, view: CatalogView, never: NeverShow, row: int | None, k: int,
        offset: int, filters: Filters,
    ) -> list[dict[str, Any]] | None:
        """The answer walked from an ordered list (see services.precomputed), or None."""
        allowed = view.mask((), filters.exclude_categories)
        cap, need = self.settings.max_per_category, k + offset
        if row is None:
            trending = bundle.cold_start_scores(COLD_WINDOW_DAYS)
            picked = precomputed.walk(precomputed.in_order(bundle.ranked_by(trending)), view,
                                      allowed, never, need, cap)
            if picked is None:
                return None
            shown = [item for _, item in picked[offset:]]
            return precomputed.items(shown, trending[shown].tolist(), view.trending_reasons(shown),
                                     view)
        lists, trained = bundle.candidates, bundle.model.user_items
        if lists is None or trained is None or view.cold or trained.indptr[row] == trained.indptr[row + 1]:
            return None
        picked = precomputed.walk(precomputed.in_list(lists.ids[row]), view, allowed, never,
                                  need, cap)
        if picked is None:
            return None
        picked = picked[offset:]
        shown = [item for _, item in picked]
        # Rows as lists first: indexing Python lists is cheaper than numpy scalars.
        because_row, scores_row = lists.because[row].tolist(), lists.scores[row].tolist()
        because = [because_row[pos] for pos, _ in picked]
        if min(because, default=0) >= 0:
            titles = view.titles
            reasons = [f"similar to {titles[b]} you liked" for b in because]
        else:
            reasons = view.history_reasons(row_items(trained, row))(shown)
        return precomputed.items(shown, [scores_row[pos] for pos, _ in picked], reasons, view)

    def _poolable(self, bundle: ModelBundle, filters: Filters) -> bool:
        """Whether the version's candidate pools can hold the answer (services.serving.live)."""
        return (bundle.item_pools is not None and self.settings.live_pools
                and self._narrowable(filters))

    def _walkable_pools(self, bundle: ModelBundle, view: CatalogView, history: UserHistory,
                        filters: Filters) -> bool:
        """Whether the pools' best-first candidates are the answer once walked: no rule (pin,
        cap, item added after training) can change the order apply_rules would give."""
        return (self._poolable(bundle, filters) and len(history.items) > 0
                and not self.settings.pinned_items and self.settings.max_per_category is None
                and not view.cold)

    def _from_pools(
        self, user_id: str, bundle: ModelBundle, view: CatalogView, history: UserHistory,
        never: NeverShow, k: int, offset: int, filters: Filters,
    ) -> list[dict[str, Any]] | None:
        """A live user's answer walked from their candidate pool, best first (the exact
        answer, see services.serving.live); None when the bound reaches too far.

        A user asking again with the same history gets the pool from ``pool_cache``, and
        the same answer as last time while nothing else it read changed: the catalogue
        (hidden items, categories: its revision) and the request."""
        allowed = view.mask((), filters.exclude_categories)
        need = k + offset
        key = history_key(bundle.version, history, not filters.exclude_seen)
        stamp = (view.revision, filters.exclude, filters.exclude_categories, k, offset)
        entry = self.pool_cache.get(user_id, key, need)
        if entry is not None and entry.answer is not None and entry.answer[0] == stamp:
            self._paths["pool_cached"].inc()
            return list(entry.answer[1])
        picked = None if entry is None else precomputed.walk(
            enumerate(entry.pool.ids.tolist()), view, allowed, never, need, None)
        if entry is not None and picked is not None:
            self._paths["pool_cached"].inc()
        else:  # not kept, or fewer items may be shown than when it was
            allows = never.allows
            pool = pooled(bundle, history, need, lambda i: bool(allowed[i]) and allows(i), [],
                          include_seen=not filters.exclude_seen)
            if pool is None:
                return None
            picked = precomputed.walk(enumerate(pool.ids.tolist()), view, allowed, never, need, None)
            if picked is None:
                return None
            entry = LiveEntry(key, need, pool)
            self.pool_cache.put(user_id, entry)
            self._paths["pool_scan" if pool.scanned else "pool"].inc()
        picked = picked[offset:]
        shown = [item for _, item in picked]
        scores = entry.pool.scores.tolist()
        items = precomputed.items(shown, [scores[pos] for pos, _ in picked],
                                  view.history_reasons(history.items)(shown), view)
        entry.answer = (stamp, items)
        return list(items)

    def for_session(self, item_ids: Sequence[str], k: int, exclude: Sequence[str]) -> RecommendationsOut:
        bundle = self._bundle()
        view = self._view(bundle)
        catalog = self.manager.catalog
        # Deleted items are no source, as items that never existed are not: nothing is
        # scored or explained from them (they stay excluded from the answer).
        cols = np.unique(np.array([bundle.item_index[i] for i in item_ids
                                   if i in bundle.item_index and not catalog.gone(i)],
                                  dtype=np.int64))
        history = UserHistory(bundle, None, NO_ITEMS, (cols, np.ones(len(cols), dtype=np.float32)),
                              fresh_items=cols)
        never = NeverShow.for_session(view, item_ids, exclude)
        items = self._rank(bundle, view, history, never, k, 0, Filters(exclude=tuple(exclude)))
        return RecommendationsOut(user_id=None, model_version=bundle.version, items=items)

    def _rank(
        self, bundle: ModelBundle, view: CatalogView, history: UserHistory, never: NeverShow,
        k: int, offset: int, filters: Filters, listed: int | None = None, pools_tried: bool = False,
    ) -> list[dict[str, Any]]:
        """``listed``: a trained row whose training-time candidates replace retrieval;
        ``pools_tried``: the pools' bound reached too far already (``_from_pools``)."""
        reasons: Explain = (view.history_reasons(history.items) if len(history.items)
                            else view.trending_reasons)
        allowed = view.mask(filters.categories, filters.exclude_categories)
        scores, candidates, exact = self._scores(bundle, history, k + offset, never, filters,
                                                 allowed, listed, pools_tried)
        cold = view.cold_items  # read once: the view may take a catalogue change meanwhile
        seen = len(history.items) > 0
        rules = partial(
            apply_rules, allowed=allowed,
            never=never, view=view, settings=self.settings, n=k + offset, cold=cold,
            cold_profile=view.category_profile(history.row) if seen and cold else None,
            include_categories=filters.categories, exclude_categories=filters.exclude_categories,
            cold_scores=self._cold_scores(bundle, cold, history) if seen and cold else None,
        )
        picked = rules(scores, candidates=candidates)
        if candidates is not None and len(picked) < k + offset:
            # Filters or rules left too few of the candidates: score everything.
            picked = rules(exact())
        shown = picked[offset: offset + k]
        explained = iter(reasons([index for _, index, _, reason in shown if not reason]))
        # Plain data, validated once with the whole response (see precomputed.items).
        return [{"item_id": item_id, "score": round(float(score), 6),
                 "reason": reason or next(explained)}
                for item_id, index, score, reason in shown]

    def _scores(
        self, bundle: ModelBundle, history: UserHistory, n: int, never: NeverShow,
        filters: Filters, allowed: np.ndarray, listed: int | None = None, pools_tried: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None, Callable[[], np.ndarray]]:
        """(scores, candidates, exact): scores of the candidate items, or of the whole
        catalogue when ``candidates`` is None; ``exact()`` scores the whole catalogue.

        A user without history gets trending items; others the model's scores: the
        training-time candidates of trained row ``listed`` when given, else the version's
        candidate pools (exact, see ``services.serving.live``), else through the
        retrieval index where it gives the same answer (see ``_retrieve``).
        """
        if not len(history.items):
            trending = bundle.cold_start_scores(COLD_WINDOW_DAYS)
            if not self._narrowable(filters):
                return trending, None, lambda: trending
            order = bundle.ranked_by(trending)[: self._want(n, never)]
            candidates = self._with_pinned(bundle, order)
            return trending[candidates], candidates, lambda: trending

        def exact() -> np.ndarray:
            return np.asarray(bundle.model.score_history(history.row)[0], dtype=np.float32)

        found = None
        if listed is not None:
            found = self._listed_candidates(bundle, listed)
        elif self._poolable(bundle, filters) and not pools_tried:
            pool = pooled(bundle, history, look_ahead(n, self.settings),
                          lambda i: bool(allowed[i]) and never.allows(i), self._pinned(bundle),
                          include_seen=not filters.exclude_seen)
            if pool is not None:
                self._paths["pool_scan" if pool.scanned else "pool"].inc()
                found = pool.scores, pool.ids
        if found is None and listed is None:
            found = self._retrieve(bundle, history.row, n, never, filters)
            self._paths["exact" if found is None else "index"].inc()
        if found is None:
            return exact(), None, exact
        return found[0], found[1], exact

    @staticmethod
    def _listed_candidates(bundle: ModelBundle, row: int) -> tuple[np.ndarray, np.ndarray] | None:
        lists = bundle.candidates
        if lists is None:
            return None
        ids = lists.ids[row]
        keep = ids >= 0
        return lists.scores[row][keep], ids[keep].astype(np.int64)

    def _narrowable(self, filters: Filters) -> bool:
        """Whether the best items can be found among a short candidate list: not when
        a category restriction or a boost could promote an item from outside it."""
        return not filters.categories and not self.settings.boost_categories

    def _want(self, n: int, never: NeverShow) -> int:
        """Candidates to fetch: what apply_rules looks at plus room for blocked items; a
        user who blocks more than the room may fall back to exact scoring."""
        return look_ahead(n, self.settings) + min(len(never), BLOCKED_ROOM)

    def _pinned(self, bundle: ModelBundle) -> list[int]:
        return [bundle.item_index[i] for i in self.settings.pinned_items if i in bundle.item_index]

    def _with_pinned(self, bundle: ModelBundle, ids: np.ndarray) -> np.ndarray:
        pinned = self._pinned(bundle)
        if not pinned:
            return ids
        return np.concatenate([ids, np.setdiff1d(np.asarray(pinned, dtype=np.int64), ids)])

    def _retrieve(
        self, bundle: ModelBundle, history: sp.csr_matrix, n: int, never: NeverShow,
        filters: Filters,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Best items through the retrieval index: (their scores, their indices), or None.

        Only where the index answers the same question as scoring everything: a model
        scored by inner product, an HNSW graph (exact search is no cheaper than
        scoring) and no filter or boost that could promote an item from outside the
        candidates. Scores of the candidates (and pinned items) are exact.
        """
        index = bundle.retrieval
        if index is None or index.exact or not self._narrowable(filters):
            return None
        # Blocked items are masked by the rules afterwards: the search leaves none out.
        found, scores = bundle.model.recommend_many(
            history, self._want(n, never), index=index, exclude_history=False,
            include=self._pinned(bundle))
        keep = found[0] >= 0
        return scores[0][keep], found[0][keep]

    @staticmethod
    def _cold_scores(bundle: ModelBundle, cold: ColdItems, history: UserHistory) -> np.ndarray | None:
        if cold.vectors is None or not len(history.items):
            return None
        query = bundle.model.cold_query_vector(history.row)
        if query is None:
            return None
        return np.asarray(cold.vectors @ query, dtype=np.float32)

    # ---- per item --------------------------------------------------------------------
    def similar(self, item_id: str, k: int) -> SimilarOut:
        bundle = self._bundle()
        view = self._view(bundle)
        catalog = self.manager.catalog
        if catalog.gone(item_id) or (catalog.get(item_id) is None and item_id not in bundle.item_index):
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
