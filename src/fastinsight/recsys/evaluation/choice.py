"""Which model to serve: the best on validation, unless a simpler one is within noise.

Every place that picks "our model" (the evaluation's comparison, the headline over
seeds, ``fastinsight train --select``) uses :func:`choose`. The rule is the one
standard error rule of model selection: find the contender with the best mean
validation score; every contender whose paired shortfall to it (per user, on the same
held-out users) is at most one standard error of that shortfall is as good as the best
within the noise of the holdout; among those, serve the one that needs the fewest
fitted models (a blend needs all its components), and the higher score between equals.

Why: a blend costs the fit time and memory of every component, and its weights are
fitted on the same holdout that then ranks it, so its validation score is the most
optimistic of all. A blend therefore has to beat the single model by more than the
holdout's noise before it is served. The shortfall's standard error is pooled over
seeds (the seeds' users are independent): ``se = sqrt(sum_s var_s / n_s) / S`` for
the mean over ``S`` seeds of per-seed mean differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fastinsight.recsys.evaluation.runner import ModelResult


@dataclass(frozen=True)
class Contender:
    """One model's per-user validation scores, one array per seed (same users as the
    other contenders on that seed), and how many fitted models it needs."""

    label: str
    per_user: tuple[np.ndarray, ...]
    models: int = 1

    @property
    def mean(self) -> float:
        return float(np.mean([p.mean() if p.size else 0.0 for p in self.per_user]))


@dataclass(frozen=True)
class Choice:
    winner: str
    best: str  # highest mean validation score
    rule: str  # why the winner, in one sentence
    shortfall: float  # best's mean minus the winner's
    standard_error: float  # of that shortfall (0 when the winner is the best)

    def to_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "best_on_validation": self.best, "rule": self.rule,
                "shortfall": round(self.shortfall, 5),
                "standard_error": round(self.standard_error, 5)}


def paired_se(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Standard error of ``mean_s mean_u (a_su - b_su)``, users independent within seeds."""
    variances = []
    for x, y in zip(a, b, strict=True):
        if x.shape != y.shape:
            raise ValueError("contenders were scored on different users")
        d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
        variances.append(float(d.var(ddof=1)) / d.size if d.size > 1 else 0.0)
    return math.sqrt(sum(variances)) / max(len(variances), 1)


def choose(contenders: Sequence[Contender], *, one_se: bool = True) -> Choice:
    """The contender to serve (module docstring); ``one_se=False``: the best, plainly."""
    if not contenders:
        raise ValueError("nothing to choose from")
    best = max(contenders, key=lambda c: c.mean)
    if not one_se:
        return Choice(best.label, best.label, "highest mean validation score", 0.0, 0.0)
    within: list[tuple[Contender, float, float]] = []
    for c in contenders:
        shortfall = best.mean - c.mean
        se = 0.0 if c is best else paired_se(best.per_user, c.per_user)
        if shortfall <= se:
            within.append((c, shortfall, se))
    winner, shortfall, se = min(within, key=lambda t: (t[0].models, -t[0].mean))
    if winner is best:
        rule = (f"{best.label} has the highest mean validation score and no model with "
                f"fewer fitted models is within one standard error of it")
    else:
        rule = (f"{winner.label} ({winner.models} fitted model(s)) is {shortfall:.4f} behind "
                f"{best.label} ({best.models}) on validation, within one standard error "
                f"({se:.4f}); the simpler model is served")
    return Choice(winner.label, best.label, rule, shortfall, se)


def contender(results: Sequence[ModelResult]) -> Contender:
    """One model over seeds (one result per seed) as a :class:`Contender`."""
    arrays = []
    for r in results:
        if r.validation_per_user is None:
            raise ValueError(f"{r.candidate.label} has no per-user validation scores")
        arrays.append(r.validation_per_user)
    return Contender(results[0].candidate.label, tuple(arrays), results[0].models)
