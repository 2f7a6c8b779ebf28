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

**More iterations without starting over.** As for our ALS
(:meth:`.als.ALSRecommender.derive_from`), a search trial with more ALS iterations than
the trial before (all else equal) continues that trial's factors for the difference
(:meth:`ImplicitRanker.derive`): implicit's ALS is deterministic from its seeded start,
so the result is the fresh fit's, and the reference's search is as cheap as ours.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from fastinsight.recsys.base import ModelParams, differ_only_in, same_entries
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
    #: Parameters a fitted ranker can change without refitting (:meth:`derive`).
    derivable: ClassVar[dict[str, tuple[str, ...]]] = {"implicit_als": ("iterations",)}

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
        started = time.perf_counter()
        self._run(self._build(None))
        took = time.perf_counter() - started
        log.info("fit %s in %.2fs", self.algorithm, took)
        return took

    def derive(self, previous: object, matrix: sp.csr_matrix) -> float | None:
        """Fit by continuing ``previous`` (the trial before, fitted on the same matrix and
        times with fewer ALS iterations, all else equal): the seconds it took, or None
        (nothing changed: call :meth:`fit`). ``previous`` is consumed."""
        names = self.derivable.get(self.algorithm, ())
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        if (not names or not isinstance(previous, ImplicitRanker)
                or previous.algorithm != self.algorithm or previous.model is None
                or not isinstance(self.params, ImplicitALSParams)
                or not isinstance(previous.params, ImplicitALSParams)
                or previous.params.iterations >= self.params.iterations
                or not differ_only_in(self.params, previous.params, names)
                or not same_entries(previous.matrix, matrix)
                or not same_entries(previous._times, self._times)):
            return None
        started = time.perf_counter()
        rows = self._rows(matrix)
        if rows.shape[0] != previous.model.user_factors.shape[0]:
            return None  # other session rows than the fit continued (implicit cannot tell)
        self.matrix = matrix
        model = self._build(self.params.iterations - previous.params.iterations)
        model.user_factors, model.item_factors = (previous.model.user_factors,
                                                  previous.model.item_factors)
        previous.model, previous.matrix = None, None
        self._run(model, rows)
        took = time.perf_counter() - started
        log.info("derived %s from %d iterations in %.2fs", self.algorithm,
                 previous.params.iterations, took)
        return took

    def _rows(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The training rows: the users' rows, then their sessions' (ALS, when on)."""
        p = self.params
        sessions = self.session_rows(matrix) if isinstance(p, SessionParams) else None
        if isinstance(p, SessionParams) and sessions is not None and sessions.shape[0]:
            weight = np.float32(p.session_weight)
            return sp.csr_matrix(sp.vstack([matrix, sessions * weight]), dtype=np.float32)
        return matrix

    def _run(self, model: Any, rows: sp.csr_matrix | None = None) -> None:
        """Train ``model`` on ``rows`` (default: this ranker's, :meth:`_rows`)."""
        assert self.matrix is not None
        rows = self._rows(self.matrix) if rows is None else rows
        self.session_count = rows.shape[0] - self.matrix.shape[0]
        # implicit parallelises itself; a second BLAS thread pool underneath only thrashes.
        with threadpool_limits(1, "blas"):
            model.fit(rows, show_progress=False)
        self.model = model

    def _build(self, iterations: int | None) -> Any:
        """The implicit model, untrained (``iterations``: None for the parameters')."""
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking

        p = self.params
        if isinstance(p, ImplicitALSParams):
            return AlternatingLeastSquares(
                factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                iterations=iterations or p.iterations, random_state=p.seed, use_gpu=False,
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
