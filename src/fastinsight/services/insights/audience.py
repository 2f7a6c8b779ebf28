"""Audiences: the users most likely to engage with an item or a category.

Users are ranked by the active model version's predicted affinity (``user_vector @
item_vector``; for a category, the mean vector of its items). People who already
interacted are left out by default: the rollup snapshot knows who saw each item (one
scan per refresh, never one per request), and the small real-time collection adds the
events recorded since.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence

import numpy as np
from pymongo.database import Database

from fastinsight.errors import NotFoundError
from fastinsight.recsys.ranking import top_n
from fastinsight.schemas.insights import AudienceMember, AudienceOut
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.cache import LoadedEmbeddings
from fastinsight.services.insights.rollup import Rollup
from fastinsight.services.insights.segments import csv_text
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.insights import InsightScans
from fastinsight.storage.mongo.items import ItemRepository

log = logging.getLogger(__name__)


def audience_csv(out: AudienceOut) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "user_id", "score"])
    for m in out.users:
        writer.writerow([m.rank, csv_text(m.user_id), f"{m.score:.6f}"])
    return buf.getvalue()


class AudienceService:
    def __init__(self, db: Database[Document], insights: InsightsService) -> None:
        self.insights = insights
        self.scans = InsightScans(db)
        self.items = ItemRepository(db)

    def _excluded(
        self, loaded: LoadedEmbeddings, rollup: Rollup, rollup_items: np.ndarray,
        item_ids: Sequence[str],
    ) -> np.ndarray:
        """Embedding indices of users who interacted with any of these items."""
        user_map, _ = loaded.maps_for(rollup)
        seen = user_map[rollup.users_who_saw(rollup_items)] if rollup_items.size else np.zeros(0, int)
        fresh = self.scans.fresh_users_of_items(list(item_ids))
        extra = [loaded.user_index[u] for u in fresh if u in loaded.user_index]
        found = np.concatenate([seen[seen >= 0], np.asarray(extra, dtype=np.int64)])
        return np.unique(found.astype(np.int64))

    def _rank(
        self, loaded: LoadedEmbeddings, vector: np.ndarray, k: int, exclude: np.ndarray
    ) -> list[AudienceMember]:
        """The best ``k`` users, leaving out users erased since the version was trained
        (at most ``len(erased)`` of the best ``k + len(erased)``)."""
        erased = self.insights.embeddings.erased(loaded)
        scores = loaded.emb.user_vectors @ vector.astype(np.float32)
        ids, values = top_n(scores, k + len(erased), exclude if exclude.size else None)
        users = loaded.emb.user_ids
        kept = [(str(users[u]), s) for u, s in zip(ids.tolist(), values.tolist(), strict=True)
                if not loaded.is_erased(str(users[u]), erased)][:k]
        return [AudienceMember(rank=n + 1, user_id=u, score=round(float(s), 6))
                for n, (u, s) in enumerate(kept)]

    def for_item(self, item_id: str, k: int, exclude_seen: bool = True) -> AudienceOut:
        if not self.items.exists(item_id):
            raise NotFoundError(f"item {item_id!r} does not exist")
        loaded = self.insights.embeddings.get()
        index = loaded.item_index.get(item_id)
        if index is None:
            raise NotFoundError(
                f"item {item_id!r} is not in model version {loaded.emb.version} "
                "(new items get an audience after the next training)"
            )
        rollup = self.insights.rollup_or_refresh()
        exclude = np.zeros(0, dtype=np.int64)
        if exclude_seen:
            known = rollup.item_index.get(item_id)
            items = np.asarray([known] if known is not None else [], dtype=np.int64)
            exclude = self._excluded(loaded, rollup, items, [item_id])
        return AudienceOut(
            target=item_id, kind="item", model_version=loaded.emb.version,
            excluded_as_of=rollup.computed_at if exclude_seen else None, excluded=int(exclude.size),
            users=self._rank(loaded, loaded.emb.item_vectors[index], k, exclude),
        )

    def for_category(self, category: str, k: int, exclude_seen: bool = True) -> AudienceOut:
        loaded = self.insights.embeddings.get()
        rollup = self.insights.rollup_or_refresh()
        code = rollup.category_index.get(category)
        if code is None:
            raise NotFoundError(f"no item has category {category!r}")
        _, item_map = loaded.maps_for(rollup)
        members = rollup.items_in_category(code)
        vectors = item_map[members]
        vectors = vectors[vectors >= 0]
        if vectors.size == 0:
            raise NotFoundError(f"model version {loaded.emb.version} knows no item of {category!r}")
        centre = loaded.emb.item_vectors[vectors].mean(axis=0)
        exclude = np.zeros(0, dtype=np.int64)
        if exclude_seen:
            ids = [rollup.item_ids[i] for i in members.tolist()]
            exclude = self._excluded(loaded, rollup, members, ids)
        return AudienceOut(
            target=category, kind="category", model_version=loaded.emb.version,
            excluded_as_of=rollup.computed_at if exclude_seen else None, excluded=int(exclude.size),
            users=self._rank(loaded, centre, k, exclude),
        )
