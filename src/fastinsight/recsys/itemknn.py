"""Item-based nearest neighbours over the item-item co-occurrence.

Similarity is the cosine between item columns of the users x items matrix, optionally
after BM25 weighting, with an optional shrink term in the denominator
(``dot / (|a| |b| + shrink)``) that discounts pairs seen together only a few times.
Only the ``k`` best neighbours of each item are kept, so the model is a sparse
n_items x n_items matrix ``S`` and a user is scored as ``history @ S``.

**Which side keeps its k.** ``selection="source"`` keeps, for each item a user has,
its ``k`` most similar items (row ``i`` of ``S`` holds ``i``'s neighbours): every
history item votes for at most ``k`` targets. ``selection="target"`` is the usual
item-kNN: each candidate item keeps its ``k`` most similar items as the only ones that
may vote for it (column ``j`` holds ``j``'s neighbours). The similarity is symmetric,
so the target-side matrix is the transpose of the source-side one; the stored
neighbour lists are the same and only scoring differs: a fitted model of one selection
hands its lists to a model of the other (:meth:`ItemKNNRecommender.derive_from`), so a
search over both computes the similarities once. Neighbour lists are kept in a total
order (score, then lower item index), so a fit with a smaller ``k`` is the first ``k``
of a fit with a larger one: a search that visits ``k`` from the largest down (the
default grid lists it so) computes the similarities once per weighting.

The Gram matrix is computed in blocks of source items (rows) of bounded size, so
memory stays around ``n_items * block`` floats whatever the catalogue size.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fastinsight.errors import ModelError
from fastinsight.recsys.base import ModelParams, Recommender
from fastinsight.recsys.matrix import require_finite
from fastinsight.recsys.ranking import IdsScores

log = logging.getLogger(__name__)

BLOCK_BYTES = 64 * 2**20


class ItemKNNParams(ModelParams):
    k: int = Field(default=100, ge=1, description="neighbours kept per item")
    weighting: Literal["cosine", "bm25"] = "cosine"
    shrink: float = Field(default=0.0, ge=0)
    bm25_k1: float = Field(default=1.2, gt=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    selection: Literal["source", "target"] = Field(
        default="source", description="keep the k neighbours of each source (history) item, "
        "or of each target (candidate) item, as the usual item-kNN does",
    )


class ItemKNNRecommender(Recommender[ItemKNNParams]):
    algorithm = "itemknn"
    params_class = ItemKNNParams
    derived_params: ClassVar[tuple[str, ...]] = ("k", "selection")

    def __init__(self, params: ItemKNNParams | None = None) -> None:
        super().__init__(params)
        self._neighbours = np.zeros((0, 0), dtype=np.int32)
        self._scores = np.zeros((0, 0), dtype=np.float32)
        self._similarity: sp.csr_matrix | None = None

    def _fit(self, matrix: sp.csr_matrix) -> None:
        require_finite(matrix)
        x = matrix.astype(np.float32)
        if self.params.weighting == "bm25":
            x = bm25_weight(x, self.params.bm25_k1, self.params.bm25_b)
        self._neighbours, self._scores = top_k_cosine(x, self.params.k, self.params.shrink)
        self._similarity = None

    def _derive(self, previous: Recommender[Any]) -> bool:
        """The neighbour lists of a fit with as many or more neighbours, cut to ``k``
        (:func:`top_k_cosine` keeps them in a total order, so the cut is what a fit with
        this ``k`` keeps), scored from either side."""
        if not isinstance(previous, ItemKNNRecommender) or not previous._neighbours.size:
            return False
        n_items, kept = previous._neighbours.shape
        k = min(self.params.k, n_items - 1)
        if k > kept:
            return False
        if k == kept:
            self._neighbours, self._scores = previous._neighbours, previous._scores
        else:
            self._neighbours = np.ascontiguousarray(previous._neighbours[:, :k])
            self._scores = np.ascontiguousarray(previous._scores[:, :k])
        previous._neighbours = np.zeros((0, 0), dtype=np.int32)
        previous._scores = np.zeros((0, 0), dtype=np.float32)
        previous._similarity, self._similarity = None, None
        return True

    @classmethod
    def data_limits(cls, n_users: int, n_items: int) -> dict[str, int]:
        return {"k": max(1, n_items - 1)}  # every other item: a larger k keeps the same

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices int32, scores float32), each n_items x k, best first.

        Rows with fewer than k positive similarities are padded with index -1, score 0.
        """
        return self._neighbours, self._scores

    def item_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        return self.neighbours()

    def similarity(self) -> sp.csr_matrix:
        """The scoring matrix, n_items x n_items, row = source (history) item, column =
        target: each row holds that item's kept neighbours (``selection="source"``) or
        each column does (``"target"``)."""
        if self._similarity is None:
            n, k = self._neighbours.shape
            valid = self._neighbours >= 0
            rows = np.repeat(np.arange(n), k).reshape(n, k)[valid]
            kept = sp.csr_matrix(
                (self._scores[valid], (rows, self._neighbours[valid])),
                shape=(self.n_items, self.n_items),
                dtype=np.float32,
            )
            self._similarity = kept.T.tocsr() if self.params.selection == "target" else kept
        return self._similarity

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        self._require_fitted()
        row = sp.csr_matrix(history, dtype=np.float32)
        scores = row @ self.similarity()
        return np.asarray(scores.toarray(), dtype=np.float32)

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        self._require_fitted()
        idx = self._neighbours[item_idx]
        keep = idx >= 0
        idx, scores = idx[keep][:n], self._scores[item_idx][keep][:n]
        return idx.astype(np.int64), scores.astype(np.float32)

    def _require_fitted(self) -> None:
        if self._neighbours.shape[0] != self.n_items or self.n_items == 0:
            raise ModelError("itemknn model is not fitted")

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"neighbours": self._neighbours, "scores": self._scores}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._neighbours = arrays["neighbours"].astype(np.int32, copy=False)
        self._scores = arrays["scores"].astype(np.float32, copy=False)
        self._similarity = None


