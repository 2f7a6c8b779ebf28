"""Seeded hyper-parameter search on the validation split, under a time budget.

Each trial fits on ``train`` and scores on ``validation`` (never on test). The
candidate configurations are the grid of ``space``; ``grid`` mode visits it in order,
``random`` mode in a seeded random order, and both stop at ``max_trials`` or when the
budget would be exceeded: a new trial is started only while ``elapsed + duration of
the slowest trial so far <= budget``. The first trial always runs, and it is the
model's default configuration when ``include_defaults`` (so a search can only match
or improve on the defaults, as measured on validation).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

SearchMode = Literal["grid", "random"]


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    score: float
    metrics: dict[str, float]
    fit_seconds: float
    seconds: float


@dataclass
class SearchResult:
    metric: str
    budget_seconds: float
    trials: list[Trial] = field(default_factory=list)
    grid_size: int = 0
    seconds: float = 0.0

    @property
    def best(self) -> Trial:
        if not self.trials:
            raise ValueError("no trial ran")
        # Highest score; ties go to the earliest trial (the defaults come first).
        return max(self.trials, key=lambda t: (t.score, -self.trials.index(t)))

    @property
    def complete(self) -> bool:
        return len(self.trials) >= self.grid_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "budget_seconds": self.budget_seconds,
            "grid_size": self.grid_size, "trials_run": len(self.trials),
            "complete": self.complete, "seconds": round(self.seconds, 2),
            "best_params": self.best.params if self.trials else None,
            "best_score": self.best.score if self.trials else None,
            "trials": [
                {"params": t.params, "score": t.score, "fit_seconds": round(t.fit_seconds, 3),
                 "seconds": round(t.seconds, 3)}
                for t in self.trials
            ],
        }


def grid(space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``space``, in a deterministic order (keys sorted)."""
    keys = sorted(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(
        *(list(space[k]) for k in keys)
    )]


def plan(
    space: Mapping[str, Sequence[Any]], mode: SearchMode = "random", seed: int = 0,
    defaults: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Configurations in the order they will be tried (defaults first, if given)."""
    configs = grid(space)
    if mode == "random":
        order = np.random.default_rng(seed).permutation(len(configs))
        configs = [configs[i] for i in order]
    elif mode != "grid":
        raise ValueError(f"unknown search mode {mode!r}")
    if defaults is not None:
        first = {k: defaults[k] for k in sorted(space) if k in defaults}
        configs = [first] + [c for c in configs if c != first]
    return configs


def run_search(
    evaluate: Callable[[dict[str, Any]], tuple[dict[str, float], float]],
    space: Mapping[str, Sequence[Any]],
    *,
    metric: str = "ndcg@10",
    budget_seconds: float = 60.0,
    mode: SearchMode = "random",
    seed: int = 0,
    max_trials: int | None = None,
    defaults: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> SearchResult:
    """Try configurations; ``evaluate(params)`` returns ``(validation metrics, fit seconds)``."""
    configs = plan(space, mode, seed, defaults)
    if max_trials is not None:
        configs = configs[: max(1, max_trials)]
    result = SearchResult(metric=metric, budget_seconds=budget_seconds, grid_size=len(configs))
    started = clock()
    slowest = 0.0
    for params in configs:
        elapsed = clock() - started
        if result.trials and elapsed + slowest > budget_seconds:
            log.info("search budget %.0fs reached after %d/%d trials",
                     budget_seconds, len(result.trials), len(configs))
            break
        t0 = clock()
        metrics, fit_seconds = evaluate(dict(params))
        took = clock() - t0
        slowest = max(slowest, took)
        score = float(metrics[metric])
        result.trials.append(Trial(dict(params), score, metrics, fit_seconds, took))
        log.info("trial %s %s=%.4f (%.1fs)", params, metric, score, took)
    result.seconds = clock() - started
    return result
