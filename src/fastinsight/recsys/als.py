"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky) trained by ``implicit``.

Confidence follows implicit's convention: an observed weight ``w`` becomes confidence
``c = alpha * w`` with preference 1, every unobserved cell has confidence 1 and
preference 0. Training is implicit's CPU ALS (conjugate-gradient or Cholesky solver);
serving needs only NumPy: known users use their trained factors, and any other history
is *folded in* by solving the same least-squares problem against the fixed item factors:

    x_u = (YᵀY + Yᵀ(C_u - I)Y + λI)⁻¹ Yᵀ C_u p_u

so a user unseen at training time (or one whose history changed) gets the factors the
next training run would give them, up to the item side moving.

**Sessions.** Given the pairs' times (``set_interaction_times``), each session of each
user (:mod:`fastinsight.recsys.sessions`) is also a training row, its weights times
``session_weight``: items taken together within minutes then pull their factors closer
than items the same user took years apart. Only the users' own factors are kept.

**More iterations without starting over.** ALS is deterministic from its seeded start,
so a model with ``iterations = n`` can continue a fitted model of ``m < n`` iterations
(:meth:`ALSRecommender.derive_from`) for ``n - m`` more and end where a fresh fit of
``n`` would: a search over iterations pays for the longest run only once per group.
The session rows' factors needed to continue stay in memory only (not saved).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg.lapack import dposv

from fastinsight.errors import ModelError
from fastinsight.recsys.base import Recommender, same_entries
from fastinsight.recsys.matrix import require_finite
from fastinsight.recsys.ranking import IdsScores, top_n
from fastinsight.recsys.sessions import SessionAware, SessionParams

log = logging.getLogger(__name__)


class ALSParams(SessionParams):
    factors: int = Field(default=64, ge=1, le=1024)
    regularization: float = Field(default=0.05, ge=0)
    iterations: int = Field(default=15, ge=1, le=1000)
    alpha: float = Field(default=1.0, gt=0, description="confidence = alpha * weight")
    random_state: int = 42
    use_cg: bool = Field(default=True, description="conjugate gradient (fast) vs Cholesky")
    num_threads: int = Field(default=0, ge=0, description="0: one per core")


