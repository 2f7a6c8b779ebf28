"""A stacked blend: component weights learned on held-out data by least squares, not a grid.

Like :class:`~fastinsight.recsys.hybrid.HybridRecommender`, the components are fitted on
a random per-user holdout of the fit data and their scores standardised per user. For
each held-out user, the candidates are the union of every component's ``candidates``
best unseen items; each (user, candidate) is one row whose features are the
components' standardised scores and whose label is 1 when the item was held out.
Features and labels are centred per user (only differences within a user's list matter
for ranking), and the weights are the non-negative least-squares fit of the labels
(:func:`stack_weights`), normalised to sum to 1. Any number of components costs one
fit, so more of them can be blended than a grid allows. The squared loss is only a
proxy for the ranking, so the learned weights are kept only when their NDCG@k on the
same holdout beats every component alone; otherwise the best component gets all the
weight (recorded as ``search.kept``). The components are then
refitted on all the data (``refit``); scoring is the weighted sum, as in the hybrid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.optimize import nnls

from fastinsight.recsys.base import Recommender
from fastinsight.recsys.hybrid import (
    _CHUNK_CELLS,
    BlendParams,
    BlendRecommender,
    ComponentSpec,
    standardise,
)

log = logging.getLogger(__name__)


class StackedParams(BlendParams):
    components: tuple[ComponentSpec, ...] = (
        ComponentSpec(algorithm="ease"),
        ComponentSpec(algorithm="itemknn", params={"selection": "target"}),
        ComponentSpec(algorithm="als"),
    )
    candidates: int = Field(default=100, ge=1, description="best items per component and user "
                            "that become training rows of the stack")


def stack_weights(features: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> np.ndarray:
    """Non-negative least squares of ``labels`` on ``features``, centred per group.

    ``features[g]`` is (rows x components) and ``labels[g]`` (rows,) for one user ``g``.
    Returns weights summing to 1 (equal weights when the fit gives all zeros).
    """
    xs, ys = [], []
    for x, y in zip(features, labels, strict=True):
        if len(y) < 2 or np.all(y == y[0]):
            continue  # a user with no contrast says nothing about the ranking
        xs.append(x - x.mean(axis=0, keepdims=True))
        ys.append(y - y.mean())
    n = features[0].shape[1] if len(features) else 0
    if not xs:
        return np.full(n, 1.0 / max(n, 1))
    a = np.vstack(xs).astype(np.float64)
    b = np.concatenate(ys).astype(np.float64)
    # Solve on the normal equations' Cholesky factor: small (components x components).
    gram = a.T @ a + 1e-9 * np.eye(a.shape[1])
    upper = np.linalg.cholesky(gram).T
    weights, _ = nnls(upper, np.linalg.solve(upper.T, a.T @ b))
    total = float(weights.sum())
    return weights / total if total > 0 else np.full(n, 1.0 / n)


class StackedRecommender(BlendRecommender[StackedParams]):
    algorithm = "stacked"
    params_class = StackedParams

    def _learn_weights(
        self, models: Sequence[Recommender[Any]], train: sp.csr_matrix, held: sp.csr_matrix,
        users: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        features: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        chunk = max(1, _CHUNK_CELLS // max(self.n_items, 1) // max(len(models), 1))
        n_cand = min(p.candidates, self.n_items)
        for start in range(0, len(users), chunk):
            rows = users[start: start + chunk]
            z = np.stack([standardise(m.score_users(rows)) for m in models])
            seen = train[rows].toarray() > 0
            relevant = held[rows].toarray() > 0
            z[:, seen] = -np.inf
            for r in range(len(rows)):
                tops = [np.argpartition(-z[c, r], n_cand - 1)[:n_cand] for c in range(len(models))]
                cand = np.unique(np.concatenate(tops))
                cand = cand[~seen[r, cand]]
                features.append(z[:, r, cand].T)
                labels.append(relevant[r, cand].astype(np.float64))
        learned = stack_weights(features, labels)
        # What the learned weights and each component alone reach on the same holdout.
        check = np.vstack([learned, np.eye(len(models))])
        ndcg = self._grid_ndcg(models, check, train, held, users).mean(axis=1)
        singles = {f"{c}_{spec.algorithm}": float(ndcg[c + 1])
                   for c, spec in enumerate(p.components)}
        best = int(np.argmax(ndcg))  # the learned weights win ties
        log.info("stacked weights %s ndcg@%d=%.4f (single: %s)%s",
                 np.round(learned, 3).tolist(), p.k, ndcg[0], singles,
                 "" if best == 0 else "; a single component is better, kept instead")
        return check[best], {
            "metric": f"ndcg@{p.k}", "method": "nnls", "validation_users": len(users),
            "rows": int(sum(len(y) for y in labels)), "learned": learned.tolist(),
            "learned_ndcg": float(ndcg[0]), "best": float(ndcg[best]),
            "kept": "learned" if best == 0 else f"single {list(singles)[best - 1]}",
            "single_component": singles,
        }
