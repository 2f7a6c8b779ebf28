"""The one ranking rule: best first, ties to the lower index, left-out and non-finite
items never returned, rows padded with id -1 / score -inf.

:func:`top_n` ranks one score vector; the helpers shape the per-row exclusions and
padded rows of :meth:`fastinsight.recsys.base.Recommender.recommend_many`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from fastinsight.errors import ModelError

IdsScores = tuple[np.ndarray, np.ndarray]


def top_n(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> IdsScores:
    """Indices and scores of the ``n`` best entries of a 1-D score vector, best first.

    Excluded indices and non-finite scores are never returned.
    """
    scores = np.asarray(scores, dtype=np.float32).copy()
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    valid = np.isfinite(scores)
    n = int(min(n, int(valid.sum())))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if n < scores.size:
        part = np.argpartition(-scores, n - 1)[:n]
        # Items tied with the n-th best may sit just outside the partition: add them back,
        # so the lowest index wins a tie whatever the partition picked.
        part = np.flatnonzero(scores >= scores[part].min())
    else:
        part = np.arange(scores.size)
    part = part[np.isfinite(scores[part])]
    # Stable order: score descending, then index ascending, so ties are deterministic.
    order = np.lexsort((part, -scores[part]))
    best = part[order][:n]
    return best.astype(np.int64), scores[best]


def csr_rows(matrix: sp.csr_matrix, n_items: int, name: str) -> sp.csr_matrix:
    """``matrix`` as float32 CSR with ``n_items`` columns, without a copy when it already is."""
    rows = matrix if sp.issparse(matrix) and matrix.format == "csr" else sp.csr_matrix(matrix)
    if rows.dtype != np.float32:
        rows = rows.astype(np.float32)
    if rows.shape[1] != n_items:
        if n_items == 0:
            raise ModelError("model is not fitted")
        raise ValueError(f"{name} has shape {rows.shape}; the model has {n_items} items")
    return rows


def row_items(matrix: sp.csr_matrix, r: int) -> np.ndarray:
    return np.asarray(matrix.indices[matrix.indptr[r]:matrix.indptr[r + 1]], dtype=np.int64)


def left_out(seen: sp.csr_matrix | None, extra: sp.csr_matrix | None) -> list[np.ndarray] | None:
    """One sorted array of left-out items per row, or None when nothing is left out."""
    parts = [m for m in (seen, extra) if m is not None and m.nnz]
    if not parts:
        return None
    n_rows = parts[0].shape[0]
    if len(parts) == 1:
        return [np.unique(row_items(parts[0], r)) for r in range(n_rows)]
    return [np.union1d(row_items(parts[0], r), row_items(parts[1], r)) for r in range(n_rows)]


def items_in_order(items: Sequence[int] | np.ndarray | None, n_items: int) -> np.ndarray:
    """``items`` as int64 without repeats, first occurrence first."""
    if items is None or not len(items):
        return np.empty(0, dtype=np.int64)
    arr = np.asarray(items, dtype=np.int64).reshape(-1)
    if arr.min() < 0 or arr.max() >= n_items:
        raise ValueError(f"include names items outside 0..{n_items - 1}")
    _, first = np.unique(arr, return_index=True)
    return arr[np.sort(first)]


def missing_items(also: np.ndarray, listed: np.ndarray, banned: np.ndarray | None) -> np.ndarray:
    """The items of ``also`` neither in ``listed`` nor in ``banned``, in order."""
    skip = set(listed.tolist())
    if banned is not None:
        skip.update(banned.tolist())
    return np.fromiter((i for i in also.tolist() if i not in skip), dtype=np.int64)


def append_items(ids: np.ndarray, scores: np.ndarray, at: int, cols: np.ndarray,
            values: np.ndarray) -> None:
    """Write ``cols`` (with finite ``values``) into a padded row from position ``at``."""
    keep = np.isfinite(values)
    count = int(np.count_nonzero(keep))
    ids[at:at + count] = cols[keep]
    scores[at:at + count] = values[keep]