class ALSRecommender(SessionAware, Recommender[ALSParams]):
    algorithm = "als"
    params_class = ALSParams
    derived_params: ClassVar[tuple[str, ...]] = ("iterations",)

    def __init__(self, params: ALSParams | None = None) -> None:
        super().__init__(params)
        self._users = np.zeros((0, self.params.factors), dtype=np.float32)
        self._items = np.zeros((0, self.params.factors), dtype=np.float32)
        self._gram: np.ndarray | None = None  # YᵀY + λI in float64, for fold-in
        # The session rows' factors after the last fit (in memory only): with the users'
        # and items' factors, the state a longer run continues from (:meth:`_derive`).
        self._session_factors: np.ndarray | None = None

    def _fit(self, matrix: sp.csr_matrix) -> None:
        require_finite(matrix)
        self._train(matrix, self.params.iterations, None)

    def _derive(self, previous: Recommender[Any]) -> bool:
        """Continue ``previous`` (the same fit with fewer iterations) for the rest."""
        if (not isinstance(previous, ALSRecommender) or previous._session_factors is None
                or previous.user_items is None
                or previous.params.iterations >= self.params.iterations
                or not same_entries(previous._times, self._times)):
            return False
        matrix = previous.user_items
        rows = self._rows(matrix)
        if rows.shape[0] != matrix.shape[0] + previous._session_factors.shape[0]:
            return False  # other session rows than the fit continued (implicit cannot tell)
        start = np.vstack([previous._users, previous._session_factors])
        items = previous._items
        previous._users = previous._items = np.zeros((0, self.params.factors), dtype=np.float32)
        previous._session_factors, previous._gram = None, None
        self._train(matrix, self.params.iterations - previous.params.iterations, (start, items),
                    rows)
        return True

    def _rows(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The training rows: the users' rows, then their sessions' (when on)."""
        sessions = self.session_rows(matrix)
        if sessions is None:
            return matrix
        return sp.csr_matrix(
            sp.vstack([matrix, sessions * np.float32(self.params.session_weight)]),
            dtype=np.float32)

    def _train(self, matrix: sp.csr_matrix, iterations: int,
               start: tuple[np.ndarray, np.ndarray] | None,
               rows: sp.csr_matrix | None = None) -> None:
        """``iterations`` of implicit's ALS on ``rows`` (default: :meth:`_rows`) from its
        seeded start, or from ``start`` (the rows' factors, the items' factors)."""
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.recommender_base import ModelFitError
        from threadpoolctl import threadpool_limits

        p = self.params
        rows = self._rows(matrix) if rows is None else rows
        # implicit parallelises over users itself; BLAS threads underneath only contend.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=p.factors,
                regularization=p.regularization,
                alpha=p.alpha,
                iterations=iterations,
                use_cg=p.use_cg,
                num_threads=p.num_threads,
                random_state=p.random_state,
                dtype=np.float32,
            )
            if start is not None:
                model.user_factors, model.item_factors = start
            try:
                model.fit(rows, show_progress=False)
            except ModelFitError as exc:
                raise ModelError(f"als: fit produced non-finite factors ({exc})") from exc
        n = matrix.shape[0]
        self._users = np.ascontiguousarray(model.user_factors[:n], dtype=np.float32)
        self._session_factors = np.ascontiguousarray(model.user_factors[n:], dtype=np.float32)
        self._items = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._gram = None

    # ---- scoring ------------------------------------------------------------------
    def user_factors(self) -> np.ndarray:
        return self._users

    def item_factors(self) -> np.ndarray:
        return self._items

    def score_users(self, user_idx: Sequence[int] | np.ndarray) -> np.ndarray:
        self._require_fitted()
        rows = self._users[np.asarray(user_idx, dtype=np.int64)]
        return np.asarray(rows @ self._items.T, dtype=np.float32)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self.fold_in(history) @ self._items.T, dtype=np.float32)

    def query_vector(self, history: sp.csr_matrix) -> np.ndarray | None:
        return np.asarray(self.fold_in(history)[0], dtype=np.float32)

    def query_vectors(self, history: sp.csr_matrix) -> np.ndarray | None:
        return self.fold_in(history)

    def query_vector_of(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
        self._require_fitted()
        return self._fold(np.asarray(items), np.asarray(weights)).astype(np.float32)

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """User factors (rows x factors, float32) for histories over the training items."""
        self._require_fitted()
        rows = history if sp.issparse(history) and history.format == "csr" else sp.csr_matrix(history)
        if rows.shape[1] != self.n_items:
            raise ValueError(f"history has {rows.shape[1]} items, model has {self.n_items}")
        out = np.zeros((rows.shape[0], self._items.shape[1]), dtype=np.float32)
        for r in range(rows.shape[0]):
            start, stop = rows.indptr[r], rows.indptr[r + 1]
            out[r] = self._fold(rows.indices[start:stop], rows.data[start:stop])
        return out

    def _fold(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """One history's factors (float64): the solve every fold-in goes through."""
        keep = weights > 0
        if not keep.all():
            items, weights = items[keep], weights[keep]
        if not len(items):
            return np.zeros(self._items.shape[1])
        conf = self.params.alpha * weights.astype(np.float64)
        # Only the user's rows are converted: copying all item factors per call
        # cost tens of milliseconds on a 100k-item catalogue.
        y_u = self._items[items].astype(np.float64)
        lhs = self._item_gram() + (y_u.T * (conf - 1.0)) @ y_u
        return _solve(lhs, y_u.T @ conf)

    def _item_gram(self) -> np.ndarray:
        if self._gram is None:
            y = self._items.astype(np.float64)
            self._gram = y.T @ y + self.params.regularization * np.eye(y.shape[1])
        return self._gram

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """Cosine between item factors."""
        self._require_fitted()
        norms = np.linalg.norm(self._items, axis=1)
        norms[norms == 0] = 1.0
        scores = (self._items @ self._items[item_idx]) / (norms * norms[item_idx])
        return top_n(scores, n, np.array([item_idx]))

    def _require_fitted(self) -> None:
        if self.n_items == 0 or self._items.shape[0] != self.n_items:
            raise ModelError("als model is not fitted")

    # ---- persistence --------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self._users, "item_factors": self._items}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._users = np.ascontiguousarray(arrays["user_factors"], dtype=np.float32)
        self._items = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)
        self._gram = None
        if self.n_items and self._items.shape[0] == self.n_items:
            self._item_gram()  # at load, not in the first live answer (15 ms at 100k items)


def _solve(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    # Cholesky on the symmetric positive-definite system, straight through LAPACK: the
    # NumPy/SciPy wrappers cost more than the 64 x 64 factorisation itself.
    _, solution, info = dposv(lhs, rhs, lower=True)
    if info == 0 and np.isfinite(solution).all():
        return np.asarray(solution)
    # Only when λ = 0 and the history spans too few items: least norm then.
    return np.asarray(np.linalg.lstsq(lhs, rhs, rcond=None)[0])
