"""Non-personalised baselines: all-time popularity and trending.

Both rank every user's candidates by one per-item score. ``trending`` is the same
model fitted on a different matrix: the training service builds it with
``build_matrix(..., **params.matrix_options(now))`` so that only the last
``window_days`` count and each interaction is halved every ``half_life_days``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fastinsight.errors import ModelError
from fastinsight.recsys.base import ModelParams, Recommender
from fastinsight.recsys.matrix import require_finite
from fastinsight.recsys.ranking import IdsScores, top_n


class PopularityParams(ModelParams):
    measure: Literal["weight", "users"] = Field(
        default="weight",
        description="'weight': sum of confidence weights; 'users': distinct users per item",
    )


class TrendingParams(PopularityParams):
    half_life_days: float = Field(default=3.0, gt=0)
    window_days: float = Field(default=14.0, gt=0)

    def matrix_options(self, now: datetime) -> dict[str, Any]:
        """Keyword arguments for :func:`~fastinsight.recsys.matrix.build_matrix`."""
        return {
            "half_life_days": self.half_life_days,
            "now": now,
            "since": now - timedelta(days=self.window_days),
        }


PP = TypeVar("PP", bound=PopularityParams)


class ItemScoreRecommender(Recommender[PP]):
    """Shared body: one score per item, identical for every user."""

    def __init__(self, params: PP | None = None) -> None:
        super().__init__(params)
        self._scores = np.zeros(0, dtype=np.float32)

    def _fit(self, matrix: sp.csr_matrix) -> None:
        require_finite(matrix)
        if self.params.measure == "users":
            counts = np.bincount(matrix.indices, minlength=self.n_items)
            self._scores = counts.astype(np.float32)
        else:
            self._scores = np.asarray(matrix.sum(axis=0), dtype=np.float32).reshape(-1)

    def item_scores(self) -> np.ndarray:
        """The per-item score (n_items,), float32; a copy."""
        return self._scores.copy()

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        rows = int(history.shape[0])
        return np.tile(self._scores, (rows, 1))

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """The most popular other items: with no co-occurrence, popularity is the prior."""
        self._require_fitted()
        return top_n(self._scores, n, np.array([item_idx]))

    def _require_fitted(self) -> None:
        if self._scores.shape[0] != self.n_items or self.n_items == 0:
            raise ModelError(f"{self.algorithm} model is not fitted")

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores": self._scores}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._scores = arrays["item_scores"].astype(np.float32, copy=False)


class PopularityRecommender(ItemScoreRecommender[PopularityParams]):
    """Most popular items over the whole (possibly decayed) training matrix."""

    algorithm = "popularity"
    params_class = PopularityParams


class TrendingRecommender(ItemScoreRecommender[TrendingParams]):
    """Popularity fitted on a time-decayed, windowed matrix.

    The model itself does no decay: build its matrix with
    ``build_matrix(records, weights, **model.params.matrix_options(now))``.
    :meth:`item_scores` feeds the trending endpoint.
    """

    algorithm = "trending"
    params_class = TrendingParams
