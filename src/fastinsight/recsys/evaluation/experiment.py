"""One evaluation run, end to end: filter, split, evaluate every candidate, compare.

The result is a plain JSON-ready dict (see :mod:`.report` for files and MongoDB).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from fastinsight.recsys.evaluation.choice import choose, contender
from fastinsight.recsys.evaluation.data import EvalDataset, filter_min_positives
from fastinsight.recsys.evaluation.metrics import paired_bootstrap
from fastinsight.recsys.evaluation.runner import (
    EXTERNAL_ALGORITHMS,
    Candidate,
    ModelResult,
    content_features,
    evaluate_candidate,
)
from fastinsight.recsys.evaluation.search import SearchMode
from fastinsight.recsys.evaluation.splits import Split, make_split
from fastinsight.recsys.fit_reuse import reusing_component_fits
from fastinsight.recsys.side import SideData

log = logging.getLogger(__name__)

# Preferred order in reports; anything else registered is appended after these.
PREFERRED_ORDER: tuple[str, ...] = (
    "popularity", "itemknn", "ease", "edlae", "als", "two_tower", "multvae", "hybrid",
    "stacked",
)
# Registered but not meaningful on a static split (it is popularity over a recent window).
NOT_EVALUATED_BY_DEFAULT: frozenset[str] = frozenset({"trending"})


def registered_algorithms() -> list[str]:
    """Our registered algorithms, in report order (new registrations are picked up)."""
    from fastinsight.recsys import registry

    names = [n for n in registry.algorithms() if n not in NOT_EVALUATED_BY_DEFAULT]
    ordered = [n for n in PREFERRED_ORDER if n in names]
    return ordered + sorted(n for n in names if n not in ordered)


def default_algorithms() -> list[str]:
    return [*registered_algorithms(), *EXTERNAL_ALGORITHMS]


HYBRID = "hybrid"
STACKED = "stacked"
BLENDS = frozenset({HYBRID, STACKED})
# Single models not worth blending in (a hybrid adds its own popularity prior if told to).
_NOT_BLENDED = frozenset({*BLENDS, "popularity", "trending"})
STACKED_COMPONENTS = 4  # the best this many tuned single models feed the stacked blend
# The Keras models join every stacked blend whatever their rank, so that their paired
# ablation ("stacked without two_tower") is always measured; the learned weights decide.
KERAS_MODELS: tuple[str, ...] = ("two_tower", "multvae")


def _tuned(results: Sequence[ModelResult], metric: str) -> list[ModelResult]:
    return sorted(
        (r for r in results if r.candidate.kind == "ours" and r.candidate.algorithm
         not in _NOT_BLENDED and r.validation and r.candidate.label == r.candidate.algorithm),
        key=lambda r: -r.validation.get(metric, float("-inf")),
    )


def stacked_candidate(
    results: Sequence[ModelResult], metric: str, name: str = "", without: str | None = None,
) -> Candidate:
    """The stacked blend over the best tuned single models of this run and every Keras
    model tuned in it (their chosen parameters); its weights are learned by the model
    itself, so nothing is searched. ``without``: the same blend minus that algorithm."""
    tuned = _tuned(results, metric)
    ranked = tuned[:STACKED_COMPONENTS] + [
        r for r in tuned[STACKED_COMPONENTS:] if r.candidate.algorithm in KERAS_MODELS]
    if without is not None:
        ranked = [r for r in ranked if r.candidate.algorithm != without]
    if len(ranked) < 2:
        return Candidate(STACKED, name=name)
    k = int(metric.partition("@")[2])
    components = [{"algorithm": r.candidate.algorithm, "params": r.params} for r in ranked]
    return Candidate(STACKED, name=name or "stacked (tuned components)",
                     params={"k": k, "components": components}, space={}, try_defaults=False)


def blend_candidate(candidate: Candidate, results: Sequence[ModelResult], metric: str) -> Candidate:
    """A blend named without parameters is built over the models already tuned in the run."""
    if candidate.algorithm not in BLENDS or candidate.params or candidate.space is not None:
        return candidate
    if candidate.algorithm == HYBRID:
        return hybrid_candidate(results, metric, candidate.name)
    return stacked_candidate(results, metric, candidate.name)


def hybrid_candidate(
    results: Sequence[ModelResult], metric: str, name: str = "", without: str | None = None,
) -> Candidate:
    """The hybrid over the single models already tuned in this run.

    Components keep the parameters their own search chose (on validation); the hybrid
    then searches which blend to use: the best two, the best with the content-aware
    two-tower model, the best three. Without tuned single models: its defaults.
    ``without``: the same search with that algorithm left out (an ablation).
    """
    ranked = sorted(
        (r for r in results if r.candidate.kind == "ours" and r.candidate.algorithm
         not in _NOT_BLENDED and r.validation and r.candidate.algorithm != without
         and r.candidate.label == r.candidate.algorithm),
        key=lambda r: -r.validation.get(metric, float("-inf")),
    )
    if len(ranked) < 2:
        return Candidate(HYBRID, name=name)
    spec = {r.candidate.algorithm: {"algorithm": r.candidate.algorithm, "params": r.params}
            for r in ranked}
    order = list(spec)
    options: list[list[str]] = [order[:2]]
    if "two_tower" in spec and "two_tower" not in order[:2]:
        options.append([order[0], "two_tower"])
    if len(order) >= 3:
        options.append(order[:3])
    k = int(metric.partition("@")[2])
    return Candidate(
        HYBRID, name=name or "hybrid (tuned components)", params={"k": k},
        space={"components": [[spec[a] for a in names] for names in options]},
        mode="grid", try_defaults=False,
    )


Protocol = Literal["product", "binary"]
PROTOCOLS: tuple[str, ...] = ("product", "binary")


@dataclass(frozen=True)
class EvaluationConfig:
    """``protocol``: "product" trains on what the product trains on (rating weights, lower
    ratings as context unless ``context=False``, times, content); "binary" is the standard
    binary-positives protocol: ratings >= ``min_rating`` of weight 1 are the only input
    (no context, no times, no content), for every model and reference alike."""

    protocol: Protocol = "product"
    split: str = "random"
    validation: float = 0.1
    test: float = 0.1
    seed: int = 0
    min_positives: int = 5
    ks: tuple[int, ...] = (10, 20)
    algorithms: tuple[str, ...] | None = None
    # Extra named configurations evaluated after ``algorithms``, e.g. a reference at
    # its default parameters next to its tuned self.
    extra_candidates: tuple[Candidate, ...] = ()
    search: bool = True
    budget_seconds: float = 60.0
    search_mode: SearchMode = "random"
    max_trials: int | None = None
    # Stacked blends evaluated again without each of these algorithms (paired ablations).
    ablate: tuple[str, ...] = ()
    # Every trial of every grid, whatever the time; grid edges widened up to max_widenings.
    complete: bool = False
    max_widenings: int = 3
    # With complete: staged searches (ALS's sessions) alternate their two stages up to
    # this many more times, towards a point neither stage improves (0: one pass).
    max_alternations: int = 0
    metric: str = "ndcg@10"
    use_content: bool = True
    # Interaction times, for session-aware models (EASE's session term); only the times
    # of the pairs a model is fitted on are read, never those of held-out pairs.
    use_times: bool = True
    # Non-relevant interactions (e.g. low ratings) are training input and never
    # recommended back, as in the product; False evaluates on positives alone.
    context: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose from {PROTOCOLS}")
        k = self.metric.partition("@")[2]
        if not k.isdigit() or int(k) not in self.ks:
            raise ValueError(f"metric {self.metric!r} needs its K in ks={self.ks}")


def _comparison(results: Sequence[ModelResult], metric: str, seed: int) -> dict[str, Any]:
    """Ours (chosen by :func:`.choice.choose`) vs the best external reference, each
    chosen on validation."""

    on_validation = all(r.validation for r in results)
    pools = {kind: [r for r in results if r.candidate.kind == kind
                    and ablation_parts(r.candidate.label) is None]
             for kind in ("ours", "external")}
    if not pools["ours"] or not pools["external"]:
        return {}

    def best(pool: list[ModelResult]) -> ModelResult:
        if on_validation:
            return max(pool, key=lambda r: r.validation.get(metric, float("-inf")))
        return max(pool, key=lambda r: r.test.metrics[metric])

    ours, ext = best(pools["ours"]), best(pools["external"])
    choice = None
    if on_validation and all(r.validation_per_user is not None for r in pools["ours"]):
        choice = choose([contender([r]) for r in pools["ours"]])
        ours = next(r for r in pools["ours"] if r.candidate.label == choice.winner)
    a, b = ours.test.metrics[metric], ext.test.metrics[metric]
    if not np.array_equal(ours.test.users, ext.test.users):
        raise RuntimeError("models were evaluated on different users")
    return {
        "metric": metric, "chosen_on": "validation" if on_validation else "test",
        "best_ours": ours.candidate.label, "best_external": ext.candidate.label,
        "choice": choice.to_dict() if choice else None,
        "ours_test": round(a, 5), "external_test": round(b, 5),
        "relative_lift": round((a - b) / b, 4) if b > 0 else None,
        "paired_bootstrap": {k: round(v, 5) for k, v in paired_bootstrap(
            ours.test.per_user[metric], ext.test.per_user[metric], seed=seed).items()},
    }


def inputs(cfg: EvaluationConfig) -> dict[str, Any]:
    """What every model (ours and the references alike) is given under ``cfg``."""
    binary = cfg.protocol == "binary"
    return {
        "weights": "1 per positive" if binary else "rating / 5 (product weights)",
        "context": cfg.context and not binary,
        "times": cfg.use_times and not binary,
        "content": cfg.use_content and not binary,
    }


@dataclass
class EvaluationRun:
    """The report and the results behind it (per-user arrays, for paired comparisons)."""

    report: dict[str, Any]
    results: list[ModelResult]


def run_evaluation(data: EvalDataset, config: EvaluationConfig | None = None) -> dict[str, Any]:
    """Evaluate ``config.algorithms`` (default: all registered + implicit ALS/BPR)."""
    return evaluate_dataset(data, config).report


def evaluate_dataset(data: EvalDataset, config: EvaluationConfig | None = None) -> EvaluationRun:
    """:func:`run_evaluation`, also returning the per-model results."""
    cfg = config or EvaluationConfig()
    started = time.perf_counter()
    load_before = _load_average()
    given = inputs(cfg)
    if cfg.protocol == "binary":
        data = data.binary()
    filtered = filter_min_positives(data if given["context"] else data.without_context(),
                                    cfg.min_positives)
    split = make_split(filtered, cfg.split, cfg.validation, cfg.test, cfg.seed)
    content = content_features(filtered, cfg.seed) if given["content"] else None
    side = SideData(content, filtered.time_matrix() if given["times"] else None)
    prepared = time.perf_counter() - started
    algorithms = list(cfg.algorithms) if cfg.algorithms else default_algorithms()
    candidates = [Candidate(a) for a in algorithms] + list(cfg.extra_candidates)
    results: list[ModelResult] = []
    # Blends (options, the stack, ablations) share their components' fits.
    with reusing_component_fits() as reuse:
        for candidate in candidates:
            candidate = blend_candidate(candidate, results, cfg.metric)
            results.append(evaluate_candidate(
                candidate, split.train, split.validation, split.test, cfg.ks,
                search=cfg.search, budget_seconds=cfg.budget_seconds, mode=cfg.search_mode,
                seed=cfg.seed, metric=cfg.metric, max_trials=cfg.max_trials, side=side,
                final_fit=split.train_validation(), complete=cfg.complete,
                max_widenings=cfg.max_widenings, max_alternations=cfg.max_alternations,
            ))
        for blend in [r for r in results if r.candidate.label in _BLEND_LABELS]:
            for algorithm in cfg.ablate:
                ablated = _ablation(blend, algorithm, results, cfg, split, side)
                candidates.append(ablated.candidate)
                results.append(ablated)
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {**data.stats(), "after_filter": filtered.stats()},
        "protocol": {
            **{k: v for k, v in asdict(cfg).items() if k not in ("extra", "extra_candidates")},
            "ablate": list(cfg.ablate),
            "ks": list(cfg.ks), "algorithms": [c.label for c in candidates], **cfg.extra,
            "inputs": given,
            "search_kind": "complete" if cfg.complete else f"budget {cfg.budget_seconds:g}s",
            "split_sizes": split.summary(),
            "evaluated_users_test": int(results[0].test.users.size) if results else 0,
            "content_features": None if content is None else int(content.features.shape[1]),
        },
        "models": [r.to_dict(cfg.metric) for r in results],
        "comparison": _comparison(results, cfg.metric, cfg.seed),
        "timings": {
            "prepare_seconds": round(prepared, 2),
            "blend_component_fits": {"made": reuse.made, "reused": reuse.reused},
            "total_seconds": round(time.perf_counter() - started, 2),
            # Other work on the machine slows fits down and so cuts time-budgeted searches.
            "load_average_1m": {"start": load_before, "end": _load_average()},
        },
        "environment": _environment(),
    }
    return EvaluationRun(report, results)


_BLEND_LABELS = frozenset({"hybrid (tuned components)", "stacked (tuned components)"})


_WITHOUT = " without "


def ablation_name(blend: str, algorithm: str) -> str:
    """``"stacked without two_tower"``: the label of a blend's paired ablation."""
    return f"{blend}{_WITHOUT}{algorithm}"


