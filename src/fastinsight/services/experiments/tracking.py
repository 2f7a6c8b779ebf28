"""Every recommendation answer, routed and recorded: the user's experiment arm (if any)
answers it, it gets a ``recommendation_id`` (and ``variant``), and the served list is
queued as an impression (:mod:`services.experiments.impressions`, off the request path).

The ranking itself is the recommend service's; this layer only shapes the answer.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from fastinsight.config import Settings
from fastinsight.schemas.experiments import DisplayedBatchIn, DisplayedOut
from fastinsight.schemas.recs import RecommendationsOut, RecommendedItem, SimilarOut, TrendingOut
from fastinsight.services.experiments.impressions import ImpressionBuffer
from fastinsight.services.experiments.serving import ExperimentRuntime, Route
from fastinsight.services.serving.recommend import Filters
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.impressions import ImpressionRepository


class _Answer(Protocol):
    model_version: str
    items: list[RecommendedItem]
    recommendation_id: str | None
    variant: str | None
    experiment_id: str | None


A = TypeVar("A", bound=_Answer)

log = logging.getLogger(__name__)


def _ids(items: Sequence[Any]) -> list[str]:
    return [i["item_id"] if isinstance(i, dict) else i.item_id for i in items]


class TrackedRecommendations:
    def __init__(self, runtime: ExperimentRuntime, buffer: ImpressionBuffer, repo: ImpressionRepository,
                 settings: Settings) -> None:
        self.runtime = runtime
        self.buffer = buffer
        self.repo = repo
        self.settings = settings
        # Recommendation ids: 128 random bits from a generator seeded once from the OS
        # (uuid4 asks the kernel on every answer; that system call lets the impression
        # writer take the interpreter in the middle of the request). An id names an answer
        # to attribute events to; it grants nothing, so it needs uniqueness, not secrecy.
        self._ids = random.Random(os.urandom(32))  # noqa: S311

    def route(self, user_id: str | None, endpoint: str) -> Route:
        return self.runtime.route(user_id, endpoint)

    def record(self, route: Route, endpoint: str, user_id: str | None, items: list[str], offset: int,
               model_version: str) -> str:
        """Queue the impression of one answer; returns its recommendation id."""
        rid = f"{self._ids.getrandbits(128):032x}"
        if self.settings.record_impressions:
            doc: Document = {"_id": rid, "user_id": user_id, "endpoint": endpoint, "items": items,
                             "model_version": model_version, "ts": datetime.now(UTC)}
            if offset:
                doc["offset"] = offset
            if route.experiment_id is not None:  # absent fields cost nothing to write
                doc["experiment_id"] = route.experiment_id
                doc["variant"] = route.variant
            self.buffer.record(doc)
        return rid

    # ---- per endpoint ---------------------------------------------------------------
    def for_user(self, route: Route, user_id: str, k: int, offset: int, filters: Filters) -> dict[str, Any]:
        """The answer of ``GET /v1/users/{id}/recommendations`` as plain data (see
        ``RecommendService.for_user_data``), stamped and recorded."""
        data = route.service.for_user_data(user_id, k, offset, filters)
        data["recommendation_id"] = self.record(route, "user", user_id, _ids(data["items"]), offset,
                                                data["model_version"])
        data["variant"] = route.variant
        data["experiment_id"] = route.experiment_id
        return data

    def similar(self, item_id: str, k: int, user_id: str | None = None) -> SimilarOut:
        route = self.route(user_id, "similar")
        out = route.service.similar(item_id, k)
        return self._stamp(out, route, "similar", user_id)

    def trending(self, k: int, window_days: int, category: str | None,
                 user_id: str | None = None) -> TrendingOut:
        route = self.runtime.default_route  # trending is the same for every arm
        out = route.service.trending(k, window_days, category)
        return self._stamp(out, route, "trending", user_id)

    def session(self, items: Sequence[str], k: int, exclude: Sequence[str],
                user_id: str | None = None) -> RecommendationsOut:
        route = self.route(user_id, "session")
        out = route.service.for_session(items, k, exclude)
        out.user_id = user_id
        return self._stamp(out, route, "session", user_id)

    def _stamp(self, out: A, route: Route, endpoint: str, user_id: str | None) -> A:
        out.recommendation_id = self.record(route, endpoint, user_id, _ids(out.items), 0, out.model_version)
        out.variant = route.variant
        out.experiment_id = route.experiment_id
        return out

    # ---- what clients displayed ------------------------------------------------------------
    def displayed(self, batch: DisplayedBatchIn) -> DisplayedOut:
        """Store which items of each answer were shown (the first report of an answer wins)."""
        now = datetime.now(UTC)
        first: dict[str, Document] = {}
        for d in batch.impressions:
            first.setdefault(d.recommendation_id, {"_id": d.recommendation_id, "items": d.item_ids,
                                                   "displayed_at": d.displayed_at or now, "received_at": now})
        docs = list(first.values())
        outcome = self.repo.insert_displays(docs)
        duplicates = len(outcome.duplicate_positions) + len(batch.impressions) - len(docs)
        return DisplayedOut(accepted=outcome.inserted, duplicates=duplicates)

    def user_erased(self, user_id: str) -> None:
        """Erase the user's impressions, those still queued here included (another process
        may write one it queued at this very moment: see docs/experiments.md)."""
        try:
            self.buffer.flush()
        except Exception as exc:  # queued impressions stay queued; the erase below still runs
            log.warning("impressions not flushed before erasing a user: %s", exc.__class__.__name__)
        self.repo.erase_user(user_id)
