"""Fit, rank and score models on a split: the core of the offline evaluation.

For every candidate: (optionally) search its hyper-parameters on train -> validation,
refit the chosen configuration on train + validation, and report it on test. All
models, ours and the external references, see the same matrices and are scored by
the same code over the full catalogue.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from fastinsight.recsys.base import Recommender
from fastinsight.recsys.evaluation.data import EvalDataset
from fastinsight.recsys.evaluation.external import ImplicitRanker
from fastinsight.recsys.evaluation.metrics import (
    catalogue_metrics,
    item_popularity,
    mean_ci95,
    ranking_metrics,
)
from fastinsight.recsys.evaluation.search import SearchMode, SearchResult, run_search
from fastinsight.recsys.evaluation.spaces import SESSION_KEYS, STAGED, default_space
from fastinsight.recsys.sessions import inert_sessions_dropped
from fastinsight.recsys.side import ContentFeatures, SideData

log = logging.getLogger(__name__)

EXTERNAL_ALGORITHMS: tuple[str, ...] = tuple(ImplicitRanker.kinds)
ACTIVITY_EDGES: tuple[int, ...] = (0, 10, 20, 50, 100, 200)


class Ranker(Protocol):
    def fit(self, matrix: sp.csr_matrix) -> float: ...

    def top_k(self, users: np.ndarray, k: int) -> np.ndarray: ...


class RecommenderRanker:
    """Our models through the :class:`~fastinsight.recsys.base.Recommender` contract."""

    def __init__(self, model: Recommender[Any], side: SideData | None = None) -> None:
        self.model = model
        self.side = side
        self.matrix: sp.csr_matrix | None = None

    def fit(self, matrix: sp.csr_matrix) -> float:
        if self.side is not None:
            self.side.give_to(self.model)
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        started = time.perf_counter()
        self.model.fit(self.matrix)
        return time.perf_counter() - started

    def derive(self, previous: Ranker | None, matrix: sp.csr_matrix) -> float | None:
        """Fit by adapting ``previous`` (the ranker of the trial before, fitted on the same
        matrix and side data) when the model can (:meth:`.base.Recommender.derive_from`):
        the seconds it took, or None (not fitted: call :meth:`fit`)."""
        if not isinstance(previous, RecommenderRanker) or not self.model.derived_params:
            return None
        if self.side is not None:
            self.side.give_to(self.model)
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        started = time.perf_counter()
        if not self.model.derive_from(previous.model, matrix):
            return None
        previous.matrix = None
        self.matrix = matrix
        return time.perf_counter() - started

    def info(self) -> dict[str, Any]:
        """What the fitted model chose by itself that a reader needs (hybrid weights)."""
        meta = self.model._state_meta()
        return {k: meta[k] for k in ("weights",) if k in meta}

    def top_k(self, users: np.ndarray, k: int) -> np.ndarray:
        """The model's own ranking (``recommend_many``) of the trained users, seen items left out."""
        if self.matrix is None:
            raise RuntimeError("fit first")
        users = np.asarray(users, dtype=np.int64)
        ids, _ = self.model.recommend_many(self.matrix[users], k, users=users)
        return np.asarray(ids, dtype=np.int64)


@dataclass(frozen=True)
class Candidate:
    """One model to evaluate: ``params`` are fixed, ``space`` is searched (None: default)."""

    algorithm: str
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    space: Mapping[str, Sequence[Any]] | None = None
    mode: SearchMode | None = None  # None: the run's mode
    try_defaults: bool = True  # first trial = the model's defaults

    @property
    def label(self) -> str:
        return self.name or self.algorithm

    @property
    def kind(self) -> str:
        return "external" if self.algorithm in EXTERNAL_ALGORITHMS else "ours"


def make_ranker(
    algorithm: str, params: Mapping[str, Any], side: SideData | None = None
) -> Ranker:
    if algorithm in EXTERNAL_ALGORITHMS:
        return ImplicitRanker(algorithm, dict(params), side)
    from fastinsight.recsys import registry

    return RecommenderRanker(registry.create(algorithm, dict(params)), side)


