"""Model selection for ``fastinsight train --select``: the evaluation's choice rule.

The training matrix is split once (seeded random per-user holdout of users with
enough positives); every candidate is fitted on the rest and scored on the holdout
with the same full-catalogue metric. The caller then fits the winner on the whole
matrix. Test data is never involved: this only chooses.

``search="complete"`` is the offline evaluation's protocol applied to production data:
each candidate's default grid is searched completely on the holdout (every trial, grid
edges widened), blends (hybrid, stacked) are built from the tuned single models as the
evaluation builds them, and the winner is chosen as the evaluation's comparison
chooses (:mod:`.choice`: the best on validation NDCG@10, unless a model with fewer
fitted parts is within one standard error of it). :func:`default_candidates` are the evaluation's own
models, so what the evaluation reports is what gets served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import scipy.sparse as sp

from fastinsight.errors import ValidationFailed
from fastinsight.recsys.evaluation.choice import Contender, choose
from fastinsight.recsys.evaluation.runner import Candidate, ModelResult, evaluate_candidate
from fastinsight.recsys.evaluation.splits import holdout_matrix
from fastinsight.recsys.side import SideData

log = logging.getLogger(__name__)

SelectSearch = Literal["none", "budget", "complete"]


def default_candidates() -> list[str]:
    """The models the offline evaluation compares (every registered one of ours)."""
    from fastinsight.recsys.evaluation.experiment import registered_algorithms

    return registered_algorithms()


@dataclass(frozen=True)
class Selection:
    winner: str
    params: dict[str, Any]
    metric: str
    scores: dict[str, dict[str, float]]  # algorithm -> validation metrics
    reasons: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # algorithm -> search + scoring

    def to_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "params": self.params, "metric": self.metric,
                "scores": self.scores, "reasons": self.reasons, "seconds": self.seconds}


def select_model(
    matrix: sp.csr_matrix,
    candidates: Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    metric: str = "ndcg@10",
    holdout_fraction: float = 0.1,
    min_positives: int = 5,
    seed: int = 0,
    search_budget_seconds: float = 0.0,
    side: SideData | None = None,
    search: SelectSearch | None = None,
    one_se: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Selection:
    """Fit each candidate on a holdout split of ``matrix`` and return the best on ``metric``.

    ``params`` fixes parameters per algorithm. With ``search_budget_seconds > 0`` (or
    ``search="budget"``) each candidate's default search space is also searched for that
    long, and the winner's ``params`` are the chosen configuration; ``search="complete"``
    follows the evaluation's protocol (module docstring). ``side`` (item content,
    interaction times) is given to the candidates that use it. ``one_se``: the winner is
    chosen by :func:`.choice.choose` (a model with fewer fitted parts within one standard
    error of the best is preferred); False: the best holdout score, plainly.
    ``progress`` is told each candidate's holdout score and seconds as it finishes.
    """
    if not candidates:
        raise ValidationFailed.field("candidates", "at least one algorithm is needed")
    k = int(metric.split("@")[1]) if "@" in metric else 10
    fit, held = holdout_matrix(matrix, holdout_fraction, min_positives, seed)
    if held.nnz == 0:
        raise ValidationFailed(
            f"no user has {min_positives}+ positives; cannot hold anything out to compare models"
        )
    empty = sp.csr_matrix(fit.shape, dtype=fit.dtype)
    scores: dict[str, dict[str, float]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    contenders: list[Contender] = []
    seconds: dict[str, float] = {}
    mode = search or ("budget" if search_budget_seconds > 0 else "none")
    say = progress or (lambda _msg: None)
    if mode == "complete":
        results = _complete(matrix, fit, held, candidates, params, metric, k, seed, side,
                            say)
        for algorithm, result in results.items():
            scores[algorithm] = {name: round(v, 5) for name, v in result.validation.items()}
            chosen[algorithm] = result.params
            seconds[algorithm] = round(result.seconds, 2)
            contenders.append(_contender(algorithm, result, metric, searched=True))
    for algorithm in candidates if mode != "complete" else ():
        fixed = dict((params or {}).get(algorithm, {}))
        # The holdout plays "test" here; a nested validation split is only needed to search.
        if mode == "budget":
            inner_fit, inner_val = holdout_matrix(fit, holdout_fraction, min_positives, seed + 1)
            result = evaluate_candidate(
                Candidate(algorithm, params=fixed), inner_fit, inner_val, held, [k],
                search=True, budget_seconds=search_budget_seconds, seed=seed, metric=metric,
                side=side,
            )
        else:
            result = evaluate_candidate(
                Candidate(algorithm, params=fixed), fit, empty, held, [k], search=False,
                seed=seed, metric=metric, side=side,
            )
        scores[algorithm] = {name: round(v, 5) for name, v in result.test.metrics.items()}
        chosen[algorithm] = result.params
        seconds[algorithm] = round(result.seconds, 2)
        contenders.append(_contender(algorithm, result, metric))
        say(_finished(algorithm, result, metric, len(seconds), len(candidates)))
    ranking = sorted(candidates, key=lambda a: -scores[a][metric])
    choice = choose(contenders, one_se=one_se)
    winner = choice.winner
    reasons = [
        f"{a}: {metric}={scores[a][metric]:.4f} recall@{k}={scores[a][f'recall@{k}']:.4f} "
        f"coverage@{k}={scores[a][f'coverage@{k}']:.4f}"
        for a in ranking
    ]
    if len(ranking) == 1:
        reasons.insert(0, f"{winner} was the only candidate")
    elif winner == ranking[0]:
        runner_up = ranking[1]
        gap = scores[winner][metric] - scores[runner_up][metric]
        reasons.insert(0, f"{winner} has the highest holdout {metric}, "
                          f"{gap:+.4f} ahead of {runner_up}")
    else:
        reasons.insert(0, choice.rule)
    held_users = int((held.getnnz(axis=1) > 0).sum())
    reasons.append(f"holdout: {held.nnz} interactions of {held_users} users, seed {seed}; "
                   f"search: {mode}")
    log.info("model selection: %s", reasons[0])
    return Selection(winner, chosen[winner], metric, scores, reasons, seconds)


def _finished(algorithm: str, result: ModelResult, metric: str, done: int, total: int) -> str:
    trials = f", {len(result.search.trials)} trials" if result.search else ""
    return (f"{algorithm} ({done}/{total}): holdout {metric} "
            f"{result.test.metrics[metric]:.4f}{trials}, {result.seconds:.1f}s")


def _contender(algorithm: str, result: ModelResult, metric: str, *, searched: bool = False
               ) -> Contender:
    """The holdout per-user scores the candidate's ``scores`` are the means of: the
    chosen trial's after a complete search on the holdout, else the holdout as "test"."""
    per_user = result.validation_per_user if searched else None
    return Contender(algorithm, (result.test.per_user[metric] if per_user is None else per_user,),
                     result.models)


