"""Reference points from outside our code: ``implicit``'s own ALS and BPR.

They are fitted on the same training matrix and asked for recommendations through
implicit's own ``recommend`` API (training items filtered by implicit itself), so
the numbers say what the library does, not what our wrappers do.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from fastinsight.recsys.base import ModelParams

log = logging.getLogger(__name__)


class ImplicitALSParams(ModelParams):
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


class ImplicitRanker:
    """Fits an implicit model and returns its top-K lists via ``model.recommend``."""

    kinds: ClassVar[dict[str, type[ModelParams]]] = {
        "implicit_als": ImplicitALSParams, "implicit_bpr": ImplicitBPRParams,
    }

    def __init__(self, algorithm: str, params: dict[str, Any] | None = None) -> None:
        if algorithm not in self.kinds:
            raise ValueError(f"unknown external algorithm {algorithm!r}")
        self.algorithm = algorithm
        self.params = self.kinds[algorithm].model_validate(params or {})
        self.model: Any = None
        self.matrix: sp.csr_matrix | None = None

    def fit(self, matrix: sp.csr_matrix) -> float:
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking

        p = self.params
        if isinstance(p, ImplicitALSParams):
            self.model = AlternatingLeastSquares(
                factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                iterations=p.iterations, random_state=p.seed, use_gpu=False,
            )
        elif isinstance(p, ImplicitBPRParams):
            self.model = BayesianPersonalizedRanking(
                factors=p.factors, learning_rate=p.learning_rate,
                regularization=p.regularization, iterations=p.iterations, random_state=p.seed,
                use_gpu=False,
            )
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        started = time.perf_counter()
        # implicit parallelises itself; a second BLAS thread pool underneath only thrashes.
        with threadpool_limits(1, "blas"):
            self.model.fit(self.matrix, show_progress=False)
        took = time.perf_counter() - started
        log.info("fit %s in %.2fs", self.algorithm, took)
        return took

    def top_k(self, users: np.ndarray, k: int) -> np.ndarray:
        if self.model is None or self.matrix is None:
            raise RuntimeError("fit first")
        users = np.asarray(users, dtype=np.int64)
        out = np.full((users.size, k), -1, dtype=np.int64)
        if users.size == 0:
            return out
        ids, scores = self.model.recommend(
            users, self.matrix[users], N=k, filter_already_liked_items=True,
        )
        ids = np.asarray(ids, dtype=np.int64).reshape(users.size, -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(users.size, -1)
        # implicit pads short lists with -1 / -inf-like scores; keep only real items.
        ids[(ids < 0) | ~np.isfinite(scores)] = -1
        width = min(k, ids.shape[1])
        out[:, :width] = ids[:, :width]
        return out
