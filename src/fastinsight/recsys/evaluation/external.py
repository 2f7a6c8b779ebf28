"""Reference points from outside our code: ``implicit``'s own ALS and BPR.

They are fitted on the same training matrix and asked for recommendations through
implicit's own ``recommend`` API (training items filtered by implicit itself), so
the numbers say what the library does, not what our wrappers do.

**Same side information.** Given the interaction times (``side``), implicit's ALS is
fitted on the same rows as our session-aware models: each user's row plus one row per
session of that user (:mod:`fastinsight.recsys.sessions`), weighted by
``session_weight``, with the same defaults as our ALS. Without times (or with
``session_gap_seconds=0``) both see the user rows alone. Recommendations still go to
the users' rows only.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from fastinsight.recsys.base import ModelParams
from fastinsight.recsys.evaluation.metrics import hit_matrix
from fastinsight.recsys.sessions import SessionAware, SessionParams
from fastinsight.recsys.side import SideData

log = logging.getLogger(__name__)


class ImplicitALSParams(SessionParams):
    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.05, ge=0)
    alpha: float = Field(default=1.0, gt=0)
    iterations: int = Field(default=15, ge=1)
    seed: int = 0


class ImplicitBPRParams(ModelParams):
    factors: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    regularization: float = Field(default=0.01, ge=0)
    iterations: int = Field(default=100, ge=1)
    seed: int = 0


class ImplicitRanker(SessionAware):
    """Fits an implicit model and returns its top-K lists via ``model.recommend``."""

    kinds: ClassVar[dict[str, type[ModelParams]]] = {
        "implicit_als": ImplicitALSParams, "implicit_bpr": ImplicitBPRParams,
    }

    def __init__(
        self, algorithm: str, params: dict[str, Any] | None = None, side: SideData | None = None,
    ) -> None:
        if algorithm not in self.kinds:
            raise ValueError(f"unknown external algorithm {algorithm!r}")
        self.algorithm = algorithm
        self.params = self.kinds[algorithm].model_validate(params or {})
        self.model: Any = None
        self.matrix: sp.csr_matrix | None = None
        self.session_count = 0
        if side is not None and isinstance(self.params, SessionParams):
            self.set_interaction_times(side.times)

    def fit(self, matrix: sp.csr_matrix) -> float:
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        rows = self.matrix
        p = self.params
        sessions = self.session_rows(self.matrix) if isinstance(p, SessionParams) else None
        if isinstance(p, SessionParams) and sessions is not None and sessions.shape[0]:
            weight = np.float32(p.session_weight)
            rows = sp.csr_matrix(sp.vstack([self.matrix, sessions * weight]), dtype=np.float32)
        self.session_count = rows.shape[0] - self.matrix.shape[0]
        started = time.perf_counter()
        # implicit parallelises itself; a second BLAS thread pool underneath only thrashes.
        with threadpool_limits(1, "blas"):
            self.model = self._build()
            self.model.fit(rows, show_progress=False)
        took = time.perf_counter() - started
        log.info("fit %s in %.2fs", self.algorithm, took)
        return took

    def _build(self) -> Any:
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking

        p = self.params
        if isinstance(p, ImplicitALSParams):
            return AlternatingLeastSquares(
                factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                iterations=p.iterations, random_state=p.seed, use_gpu=False,
            )
        assert isinstance(p, ImplicitBPRParams)
        return BayesianPersonalizedRanking(
            factors=p.factors, learning_rate=p.learning_rate, regularization=p.regularization,
            iterations=p.iterations, random_state=p.seed, use_gpu=False,
        )

    def top_k(self, users: np.ndarray, k: int) -> np.ndarray:
        if self.model is None or self.matrix is None:
            raise RuntimeError("fit first")
        users = np.asarray(users, dtype=np.int64)
        out = np.full((users.size, k), -1, dtype=np.int64)
        if users.size == 0:
            return out
        n = min(k, int(self.matrix.shape[1]))
        ids, _ = self.model.recommend(
            users, self.matrix[users], N=n, filter_already_liked_items=True,
        )
        ids = np.asarray(ids, dtype=np.int64).reshape(users.size, -1)[:, :n]
        # When fewer than N items are left, implicit fills the list with the filtered
        # (training) items at score -FLT_MAX; drop them so they never count.
        ids[hit_matrix(ids, self.matrix[users])] = -1
        out[:, :n] = ids
        return out