def _complete(
    matrix: sp.csr_matrix, fit: sp.csr_matrix, held: sp.csr_matrix, candidates: Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None, metric: str, k: int, seed: int,
    side: SideData | None, say: Callable[[str], None],
) -> dict[str, ModelResult]:
    """Complete searches on (fit, held), blends last and built from the tuned models."""
    from fastinsight.recsys.evaluation.experiment import BLENDS, blend_candidate

    ordered = [a for a in candidates if a not in BLENDS] + [a for a in candidates if a in BLENDS]
    results: list[ModelResult] = []
    out: dict[str, ModelResult] = {}
    for algorithm in ordered:
        candidate = blend_candidate(
            Candidate(algorithm, params=dict((params or {}).get(algorithm, {}))), results, metric)
        # ``final_fit=fit``: the "test" below re-measures the chosen configuration on the
        # holdout; nothing is ever fitted on the holdout itself.
        result = evaluate_candidate(
            candidate, fit, held, held, [k], search=True, complete=True, seed=seed,
            metric=metric, side=side, final_fit=fit,
        )
        results.append(result)
        out[algorithm] = result
        say(_finished(algorithm, result, metric, len(out), len(ordered)))
    log.info("complete selection over %d candidates on %d x %d", len(out), *matrix.shape)
    return out