def accepts_value(
    algorithm: str, fixed: Mapping[str, Any], shape: tuple[int, int] | None = None,
) -> Callable[[str, Any], bool]:
    """``accepts(name, value)``: whether ``algorithm`` takes ``value`` for ``name`` (with
    ``fixed``) and, given the training matrix's ``shape``, whether the value still
    changes the model there (:meth:`.base.Recommender.data_limits`); a search widens a
    grid only to values the model accepts."""
    limits: dict[str, int] = {}
    if algorithm in EXTERNAL_ALGORITHMS:
        params_class = ImplicitRanker.kinds[algorithm]
    else:
        from fastinsight.recsys import registry

        model_class = registry.get_algorithm(algorithm)
        params_class = model_class.params_class
        if shape is not None:
            limits = model_class.data_limits(*shape)

    def accepts(name: str, value: Any) -> bool:
        if name in limits and value > limits[name]:
            return False
        try:
            params_class.model_validate({**fixed, name: value})
        except ValueError:
            return False
        return True

    return accepts


def without_times(space: Mapping[str, Sequence[Any]], side: SideData | None) -> dict[str, Any]:
    """``space`` without the session parameters when no interaction times are given:
    they would change nothing but the number of trials."""
    if side is not None and side.times is not None:
        return dict(space)
    return {k: v for k, v in space.items() if k not in SESSION_KEYS}


def derived_params(algorithm: str) -> tuple[str, ...]:
    """Parameters ``algorithm`` can change on a fitted model without refitting."""
    if algorithm in EXTERNAL_ALGORITHMS:
        return ImplicitRanker.derivable.get(algorithm, ())
    from fastinsight.recsys import registry

    return tuple(registry.get_algorithm(algorithm).derived_params)


def default_params(algorithm: str) -> dict[str, Any]:
    if algorithm in EXTERNAL_ALGORITHMS:
        return ImplicitRanker.kinds[algorithm]().model_dump(mode="json")
    from fastinsight.recsys import registry

    return registry.get_algorithm(algorithm).params_class().model_dump(mode="json")


@dataclass
class Outcome:
    """Metrics of one fitted model on one target (validation or test)."""

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    activity: np.ndarray
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def ci95(self, name: str) -> float:
        return mean_ci95(self.per_user[name])[1]


def evaluate_ranker(
    ranker: Ranker, fit_matrix: sp.csr_matrix, target: sp.csr_matrix, ks: Sequence[int]
) -> Outcome:
    """Score ``ranker`` (already fitted on ``fit_matrix``) against ``target``.

    Only users with at least one target item are evaluated.
    """
    started = time.perf_counter()
    target = sp.csr_matrix(target)
    users = np.flatnonzero(np.diff(target.indptr) > 0)
    recs = ranker.top_k(users, max(ks))
    per_user = ranking_metrics(recs, target[users], ks)
    metrics = {name: float(values.mean()) if values.size else 0.0
               for name, values in per_user.items()}
    fit_rows = np.diff(sp.csr_matrix(fit_matrix).indptr)
    n_train_users = int((fit_rows > 0).sum())
    metrics.update(catalogue_metrics(recs, item_popularity(fit_matrix), n_train_users, ks))
    metrics["users"] = float(users.size)
    info = ranker.info() if isinstance(ranker, RecommenderRanker) else {}
    return Outcome(metrics, per_user, users, fit_rows[users], time.perf_counter() - started, info)


def fit_and_evaluate(
    algorithm: str, params: Mapping[str, Any], fit_matrix: sp.csr_matrix,
    target: sp.csr_matrix, ks: Sequence[int], side: SideData | None = None,
) -> tuple[Outcome, float]:
    ranker = make_ranker(algorithm, params, side)
    fit_seconds = ranker.fit(fit_matrix)
    return evaluate_ranker(ranker, fit_matrix, target, ks), fit_seconds


