"""EASE: a closed-form linear item-item model (Steck, 2019).

``P = (XᵀX + λI)⁻¹`` and ``B = -P / diag(P)`` column-wise with a zero diagonal; a user
is scored as ``history @ B``. The dense item x item matrix is the cost: it is computed
in float32, in place (Cholesky factor and inverse overwrite the Gram matrix), so the
peak is about one n x n float32 array plus bounded work blocks. Fitting refuses to
start when that estimate passes ``max_memory_gib``; ``max_items`` fits EASE on the
most popular items only (the rest are never recommended by this model).

**Sessions.** Given the pairs' times (:meth:`EASERecommender.set_interaction_times`),
the Gram matrix also counts co-occurrence within sessions:
``XᵀX + session_weight · SᵀS``, where each row of ``S`` is one session of one user
(:func:`fastinsight.recsys.sessions.session_matrix`). Items taken minutes apart then
weigh more than items the same user took years apart. Scoring is unchanged
(``history @ B``). On MovieLens this lifted test NDCG@10 by 1-5% on four random splits and
by 5% on a temporal split (docs/evaluation.md).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import lapack

from fastinsight.errors import ModelError
from fastinsight.recsys.base import Recommender, same_entries
from fastinsight.recsys.matrix import require_finite
from fastinsight.recsys.ranking import IdsScores, top_n
from fastinsight.recsys.sessions import SessionAware, SessionParams

log = logging.getLogger(__name__)

BLOCK_BYTES = 64 * 2**20
GIB = float(2**30)


class EASEParams(SessionParams):
    l2: float = Field(default=500.0, ge=0, description="L2 penalty λ added to the diagonal")
    max_memory_gib: float = Field(default=4.0, gt=0)
    max_items: int | None = Field(
        default=None, ge=1, description="fit on this many most popular items only"
    )
    num_threads: int = Field(
        default=0, ge=0, description="BLAS threads for the inversion; 0: the BLAS default"
    )


def estimate_bytes(n_items: int) -> int:
    """Peak bytes EASE needs for ``n_items`` (one n x n float32 plus work blocks)."""
    return 4 * n_items * n_items + 3 * min(BLOCK_BYTES, 8 * n_items * n_items)


class EASERecommender(SessionAware, Recommender[EASEParams]):
    algorithm = "ease"
    params_class = EASEParams

    def __init__(self, params: EASEParams | None = None) -> None:
        super().__init__(params)
        self._weights = np.zeros((0, 0), dtype=np.float32)
        self._items = np.zeros(0, dtype=np.int64)  # model item -> matrix column
        # diag(P) and the penalty of the last fit (in memory only): what a variant
        # needs to rescale the weights instead of refactorising (:meth:`_derive`)
        self._inverse: tuple[np.ndarray, np.ndarray] | None = None

    def _fit(self, matrix: sp.csr_matrix) -> None:
        require_finite(matrix)
        items = self._choose_items(matrix)
        m = int(items.shape[0])
        need = estimate_bytes(m)
        limit = self.params.max_memory_gib * GIB
        if need > limit:
            raise ModelError(
                f"EASE needs ~{need / GIB:.1f} GiB for {m} items; limit is "
                f"{self.params.max_memory_gib:g} GiB (max_memory_gib). Set max_items to fit "
                f"EASE on the most popular items only, or raise max_memory_gib."
            )
        x = matrix[:, items].tocsc().astype(np.float32)
        sessions = self.session_rows(matrix)
        extra = None
        if sessions is not None:
            extra = (sessions[:, items].tocsc().astype(np.float32), self.params.session_weight)
        variant = self._variant()
        dropout = variant.pop("dropout", 0.0)
        if self.params.num_threads:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(self.params.num_threads, "blas"):
                inverse, diag, penalty = _inverse(x, self.params.l2, extra, dropout)
        else:
            inverse, diag, penalty = _inverse(x, self.params.l2, extra, dropout)
        self._weights = _weights_from(inverse, diag, penalty, **variant)
        self._inverse = (diag, penalty)
        self._items = items

    def _variant(self) -> dict[str, Any]:
        """Options of the closed form (EDLAE/DLAE set dropout and the diagonal)."""
        return {}

    def _derive(self, previous: Recommender[Any]) -> bool:
        """Another diagonal variant of the same factorisation: every variant's column
        ``j`` is ``P[:, j]`` times a factor, so the weights are rescaled column by column
        (O(items²)) instead of refactorised (O(items³))."""
        if not isinstance(previous, EASERecommender) or previous._inverse is None:
            return False
        if not same_entries(previous._times, self._times):
            return False
        diag, penalty = previous._inverse
        old, new = previous._variant(), self._variant()
        if old.pop("dropout", 0.0) != new.pop("dropout", 0.0):
            return False
        before = _column_factors(diag, penalty, **old)
        if not np.all(np.isfinite(before)) or np.any(before == 0):
            return False
        weights = previous._weights
        previous._weights, previous._inverse = np.zeros((0, 0), dtype=np.float32), None
        weights *= (_column_factors(diag, penalty, **new) / before).astype(np.float32)[None, :]
        weights[np.diag_indices_from(weights)] = _diagonal(diag, penalty, **new)
        self._weights, self._inverse, self._items = weights, (diag, penalty), previous._items
        return True

    def _choose_items(self, matrix: sp.csr_matrix) -> np.ndarray:
        n = self.n_items
        limit = self.params.max_items
        if limit is None or n <= limit:
            return np.arange(n, dtype=np.int64)
        users_per_item = np.bincount(matrix.indices, minlength=n)
        ranked = np.lexsort((np.arange(n), -users_per_item))
        log.info("ease: fitting on the %d most popular of %d items", limit, n)
        return np.sort(ranked[:limit]).astype(np.int64)

    @property
    def covers_all_items(self) -> bool:
        return int(self._items.shape[0]) == self.n_items

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        row = sp.csr_matrix(history, dtype=np.float32)
        if self.covers_all_items:
            return np.asarray(row @ self._weights, dtype=np.float32)
        sub = np.asarray(row[:, self._items] @ self._weights, dtype=np.float32)
        scores = np.full((row.shape[0], self.n_items), -np.inf, dtype=np.float32)
        scores[:, self._items] = sub
        return scores

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """Items that ``item_idx`` predicts most strongly (its row of B)."""
        self._require_fitted()
        pos = int(np.searchsorted(self._items, item_idx))
        if pos >= self._items.shape[0] or self._items[pos] != item_idx:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        ids, scores = top_n(self._weights[pos], n, np.array([pos]))
        return self._items[ids], scores

    def _require_fitted(self) -> None:
        if self.n_items == 0 or self._weights.shape[0] != self._items.shape[0]:
            raise ModelError("ease model is not fitted")

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self._weights, "items": self._items}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._weights = np.ascontiguousarray(arrays["weights"], dtype=np.float32)
        self._items = arrays["items"].astype(np.int64, copy=False)


def _closed_form(
    x: sp.csc_matrix, l2: float, extra: tuple[sp.csc_matrix, float] | None = None,
    dropout: float = 0.0, zero_diagonal: bool = True, max_diagonal: float = 0.0,
) -> np.ndarray:
    """B for a users x m csc matrix; returns a C-contiguous float32 m x m array.

    ``extra`` = (rows x m csc matrix ``S``, weight ``w``) adds ``w · SᵀS`` to the Gram matrix.
    With the Gram matrix ``G``, the penalty is ``Λ = λI + p/(1-p) · diag(G)`` (``p`` =
    ``dropout``; 0 gives EASE's ``λI``) and ``P = (G + Λ)⁻¹``. ``zero_diagonal``: ``B = I -
    P · diag(1 / diag(P))`` (EASE, EDLAE); otherwise ``B = I - P Λ`` (DLAE).

    ``max_diagonal`` ξ > 0 (with ``zero_diagonal``) relaxes the constraint ``diag(B) = 0``
    to ``diag(B) <= ξ`` (RDLAE): column ``j`` is DLAE's where DLAE's own diagonal ``1 -
    Λ_jj P_jj`` is at most ξ, and otherwise ``-(1 - ξ) P[:, j] / P_jj``. ξ = 0 is EDLAE
    and ξ = 1 gives DLAE's off-diagonal weights. The stored diagonal is zero in both cases:
    it only scores a user's own items, which EASE's zero diagonal keeps out of the way.

    Off the diagonal every variant is ``P`` scaled column by column
    (:func:`_column_factors`), which is what lets a fit derive another variant.
    """
    inverse, diag, penalty = _inverse(x, l2, extra, dropout)
    return _weights_from(inverse, diag, penalty, zero_diagonal, max_diagonal)


def _inverse(
    x: sp.csc_matrix, l2: float, extra: tuple[sp.csc_matrix, float] | None, dropout: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P, diag(P), penalty)``: P as a C-ordered float32 m x m array (see :func:`_closed_form`)."""
    m = int(x.shape[1])
    if m == 0:
        empty = np.zeros(0, dtype=np.float32)
        return np.zeros((0, 0), dtype=np.float32), empty, empty
    gram = np.zeros((m, m), dtype=np.float32, order="F")
    block = max(1, BLOCK_BYTES // (8 * m))
    for part, weight in ((x, 1.0), *(() if extra is None else (extra,))):
        part_t = part.T.tocsr()
        for start in range(0, m, block):
            stop = min(m, start + block)
            gram[:, start:stop] += np.float32(weight) * (part_t @ part[:, start:stop]).toarray()
    if dropout > 0:
        penalty = np.float32(l2) + np.float32(dropout / (1.0 - dropout)) * gram.diagonal()
    else:
        penalty = np.full(m, l2, dtype=np.float32)
    gram[np.diag_indices(m)] += penalty

    # Upper Cholesky factor, then the inverse from it, both overwriting ``gram``.
    factor, info = lapack.spotrf(gram, lower=0, overwrite_a=1, clean=0)
    if info > 0:
        raise ModelError(
            f"EASE: XᵀX + λI is not positive definite (λ={l2:g}); raise l2"
        )
    if info < 0:
        raise ModelError(f"EASE: Cholesky failed (LAPACK info={info})")
    inverse, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise ModelError(f"EASE: inversion failed (LAPACK info={info}); raise l2")
    # Only the upper triangle is valid: mirror it in row blocks, without an n x n temp.
    for start in range(0, m, block):
        stop = min(m, start + block)
        inverse[start:stop, :start] = inverse[:start, start:stop].T
        square = inverse[start:stop, start:stop]
        square[...] = np.triu(square) + np.triu(square, 1).T
    # ``inverse`` is symmetric, so its transpose view is the same matrix in C order.
    weights: np.ndarray = inverse.T
    diag = weights.diagonal().copy()
    if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
        raise ModelError(f"EASE: inverse has a non-positive diagonal (λ={l2:g}); raise l2")
    return weights, diag, penalty


def _weights_from(
    inverse: np.ndarray, diag: np.ndarray, penalty: np.ndarray,
    zero_diagonal: bool = True, max_diagonal: float = 0.0,
) -> np.ndarray:
    """B from P, in place (see :func:`_closed_form`)."""
    weights = inverse
    m = int(weights.shape[0])
    if m == 0:
        return weights
    if zero_diagonal and max_diagonal > 0:
        weights *= -_bound_scale(diag, penalty, max_diagonal)[None, :]
        weights[np.diag_indices(m)] = 0.0
    elif zero_diagonal:
        weights /= -diag[None, :]
        weights[np.diag_indices(m)] = 0.0
    else:
        weights *= -penalty[None, :]
        weights[np.diag_indices(m)] = 1.0 - diag * penalty
    if not weights.flags.c_contiguous:
        weights = np.ascontiguousarray(weights)
    return weights


def _column_factors(
    diag: np.ndarray, penalty: np.ndarray, zero_diagonal: bool = True, max_diagonal: float = 0.0,
) -> np.ndarray:
    """Per column ``j``, the factor ``c_j`` with ``B[i, j] = c_j · P[i, j]`` off the diagonal
    (float64; the same cases, in the same precision, as :func:`_weights_from`)."""
    if zero_diagonal and max_diagonal > 0:
        factors: np.ndarray = -_bound_scale(diag, penalty, max_diagonal).astype(np.float64)
    elif zero_diagonal:
        factors = -1.0 / diag.astype(np.float64)
    else:
        factors = -penalty.astype(np.float64)
    return factors


def _bound_scale(diag: np.ndarray, penalty: np.ndarray, max_diagonal: float) -> np.ndarray:
    """RDLAE's column scale (float32): DLAE's ``Λ_jj`` where DLAE's own diagonal ``1 -
    Λ_jj P_jj`` is at most ξ, else ``(1 - ξ) / P_jj`` (the constraint binds)."""
    free = 1.0 - diag * penalty
    scale: np.ndarray = np.where(free > max_diagonal, (1.0 - max_diagonal) / diag, penalty)
    return scale.astype(np.float32)


def _diagonal(
    diag: np.ndarray, penalty: np.ndarray, zero_diagonal: bool = True, max_diagonal: float = 0.0,
) -> np.ndarray:
    """The stored diagonal of B (as :func:`_weights_from` writes it)."""
    del max_diagonal
    out: np.ndarray = np.zeros_like(diag) if zero_diagonal else 1.0 - diag * penalty
    return out