def ablation_parts(label: str) -> tuple[str, str] | None:
    """(blend algorithm, left-out algorithm) of an ablation's label; None for any other
    model. Ablations are measurements only: never a headline or served choice."""
    blend, sep, dropped = label.partition(_WITHOUT)
    return (blend, dropped) if sep else None


def _ablation(
    blend: ModelResult, algorithm: str, results: Sequence[ModelResult],
    cfg: EvaluationConfig, split: Split, side: SideData,
) -> ModelResult:
    """``blend`` built again, on the same split, without ``algorithm``. When the blend
    did not use it, the ablation is the blend itself (a difference of 0 for every user)."""
    name = ablation_name(blend.candidate.algorithm, algorithm)
    used = {c["algorithm"] for c in blend.params.get("components", [])}
    if algorithm not in used:
        log.info("ablation: %s is not in the %s blend", algorithm, blend.candidate.algorithm)
        return replace(blend, candidate=replace(blend.candidate, name=name))
    if blend.candidate.algorithm == HYBRID:
        candidate = hybrid_candidate(results, cfg.metric, name, without=algorithm)
    else:
        candidate = stacked_candidate(results, cfg.metric, name, without=algorithm)
    return evaluate_candidate(
        candidate, split.train, split.validation, split.test, cfg.ks,
        search=bool(candidate.space) and cfg.search, complete=cfg.complete,
        budget_seconds=cfg.budget_seconds, mode=cfg.search_mode, seed=cfg.seed,
        metric=cfg.metric, side=side, final_fit=split.train_validation(),
    )


def _load_average() -> float | None:
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _environment() -> dict[str, Any]:
    import os

    versions: dict[str, str] = {}
    for name in ("numpy", "scipy", "implicit", "keras", "jax"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = "n/a"
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), **versions}