def activity_buckets(
    values: np.ndarray, activity: np.ndarray, edges: Sequence[int] = ACTIVITY_EDGES
) -> list[dict[str, Any]]:
    """Mean of ``values`` per bucket of training-history length."""
    out: list[dict[str, Any]] = []
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        mask = activity >= low if high is None else (activity >= low) & (activity < high)
        label = f"{low}+" if high is None else f"{low}-{high - 1}"
        if mask.any():
            out.append({"bucket": label, "users": int(mask.sum()),
                        "mean": float(values[mask].mean())})
    return out


@dataclass
class ModelResult:
    candidate: Candidate
    params: dict[str, Any]
    validation: dict[str, float]
    test: Outcome
    fit_seconds: float
    search: SearchResult | None
    seconds: float
    # The chosen configuration's per-user validation ``metric`` (users with validation
    # items, in order), for paired choices between models (:mod:`.choice`).
    validation_per_user: np.ndarray | None = None

    @property
    def models(self) -> int:
        """How many fitted models serving this needs (a blend: its components)."""
        return max(len(self.params.get("components") or ()), 1)

    def to_dict(self, metric: str = "ndcg@10") -> dict[str, Any]:
        k = metric.split("@")[1] if "@" in metric else "10"
        return {
            "name": self.candidate.label, "algorithm": self.candidate.algorithm,
            "kind": self.candidate.kind, "params": self.params, "model_info": self.test.info,
            "validation": _rounded(self.validation),
            "test": _rounded(self.test.metrics),
            "test_ci95": {name: round(self.test.ci95(name), 5) for name in self.test.per_user},
            "fit_seconds": round(self.fit_seconds, 3),
            "score_seconds": round(self.test.seconds, 3),
            "total_seconds": round(self.seconds, 2),
            "ndcg_by_activity": activity_buckets(
                self.test.per_user[f"ndcg@{k}"], self.test.activity
            ),
            "search": self.search.to_dict() if self.search else None,
        }


def _rounded(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in metrics.items()}


def evaluate_candidate(
    candidate: Candidate, train: sp.csr_matrix, validation: sp.csr_matrix,
    test: sp.csr_matrix, ks: Sequence[int], *, search: bool = True,
    budget_seconds: float = 60.0, mode: SearchMode = "random", seed: int = 0,
    metric: str = "ndcg@10", max_trials: int | None = None,
    side: SideData | None = None, final_fit: sp.csr_matrix | None = None,
    complete: bool = False, max_widenings: int = 3, max_alternations: int = 0,
) -> ModelResult:
    """Search on validation (or take the given params), refit on train+validation, test.

    ``final_fit`` is the refit matrix when it is more than ``train + validation`` (a
    split's validation context joins it, see :meth:`.splits.Split.train_validation`).
    ``complete``: every trial of the grid runs, and grid edges are widened up to
    ``max_widenings`` times, and staged searches alternate their stages up to
    ``max_alternations`` more times (:func:`.search.run_search`).
    """
    started = time.perf_counter()
    algo = candidate.algorithm
    has_validation = validation.nnz > 0
    fixed = dict(candidate.params)
    space = dict(candidate.space) if candidate.space is not None else default_space(algo)
    space = without_times({k: v for k, v in space.items() if k not in fixed}, side)
    search_result: SearchResult | None = None
    if search and space and has_validation:
        inner = tuple(k for k in derived_params(algo) if k in space)
        trial = _Trials(algo, fixed, side, train, validation, ks, metric, keep=bool(inner))
        defaults = trial.base if candidate.try_defaults else None
        staged = {k: trial.base[k] for k in STAGED.get(algo, ()) if k in space}
        search_result = run_search(
            trial, space, metric=metric, budget_seconds=budget_seconds,
            mode=candidate.mode or mode, seed=seed,
            max_trials=max_trials, defaults=defaults, complete=complete,
            max_widenings=max_widenings, accepts=accepts_value(algo, fixed, train.shape),
            inner=inner,
            staged=staged, max_alternations=max_alternations,
        )
        trial.kept.clear()
        search_result.trials = [
            replace(t, derived=_key(t.params) in trial.derived,
                    repeated=_key(t.params) in trial.repeated)
            for t in search_result.trials]
        best = search_result.best
        params = {**fixed, **best.params}
        validation_metrics = best.metrics
        validation_per_user = trial.per_user.get(_key(best.params))
    else:
        params = fixed
        validation_metrics, validation_per_user = {}, None
        if has_validation:
            checked = fit_and_evaluate(algo, params, train, validation, ks, side)[0]
            validation_metrics = checked.metrics
            validation_per_user = checked.per_user.get(metric)
    train_validation = sp.csr_matrix(train + validation) if final_fit is None else final_fit
    outcome, fit_seconds = fit_and_evaluate(algo, params, train_validation, test, ks, side)
    log.info("%s test %s=%.4f fit=%.1fs", candidate.label, metric,
             outcome.metrics.get(metric, float("nan")), fit_seconds)
    return ModelResult(
        candidate=candidate, params={**default_params(algo), **params},
        validation=validation_metrics, test=outcome, fit_seconds=fit_seconds,
        search=search_result, seconds=time.perf_counter() - started,
        validation_per_user=validation_per_user,
    )


