"""Top-K ranking over the full catalogue and the metrics computed from it.

Conventions (see ``docs/evaluation.md``):

* Rankings are over every catalogue item except the user's training items; ties in
  score are broken by item index, ascending (deterministic, same as ``top_n``).
* A recommendation list shorter than K (few finite scores) is padded with ``-1``,
  which never counts as a hit.
* Relevance is binary: an item is relevant when it is in the user's held-out part.
  Users without relevant held-out items are not evaluated (the caller drops them).

Per user, with ``hits_j`` = 1 when the item at rank ``j`` (1-based) is relevant and
``R`` = number of relevant items:

* precision@K = sum_{j<=K} hits_j / K
* recall@K    = sum_{j<=K} hits_j / min(K, R)
* ndcg@K      = sum_{j<=K} hits_j / log2(j+1)  divided by  sum_{j<=min(K,R)} 1 / log2(j+1)
* mrr@K       = 1 / (rank of the first hit), 0 without a hit in the top K
* hit@K       = 1 when any of the top K is relevant

Over all recommended lists (beyond accuracy, from training popularity ``pop(i)`` =
number of training users with item ``i``, over ``U`` training users):

* coverage@K = distinct items recommended in any top K / catalogue size
* novelty@K  = mean over users of mean over their top K of -log2((pop(i)+1)/(U+1))
* arp@K      = mean over users of mean over their top K of pop(i) / U
  (average recommendation popularity as the fraction of training users who have the item)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def top_k_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the ``k`` best finite scores (rows x k), best first.

    Ties are broken by column index, ascending; rows with fewer than ``k`` finite
    scores are padded with -1. Linear time per row (no full sort).
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    if scores.ndim != 2:
        raise ValueError("scores must be 2-D (users x items)")
    scores[np.isnan(scores)] = -np.inf
    n_rows, n_items = scores.shape
    k_eff = min(k, n_items)
    out = np.full((n_rows, k), -1, dtype=np.int64)
    if n_rows == 0 or k_eff == 0:
        return out
    # Value of the k-th best score per row; everything above it is in, and among the
    # scores equal to it the lowest indices fill the remaining places.
    kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1 : k_eff]
    above = scores > kth
    tied = scores == kth
    need = k_eff - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))
    cols = np.nonzero(chosen)[1].reshape(n_rows, k_eff)
    chosen_scores = np.take_along_axis(scores, cols, axis=1)
    # cols are ascending within a row, so a stable sort on -score keeps index order on ties.
    order = np.argsort(-chosen_scores, axis=1, kind="stable")
    ranked = np.take_along_axis(cols, order, axis=1)
    ranked_scores = np.take_along_axis(chosen_scores, order, axis=1)
    ranked[~np.isfinite(ranked_scores)] = -1
    out[:, :k_eff] = ranked
    return out


def exclude_seen(scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Set the scores of ``seen`` entries (rows aligned with ``scores``) to -inf in place."""
    coo = sp.coo_matrix(seen)
    scores[coo.row, coo.col] = -np.inf
    return scores


def hit_matrix(recs: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean (users x K): whether ``recs[u, j]`` is in row ``u`` of ``relevant``."""
    rel = sp.csr_matrix(relevant, copy=True)
    rel.sum_duplicates()
    rel.sort_indices()
    n_cols = max(int(rel.shape[1]), int(recs.max(initial=-1)) + 1, 1)
    rel_rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    rel_keys = rel_rows * n_cols + rel.indices.astype(np.int64)  # sorted: rows, then columns
    keys = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_cols + recs
    if rel_keys.size == 0:
        return np.zeros(recs.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(rel_keys, keys), rel_keys.size - 1)
    found: np.ndarray = (rel_keys[pos] == keys) & (recs >= 0)
    return found


def ranking_metrics(
    recs: np.ndarray, relevant: sp.csr_matrix, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user arrays ``{"ndcg@10": ..., ...}`` for users aligned with ``recs`` rows.

    Every row of ``relevant`` must have at least one relevant item.
    """
    n_relevant = np.diff(sp.csr_matrix(relevant).indptr).astype(np.float64)
    if np.any(n_relevant == 0):
        raise ValueError("every evaluated user needs at least one relevant item")
    max_k = max(ks)
    if recs.shape[1] < max_k:
        raise ValueError(f"need {max_k} recommendations per user, got {recs.shape[1]}")
    hits = hit_matrix(recs[:, :max_k], relevant).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, max_k + 2))
    ideal_cum = np.cumsum(discounts)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(axis=1)
        ideal = ideal_cum[np.minimum(n_relevant, k).astype(np.int64) - 1]
        first = np.where(h.any(axis=1), np.argmax(h, axis=1) + 1, 0)
        out[f"precision@{k}"] = n_hits / k
        out[f"recall@{k}"] = n_hits / np.minimum(n_relevant, k)
        out[f"ndcg@{k}"] = (h * discounts[:k]).sum(axis=1) / ideal
        out[f"mrr@{k}"] = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
        out[f"hit@{k}"] = (n_hits > 0).astype(np.float64)
    return out


def catalogue_metrics(
    recs: np.ndarray, item_popularity: np.ndarray, n_train_users: int, ks: Sequence[int]
) -> dict[str, float]:
    """Coverage, novelty and popularity bias of the recommended lists."""
    n_items = item_popularity.size
    pop = np.asarray(item_popularity, dtype=np.float64)
    n_u = max(int(n_train_users), 1)
    info = -np.log2((pop + 1.0) / (n_u + 1.0))
    share = pop / n_u
    out: dict[str, float] = {}
    for k in ks:
        top = recs[:, :k]
        valid = top >= 0
        safe = np.where(valid, top, 0)
        per_user_n = valid.sum(axis=1)
        has = per_user_n > 0
        distinct = np.unique(top[valid])
        out[f"coverage@{k}"] = float(distinct.size / n_items) if n_items else 0.0
        if has.any():
            nov = (info[safe] * valid).sum(axis=1)[has] / per_user_n[has]
            arp = (share[safe] * valid).sum(axis=1)[has] / per_user_n[has]
            out[f"novelty@{k}"] = float(nov.mean())
            out[f"arp@{k}"] = float(arp.mean())
        else:
            out[f"novelty@{k}"] = 0.0
            out[f"arp@{k}"] = 0.0
    return out


def item_popularity(train: sp.csr_matrix) -> np.ndarray:
    """Number of users with a positive training entry for each item."""
    binary = sp.csr_matrix(train, copy=True)
    binary.data = (binary.data > 0).astype(np.float64)
    binary.eliminate_zeros()
    return np.asarray(binary.sum(axis=0)).ravel()


def mean_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% interval."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return 0.0, 0.0
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(values.size))


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean of per-user ``a - b``, its 95% bootstrap interval, and P(resampled diff <= 0)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return {"mean_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_not_better": 1.0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_resamples, diff.size))
    means = diff[idx].mean(axis=1)
    return {
        "mean_diff": float(diff.mean()),
        "ci_low": float(np.quantile(means, 0.025)),
        "ci_high": float(np.quantile(means, 0.975)),
        "p_not_better": float(np.mean(means <= 0)),
    }