def bm25_weight(matrix: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """BM25-weight a users x items matrix for item-item similarity.

    Items play the documents and users the terms: a user who interacted with many
    items says little about any pair of them (idf ``log(1 + n_items / degree)``), a
    repeated interaction saturates (``k1``), and long item columns (very popular
    items) are length-normalised (``b``).
    """
    x = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    n_items = x.shape[1]
    degree = np.diff(x.indptr).astype(np.float64)
    idf = np.log1p(n_items / np.maximum(degree, 1.0))
    item_len = np.bincount(x.indices, minlength=n_items).astype(np.float64)
    avg_len = float(item_len[item_len > 0].mean()) if np.any(item_len > 0) else 1.0
    norm = k1 * (1.0 - b + b * item_len / avg_len)
    tf = x.data.astype(np.float64)
    user_of_entry = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    weighted = idf[user_of_entry] * tf * (k1 + 1.0) / (tf + norm[x.indices])
    x.data = weighted.astype(np.float32)
    return x


def top_k_cosine(
    x: sp.csr_matrix, k: int, shrink: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """For each item (column of ``x``), its ``k`` most cosine-similar other items.

    Returns (indices int32, scores float32), n_items x min(k, n_items - 1), padded with
    -1 / 0 where an item has fewer than that many positive similarities.
    """
    n_items = x.shape[1]
    k = max(0, min(k, n_items - 1))
    neighbours = np.full((n_items, k), -1, dtype=np.int32)
    scores = np.zeros((n_items, k), dtype=np.float32)
    if k == 0:
        return neighbours, scores
    xc = x.tocsc()
    xt = xc.T.tocsr()
    norms = np.sqrt(np.asarray(xc.multiply(xc).sum(axis=0), dtype=np.float64).reshape(-1))
    block = max(1, min(n_items, BLOCK_BYTES // (8 * n_items)))
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        # b x n_items, one C-ordered row per source item (row-wise partitions are fast)
        gram = (xt[start:stop] @ xc).toarray().astype(np.float64)
        denom = norms[start:stop, None] * norms[None, :] + shrink
        sim = np.divide(gram, denom, out=np.zeros_like(gram), where=denom > 0)
        rows = np.arange(stop - start)
        sim[rows, start + rows] = -np.inf  # never your own neighbour
        best, best_scores = _best_k(sim, k)
        neighbours[start:stop] = best
        scores[start:stop] = best_scores
    log.debug("itemknn kept %d neighbour slots for %d items", int((neighbours >= 0).sum()),
              n_items)
    return neighbours, scores


def _best_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best positive columns, best first, ties to the lower column.

    Ties are broken over the whole row, not only among the columns a partition happened
    to pick, so the best ``k`` are the first ``k`` of the best ``k' > k``: a model
    with a smaller ``k`` is a truncation of one with a larger (:meth:`_derive`).
    Missing places (fewer than ``k`` positive columns) are -1 with score 0.
    """
    rows_n = sim.shape[0]
    # Each row's k-th best value. (An indirect partition of the negated row measured
    # several times faster than a direct one on rows that are mostly zeros.)
    part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(sim, part, axis=1).min(axis=1)
    # Every column scoring at least the k-th best (ties included) and above 0.
    floor = np.maximum(kth, np.finfo(sim.dtype).tiny)
    rows, cols = np.nonzero(sim >= floor[:, None])
    values = sim[rows, cols]
    order = np.lexsort((cols, -values, rows))  # per row: best first, then lower column
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.searchsorted(rows, np.arange(rows_n))
    place = np.arange(rows.size) - starts[rows]
    keep = place < k
    best = np.full((rows_n, k), -1, dtype=np.int32)
    best_scores = np.zeros((rows_n, k), dtype=np.float32)
    best[rows[keep], place[keep]] = cols[keep]
    best_scores[rows[keep], place[keep]] = values[keep]
    return best, best_scores