class _Trials:
    """One search's trials: a call with a trial's parameters fits on ``train`` (deriving
    from the last trial's model when it can) and scores on ``validation``; a model that
    an earlier trial already fitted (:func:`_model_key`) is not fitted again."""

    def __init__(
        self, algo: str, fixed: Mapping[str, Any], side: SideData | None,
        train: sp.csr_matrix, validation: sp.csr_matrix, ks: Sequence[int], metric: str,
        keep: bool,
    ) -> None:
        self.algo, self.fixed, self.side = algo, dict(fixed), side
        self.train, self.validation, self.ks, self.metric = train, validation, ks, metric
        self.base = {**default_params(algo), **fixed}
        self.keep = keep  # keep the last ranker: the next trial may derive from it
        self.kept: list[Ranker] = []
        self.derived: set[str] = set()
        self.repeated: set[str] = set()
        self.per_user: dict[str, np.ndarray] = {}  # trial parameters (JSON) -> per-user metric
        # model -> the trial that fitted it, its metrics and fit seconds
        self.fitted: dict[str, tuple[str, dict[str, float], float]] = {}

    def __call__(self, params: dict[str, Any]) -> tuple[dict[str, float], float]:
        key, model_key = _key(params), _model_key({**self.base, **params})
        if model_key in self.fitted:
            first, metrics, seconds = self.fitted[model_key]
            self.repeated.add(key)
            self.per_user[key] = self.per_user[first]
            return metrics, seconds
        ranker = make_ranker(self.algo, {**self.fixed, **params}, self.side)
        previous = self.kept.pop() if self.kept else None
        fit_s = ranker.derive(previous, self.train) \
            if isinstance(ranker, RecommenderRanker | ImplicitRanker) else None
        previous = None  # released before a full fit: one model in memory at a time
        if fit_s is None:
            fit_s = ranker.fit(self.train)
        else:
            self.derived.add(key)
        outcome = evaluate_ranker(ranker, self.train, self.validation, self.ks)
        if self.keep:
            self.kept.append(ranker)
        self.per_user[key] = outcome.per_user[self.metric]
        self.fitted[model_key] = (key, outcome.metrics, fit_s)
        return outcome.metrics, fit_s


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _model_key(params: Mapping[str, Any]) -> str:
    """Equal for parameters that fit the same model (sessions off: the other session
    parameter changes nothing)."""
    return _key(inert_sessions_dropped(params))


def content_features(data: EvalDataset, seed: int = 0) -> ContentFeatures | None:
    """Default content encoding of titles, categories and tags (None without metadata)."""
    if not data.item_meta:
        return None
    from fastinsight.recsys.content import ItemContent, default_content_encoder

    items = []
    for item_id in data.item_ids.tolist():
        meta = data.item_meta.get(item_id, {})
        items.append(ItemContent(
            item_id=item_id, title=str(meta.get("title") or ""),
            description=str(meta.get("description") or ""),
            categories=tuple(str(c) for c in meta.get("categories") or ()),
            tags=tuple(str(t) for t in meta.get("tags") or ()),
        ))
    encoder = default_content_encoder(seed=seed).fit(items)
    return ContentFeatures(encoder.transform(items), encoder)
