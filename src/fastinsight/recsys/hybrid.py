"""A weighted blend of other recommenders, with weights chosen on held-out data.

Each component's scores are standardised per user (z-score over the catalogue) so
models on different scales can be added; the blend weights are the point of a grid
over the simplex (step ``grid_step``) with the best validation NDCG@K on a random
per-user holdout. The components are then refitted on all the data (``refit``).

``weights_rule="one_se"`` applies the one-standard-error rule of model choice
(:func:`.evaluation.choice.choose`) to the grid: among the weightings whose paired
per-user shortfall to the best is within one standard error, the one that uses the
fewest components (then the higher score) wins, so a component is kept only when the
holdout can tell that it helps. ``"best"`` (the default) takes the best point.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Generic, Literal, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from fastinsight.errors import ModelError
from fastinsight.recsys.base import ModelParams, Recommender
from fastinsight.recsys.fit_reuse import fit_component
from fastinsight.recsys.ranking import IdsScores, top_n
from fastinsight.recsys.side import ContentFeatures, SideData

log = logging.getLogger(__name__)

COMPONENTS_DIR = "components"
NON_FINITE_Z = -10.0  # standardised score given to items a component cannot score
_CHUNK_CELLS = 2_000_000  # users x items standardised at once, per component


class ComponentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str
    params: dict[str, Any] = Field(default_factory=dict)


class BlendParams(ModelParams):
    """What every blend has: components, and the holdout its weights are chosen on."""

    components: tuple[ComponentSpec, ...] = (
        ComponentSpec(algorithm="als"),
        ComponentSpec(algorithm="two_tower"),
        ComponentSpec(algorithm="popularity"),
    )
    k: int = Field(default=10, ge=1)  # NDCG@k picks (or reports) the weights
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    min_positives: int = Field(default=5, ge=2)  # users with fewer are not held out
    max_validation_users: int = Field(default=2000, ge=1)
    refit: bool = True
    seed: int = 0


class HybridParams(BlendParams):
    grid_step: float = Field(default=0.1, gt=0, le=0.5)
    weights_rule: Literal["best", "one_se"] = Field(
        default="best", description="the grid's best weighting, or the one using the fewest "
        "components within one standard error of it (per-user, on the holdout)")


B = TypeVar("B", bound=BlendParams)
BLEND_ALGORITHMS = frozenset({"hybrid", "stacked"})


def simplex_grid(n: int, step: float) -> np.ndarray:
    """All weight vectors of ``n`` non-negative multiples of ``step`` that sum to 1."""
    parts = round(1.0 / step)
    if abs(parts * step - 1.0) > 1e-9:
        raise ValueError("grid_step must divide 1 (e.g. 0.1, 0.125, 0.25)")
    rows = [c for c in itertools.product(range(parts + 1), repeat=n) if sum(c) == parts]
    return np.asarray(rows, dtype=np.float64)[::-1] / parts


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-score over finite entries; non-finite entries become ``NON_FINITE_Z``."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    safe = np.where(finite, scores, 0.0)
    mean = safe.sum(axis=1, keepdims=True) / n
    var = (np.where(finite, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / n
    std = np.sqrt(var)
    z = (safe - mean) / np.where(std > 0, std, 1.0)
    return np.where(finite, z, NON_FINITE_Z).astype(np.float32)


class BlendRecommender(Recommender[B], Generic[B]):
    """Blend of registered models; ``weights`` (one per component) sum to 1.

    Subclasses choose the weights (:meth:`_learn_weights`) on a holdout of the fit data.
    :meth:`set_item_content` is passed on to the components that take content (the
    two-tower model), :meth:`set_interaction_times` to those that use times (EASE). No
    embeddings of its own: ``user_factors``/``item_factors`` are
    None, so serving scores it exactly rather than through an ANN index.
    """

    def __init__(self, params: B | None = None) -> None:
        super().__init__(params)
        self.components: dict[int, Recommender[Any]] = {}  # spec index -> model, weight > 0
        self.weights = np.zeros(0, dtype=np.float64)
        self.search: dict[str, Any] = {}
        self._side = SideData()
        self._saved: list[int] = []

    def set_item_content(self, item_features: np.ndarray, encoder: Any = None) -> Self:
        self._side = replace(self._side, content=ContentFeatures(item_features, encoder))
        return self

    def set_interaction_times(self, times: sp.csr_matrix | None) -> None:
        self._side = replace(self._side, times=times)

    # ---- training -----------------------------------------------------------------
    def _new_component(self, i: int) -> Recommender[Any]:
        from fastinsight.recsys import registry

        spec = self.params.components[i]
        model = registry.create(spec.algorithm, spec.params)
        self._side.give_to(model)
        return model

    def _fitted_components(
        self, which: Sequence[int], matrix: sp.csr_matrix,
    ) -> dict[int, Recommender[Any]]:
        """Components ``which`` fitted on ``matrix`` (or reused, see :mod:`.fit_reuse`)."""
        for i in which:
            if self.params.components[i].algorithm in BLEND_ALGORITHMS:
                raise ModelError(f"a {self.algorithm} blend cannot contain another hybrid or "
                                 "stacked blend")
        return {i: fit_component(self.params.components[i].algorithm,
                                 self.params.components[i].params, matrix, self._side,
                                 partial(self._new_component, i)) for i in which}

    def _fit(self, matrix: sp.csr_matrix) -> None:
        from fastinsight.recsys.evaluation.splits import holdout_matrix

        p = self.params
        if not p.components:
            raise ModelError("a hybrid needs at least one component")
        if not np.all(np.isfinite(matrix.data)):
            raise ModelError("the interaction matrix contains NaN or infinite weights")
        train, held = holdout_matrix(matrix, p.validation_fraction, p.min_positives, p.seed)
        users = np.flatnonzero(np.diff(held.indptr))
        if len(users) > p.max_validation_users:
            rng = np.random.default_rng([p.seed, 5])
            users = np.sort(rng.choice(users, p.max_validation_users, replace=False))
        models = self._fitted_components(range(len(p.components)), train)
        if len(users):
            self.weights, self.search = self._learn_weights(
                list(models.values()), train, held, users)
        else:
            log.warning("%s: no user has enough positives to validate; equal weights",
                        self.algorithm)
            self.weights = np.full(len(models), 1.0 / len(models))
            self.search = {"metric": f"ndcg@{p.k}", "validation_users": 0}
        used = [i for i, w in enumerate(self.weights) if w > 0]
        if p.refit:
            models = self._fitted_components(used, matrix)
        self.components = {i: models[i] for i in used}

    def _learn_weights(
        self, models: Sequence[Recommender[Any]], train: sp.csr_matrix, held: sp.csr_matrix,
        users: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Weights (one per component, summing to 1) and what the choice was based on."""
        raise NotImplementedError

    def _grid_ndcg(
        self, models: Sequence[Recommender[Any]], grid: np.ndarray, train: sp.csr_matrix,
        held: sp.csr_matrix, users: np.ndarray,
    ) -> np.ndarray:
        """Per-user NDCG@k (one row per weighting of ``grid``, one column per user)."""
        k = self.params.k
        per_user = np.zeros((len(grid), len(users)))
        chunk = max(1, _CHUNK_CELLS // max(self.n_items, 1))
        started = time.perf_counter()
        for start in range(0, len(users), chunk):
            rows = users[start: start + chunk]
            z = np.stack([standardise(m.score_users(rows)) for m in models])
            seen = train[rows].toarray() > 0
            relevant = held[rows].toarray() > 0
            for g, w in enumerate(grid):
                blend = np.tensordot(w.astype(np.float32), z, axes=1)
                blend[seen] = -np.inf  # after blending: 0 * -inf would be NaN
                per_user[g, start: start + len(rows)] = ndcg_at_k(blend, relevant, k)
        log.info("hybrid grid of %d weightings on %d users in %.1fs",
                 len(grid), len(users), time.perf_counter() - started)
        return per_user

    # ---- scoring ------------------------------------------------------------------
    def _active(self) -> list[tuple[np.float32, Recommender[Any]]]:
        if not self.components:
            raise ModelError("hybrid model is not fitted")
        return [(np.float32(self.weights[i]), m) for i, m in sorted(self.components.items())]

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        rows = sp.csr_matrix(history).shape[0]
        out = np.zeros((rows, self.n_items), dtype=np.float32)
        for w, model in self._active():
            out += w * standardise(model.score_history(history))
        return out

    def score_users(self, user_idx: Sequence[int] | np.ndarray) -> np.ndarray:
        out = np.zeros((len(np.atleast_1d(user_idx)), self.n_items), dtype=np.float32)
        for w, model in self._active():
            out += w * standardise(model.score_users(user_idx))
        return out

    def similar_items(self, item_idx: int, n: int) -> IdsScores:
        """Blend of the components' item neighbours.

        Item-score priors (popularity, trending) are left out unless nothing else has
        weight: their weight was chosen for user recommendations, and "popular
        items" are not neighbours of an item.
        """
        from fastinsight.recsys.popularity import ItemScoreRecommender

        active = self._active()
        related = [(w, m) for w, m in active if not isinstance(m, ItemScoreRecommender)]
        blended = np.zeros(self.n_items, dtype=np.float32)
        for w, model in related or active:
            ids, scores = model.similar_items(item_idx, self.n_items)
            full = np.full(self.n_items, -np.inf)
            full[ids] = scores
            blended += w * standardise(full[None, :])[0]
        return top_n(blended, n, np.asarray([item_idx]))

    # ---- persistence --------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": np.asarray(self.weights, dtype=np.float64)}

    def _state_meta(self) -> dict[str, Any]:
        return {
            "weights": {f"{i}_{s.algorithm}": float(w) for i, (s, w) in
                        enumerate(zip(self.params.components, self.weights, strict=True))},
            "saved_components": sorted(self.components),
            "search": self.search,
        }

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.weights = arrays["weights"].astype(np.float64, copy=False)
        self.search = meta.get("search", {})
        self._saved = [int(i) for i in meta.get("saved_components", [])]

    def _component_dir(self, directory: Path, i: int) -> Path:
        return directory / COMPONENTS_DIR / f"{i}_{self.params.components[i].algorithm}"

    def save(self, directory: Path) -> None:
        super().save(directory)
        for i, model in self.components.items():
            model.save(self._component_dir(directory, i))

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = False) -> Self:
        from fastinsight.recsys import registry

        model = super().load(directory, mmap=mmap)
        model.components = {
            i: registry.load_model(model._component_dir(directory, i), mmap=mmap)
            for i in model._saved
        }
        return model


class HybridRecommender(BlendRecommender[HybridParams]):
    """The blend whose weights are the best point of a grid over the simplex."""

    algorithm = "hybrid"
    params_class = HybridParams

    def _learn_weights(
        self, models: Sequence[Recommender[Any]], train: sp.csr_matrix, held: sp.csr_matrix,
        users: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        grid = simplex_grid(len(models), p.grid_step)
        per_user = self._grid_ndcg(models, grid, train, held, users)
        ndcg = per_user.mean(axis=1)
        best = int(np.argmax(ndcg))  # first best in grid order on ties
        top = best
        if p.weights_rule == "one_se":
            best = _fewest_within_one_se(grid, per_user)
        singles = {
            f"{c}_{spec.algorithm}": float(ndcg[row])
            for c, (spec, row) in enumerate(zip(p.components, _single_rows(grid), strict=True))
            if row >= 0
        }
        log.info("hybrid weights %s ndcg@%d=%.4f (single: %s)",
                 np.round(grid[best], 3).tolist(), p.k, ndcg[best], singles)
        rule = {} if p.weights_rule == "best" else {
            "weights_rule": p.weights_rule, "top": grid[top].tolist(), "top_ndcg": float(ndcg[top])}
        return grid[best], {
            "metric": f"ndcg@{p.k}", "validation_users": len(users),
            "best": float(ndcg[best]), "single_component": singles, "grid_points": len(grid),
            **rule,
        }


def _fewest_within_one_se(grid: np.ndarray, per_user: np.ndarray) -> int:
    """The grid row the one-standard-error rule serves (module doc)."""
    from fastinsight.recsys.evaluation.choice import Contender, choose

    contenders = [Contender(str(g), (per_user[g],), int(np.count_nonzero(w)))
                  for g, w in enumerate(grid)]
    return int(choose(contenders).winner)


def ndcg_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-row binary NDCG@k of the top ``k`` scores; ``relevant`` is a boolean mask.

    Ties are broken by the lower item index.

    Same definition as :func:`fastinsight.recsys.evaluation.metrics.ranking_metrics`:
    DCG over the top k divided by the ideal DCG of ``min(k, #relevant)`` hits.
    """
    n_rows, n_items = scores.shape
    k_eff = min(k, n_items)
    kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1: k_eff]
    above = scores > kth
    tied = scores == kth
    need = k_eff - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))
    top = np.nonzero(chosen)[1].reshape(n_rows, k_eff)  # ascending index within a row
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    ranked = np.take_along_axis(top, order, axis=1)
    finite = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
    hits = np.take_along_axis(relevant, ranked, axis=1) & finite
    discounts = 1.0 / np.log2(np.arange(2, k_eff + 2))
    n_rel = np.minimum(relevant.sum(axis=1), k_eff)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[n_rel]
    dcg = (hits * discounts).sum(axis=1)
    out: np.ndarray = np.divide(dcg, ideal, out=np.zeros(n_rows), where=ideal > 0)
    return out


def _single_rows(grid: np.ndarray) -> list[int]:
    """For each component, the grid row that gives it all the weight (-1 if none)."""
    out = []
    for c in range(grid.shape[1]):
        rows = np.flatnonzero(np.isclose(grid[:, c], 1.0))
        out.append(int(rows[0]) if len(rows) else -1)
    return out
