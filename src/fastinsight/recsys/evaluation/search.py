"""Seeded hyper-parameter search on the validation split, complete or under a time budget.

Each trial fits on ``train`` and scores on ``validation`` (never on test). The
candidate configurations are the grid of ``space``; ``grid`` mode visits it in order,
``random`` mode in a seeded random order. A budgeted search stops at ``max_trials`` or
when the budget would be exceeded: a new trial is started only while ``elapsed +
duration of the slowest trial so far <= budget``, so its result depends on the load of
the machine. A **complete** search (``complete=True``) runs every configuration of the
grid whatever the time: nothing is decided by a clock. The first trial always runs,
and it is the model's default configuration when ``defaults`` are given (so a search
can only match or improve on the defaults, as measured on validation).

**Grid edges.** Every search reports, per numeric parameter, whether the best value
lies on the lowest or highest value of its grid (:func:`.widening.grid_edges`). A complete search
with ``max_widenings > 0`` then widens each such parameter's grid by one step beyond
the edge (:func:`.widening.widen`; geometric for positive grids) and searches the new points,
until the best point is interior or the parameter reaches a limit the model does not
accept, at most ``max_widenings`` times; each widening is recorded. A real-valued
parameter whose next step the model refuses (dropout 0.5 -> 1.0) approaches that bound
in halving steps instead (0.75); an integer one takes the limit itself when the step
overshoots it and the limit lies at least halfway there (item-kNN's ``k`` 1600 -> 6400
on 6,000 items: 5,999, every other item; ALS factors 512 -> 2048: 1024, the stated
maximum; but not ALS iterations 960 -> 3840 for 1000), and stops there.

**Inner parameters.** ``inner`` names parameters a fitted model can change without
refitting (:attr:`.base.Recommender.derived_params`, e.g. EDLAE's bound on the
diagonal). They vary fastest in the plan, in both modes (``random`` then shuffles
whole groups), and the group of the defaults follows them, so consecutive trials share
one fit; the trials themselves are the same, only their order changes.

**Staged parameters.** ``staged`` maps parameters to the value they hold while the
others are searched (their defaults); a second stage then searches their own grid with
the others held at the first stage's best point, and widens its edges the same way.
This is a coordinate search: it costs the sum of the two grids instead of their
product (ALS's session gap and weight: 9 trials more, instead of 9 times the trials).
A complete search with ``max_alternations > 0`` then alternates the stages until
neither moves the best point (at most that many more stages): when the second stage moves the staged
parameters, the first stage runs again with them held at their new values (its own
grid, the values its widenings added as a line search from the new best, then its edges
widened), and when that moves the others, the second stage runs again there. It ends
at a point no single stage can improve, which a single pass does not guarantee; a full
grid could still find a better joint optimum. Each further stage is recorded in
``staged["alternations"]``, and ``staged["fixed_point"]`` says whether the search got
there. The default is one pass: docs/evaluation.md measures what the alternation buys
and costs. A budgeted search runs one pass and gives each stage a share of the budget and
of ``max_trials`` in proportion to its grid.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fastinsight.recsys.evaluation.widening import accepted_widening, grid_edges, numeric

log = logging.getLogger(__name__)

SearchMode = Literal["grid", "random"]


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    score: float
    metrics: dict[str, float]
    fit_seconds: float
    seconds: float
    derived: bool = False  # fitted by adapting the previous trial's model (``inner``)
    repeated: bool = False  # the same model as an earlier trial's: its result, not refitted


@dataclass
class SearchResult:
    metric: str
    budget_seconds: float
    trials: list[Trial] = field(default_factory=list)
    grid_size: int = 0
    seconds: float = 0.0
    complete_mode: bool = False
    space: dict[str, list[Any]] = field(default_factory=dict)  # final (widened) grid
    widenings: list[dict[str, Any]] = field(default_factory=list)
    staged: dict[str, Any] = field(default_factory=dict)  # the second stage, if any

    @property
    def best(self) -> Trial:
        if not self.trials:
            raise ValueError("no trial ran")
        # Highest score; ties go to the earliest trial (the defaults come first).
        return max(self.trials, key=lambda t: (t.score, -self.trials.index(t)))

    @property
    def complete(self) -> bool:
        return len(self.trials) >= self.grid_size

    def edges(self) -> dict[str, dict[str, Any]]:
        """Per numeric parameter: its grid, the best value, and which edge it is on."""
        return grid_edges(self.space, self.best.params) if self.trials else {}

    def on_edge(self) -> list[str]:
        """Parameters whose best value lies on an edge of their grid."""
        return sorted(k for k, v in self.edges().items() if v["edge"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "budget_seconds": self.budget_seconds,
            "mode": "complete" if self.complete_mode else "budget",
            "grid_size": self.grid_size, "trials_run": len(self.trials),
            "complete": self.complete, "seconds": round(self.seconds, 2),
            "space": self.space, "edges": self.edges(), "on_edge": self.on_edge(),
            "widenings": self.widenings,
            "best_params": self.best.params if self.trials else None,
            "best_score": self.best.score if self.trials else None,
            "trials": [
                {"params": t.params, "score": t.score, "fit_seconds": round(t.fit_seconds, 3),
                 "seconds": round(t.seconds, 3), **({"derived": True} if t.derived else {})}
                for t in self.trials
            ],
            "derived_trials": sum(t.derived for t in self.trials),
            "repeated_trials": sum(t.repeated for t in self.trials),
            **({"staged": self.staged} if self.staged else {}),
        }


def grid(
    space: Mapping[str, Sequence[Any]], inner: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every combination of ``space``, in a deterministic order: keys sorted, the
    ``inner`` ones last (they vary fastest)."""
    keys = sorted(k for k in space if k not in inner) + sorted(k for k in space if k in inner)
    configs = [dict(zip(keys, values, strict=True)) for values in itertools.product(
        *(list(space[k]) for k in keys)
    )]
    return [{k: c[k] for k in sorted(c)} for c in configs]  # keys in one order in reports


def plan(
    space: Mapping[str, Sequence[Any]], mode: SearchMode = "random", seed: int = 0,
    defaults: Mapping[str, Any] | None = None, inner: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Configurations in the order they will be tried (defaults first, if given), each
    group of equal non-``inner`` values together."""
    configs = grid(space, inner)
    inner = [k for k in inner if k in space]
    if mode not in ("random", "grid"):
        raise ValueError(f"unknown search mode {mode!r}")
    if mode == "random" and inner:
        size = int(np.prod([len(space[k]) for k in inner]))
        groups = [configs[i: i + size] for i in range(0, len(configs), size)]
        order = np.random.default_rng(seed).permutation(len(groups))
        configs = [c for i in order for c in groups[i]]
    elif mode == "random":
        order = np.random.default_rng(seed).permutation(len(configs))
        configs = [configs[i] for i in order]
    if defaults is not None:
        first = {k: defaults[k] for k in sorted(space) if k in defaults}
        configs = [first] + [c for c in configs if c != first]
        if inner:  # the defaults' group next: it shares their fit
            outer = [k for k in first if k not in inner]
            mates = [c for c in configs[1:] if all(c.get(k) == first[k] for k in outer)]
            configs = [first, *mates, *(c for c in configs[1:] if c not in mates)]
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
    complete: bool = False,
    max_widenings: int = 0,
    accepts: Callable[[str, Any], bool] | None = None,
    inner: Sequence[str] = (),
    staged: Mapping[str, Any] | None = None,
    max_alternations: int = 0,
) -> SearchResult:
    """Try configurations; ``evaluate(params)`` returns ``(validation metrics, fit seconds)``.

    ``complete``: every configuration runs (``budget_seconds`` and ``max_trials`` are
    ignored) and edges are widened up to ``max_widenings`` times; ``accepts(name,
    value)`` says whether the model takes a widened value (default: any). ``inner``:
    parameters that vary fastest (:func:`plan`). ``staged``: parameters searched in a
    second stage, held at the given values in the first; with ``complete``, the two stages
    then alternate up to ``max_alternations`` more times (module doc).
    """
    grid_space = {k: list(v) for k, v in space.items()}
    later = {k: v for k, v in (staged or {}).items() if k in grid_space}
    first_space = {k: [later[k]] if k in later else list(v) for k, v in grid_space.items()}
    configs = plan(first_space, mode, seed, defaults, inner)
    # A budgeted search gives the first stage its share of the budget and of max_trials,
    # in proportion to the stages' grids, so that the second stage is not starved.
    second = int(np.prod([len(v) for v in _own_grid(grid_space, later).values()])) - 1
    share = len(configs) / (len(configs) + second) if later else 1.0
    if not complete and max_trials is not None:
        configs = configs[: max(1, int(max_trials * share))]
    result = SearchResult(metric=metric, budget_seconds=budget_seconds, grid_size=len(configs),
                          complete_mode=complete, space=first_space)
    started = clock()
    run = _Runner(evaluate, result, complete, clock, started)
    run.trials(configs, budget_seconds * share)
    if complete:
        _widen_until_interior(evaluate, result, mode, seed, max_widenings, accepts, clock)
    if later:
        _second_stage(run, grid_space, later, mode, seed, max_trials, max_widenings, accepts)
        if complete and result.staged and max_alternations > 0:
            _alternate(run, grid_space, later, max_alternations,
                       _Options(mode, seed, max_widenings, accepts, inner))
    result.seconds = clock() - started
    return result


@dataclass
class _Runner:
    """Runs planned trials into ``result``; a budgeted search stops a stage when its next
    trial would overrun the stage's budget (seconds since the search started)."""

    evaluate: Callable[[dict[str, Any]], tuple[dict[str, float], float]]
    result: SearchResult
    complete: bool
    clock: Callable[[], float]
    started: float
    slowest: float = 0.0

    def trials(self, configs: Sequence[dict[str, Any]], budget: float) -> None:
        for params in configs:
            elapsed = self.clock() - self.started
            if not self.complete and self.result.trials and elapsed + self.slowest > budget:
                log.info("search budget %.0fs reached after %d trials",
                         budget, len(self.result.trials))
                return
            took = _run_trial(self.evaluate, params, self.result.metric, self.result, self.clock)
            self.slowest = max(self.slowest, took)


def _own_grid(grid_space: Mapping[str, list[Any]], later: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The staged parameters' grid, with the values they held in the first stage."""
    return {k: grid_space[k] + ([v] if v not in grid_space[k] else []) for k, v in later.items()}


def _second_stage(
    run: _Runner, grid_space: Mapping[str, list[Any]], later: Mapping[str, Any],
    mode: SearchMode, seed: int, max_trials: int | None, max_widenings: int,
    accepts: Callable[[str, Any], bool] | None,
) -> None:
    """The staged parameters' grid around the first stage's best point (module doc)."""
    result = run.result
    best = dict(result.best.params)
    own = _own_grid(grid_space, later)
    done = [t.params for t in result.trials]
    configs = [c for c in ({**best, **point} for point in plan(own, mode, seed)) if c not in done]
    if not run.complete and max_trials is not None:
        configs = configs[: max(0, max_trials - len(result.trials))]
    first = len(result.trials)
    result.grid_size += len(configs)
    run.trials(configs, result.budget_seconds)
    if len(result.trials) == first and not run.complete:
        log.info("no time left for the second stage (%s)", sorted(later))
        return
    for name, values in own.items():
        result.space[name] = sorted(values) if numeric(values) else list(values)
    result.staged = {"params": sorted(later), "held_at": dict(later), "first_stage_trials": first,
                     "first_stage_best": max(t.score for t in result.trials[:first])}
    if run.complete:
        _widen_until_interior(run.evaluate, result, mode, seed, max_widenings, accepts, run.clock)
        result.grid_size = len(result.trials)


@dataclass(frozen=True)
class _Options:
    mode: SearchMode
    seed: int
    max_widenings: int
    accepts: Callable[[str, Any], bool] | None
    inner: Sequence[str]


def _alternate(
    run: _Runner, grid_space: Mapping[str, list[Any]], later: Mapping[str, Any],
    max_alternations: int, opt: _Options,
) -> None:
    """Runs the stage whose block of parameters has not been searched at the best point,
    until both have (a fixed point) or ``max_alternations`` stages ran (module doc).

    The first stage runs again on its own grid (not the product of its widened values,
    up to 4.5 times as many fits for ALS), then tries the values its widenings added as
    a line search from the new best, then widens its edges; the second stage runs its
    whole widened grid (a few points)."""
    result = run.result
    first = result.trials[: result.staged["first_stage_trials"]]
    searched_first = [dict(later)]  # values of the staged block the first stage held
    searched_second = [_block(max(first, key=lambda t: t.score).params, later, staged=False)]
    steps: list[dict[str, Any]] = []
    fixed_point = False
    while True:
        best = result.best.params
        staged_at, others_at = _block(best, later, staged=True), _block(best, later, staged=False)
        if staged_at in searched_first and others_at in searched_second:
            fixed_point = True
            break
        if len(steps) == max_alternations:
            break
        before, ran = result.best.score, len(result.trials)
        if staged_at not in searched_first:
            searched_first.append(staged_at)
            stage, at = "first", staged_at
            own = {k: [staged_at[k]] if k in later else v for k, v in grid_space.items()}
            run.trials(_new(result, plan(own, opt.mode, opt.seed, inner=opt.inner)), float("inf"))
            top = result.best.params
            added = [{**top, k: v} for k, values in result.space.items() if k not in later
                     for v in values if v not in grid_space[k]]
            run.trials(_new(result, added), float("inf"))
        else:
            searched_second.append(others_at)
            stage, at = "second", others_at
            own = {k: list(v) if k in later else [others_at[k]] for k, v in result.space.items()}
            run.trials(_new(result, plan(own, opt.mode, opt.seed)), float("inf"))
        _widen_until_interior(run.evaluate, result, opt.mode, opt.seed, opt.max_widenings,
                              opt.accepts, run.clock)
        result.grid_size = len(result.trials)
        steps.append({"stage": stage, "at": at, "trials": len(result.trials) - ran,
                      "best_before": before, "best_after": result.best.score})
        log.info("%s stage again at %s: best %.4f -> %.4f", stage, at, before, result.best.score)
    result.staged["alternations"] = steps
    result.staged["fixed_point"] = fixed_point


def _new(result: SearchResult, configs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``configs`` that no trial of ``result`` ran, each once."""
    done = [t.params for t in result.trials]
    out: list[dict[str, Any]] = []
    for config in configs:
        if config not in done and config not in out:
            out.append(config)
    return out


def _block(params: Mapping[str, Any], later: Mapping[str, Any], *, staged: bool) -> dict[str, Any]:
    """The staged parameters of ``params`` (``staged``) or the others."""
    return {k: v for k, v in params.items() if (k in later) == staged}


def _run_trial(
    evaluate: Callable[[dict[str, Any]], tuple[dict[str, float], float]],
    params: Mapping[str, Any], metric: str, result: SearchResult, clock: Callable[[], float],
) -> float:
    t0 = clock()
    metrics, fit_seconds = evaluate(dict(params))
    took = clock() - t0
    score = float(metrics[metric])
    result.trials.append(Trial(dict(params), score, metrics, fit_seconds, took))
    log.info("trial %s %s=%.4f (%.1fs)", params, metric, score, took)
    return took


def _widen_until_interior(
    evaluate: Callable[[dict[str, Any]], tuple[dict[str, float], float]],
    result: SearchResult, mode: SearchMode, seed: int, max_widenings: int,
    accepts: Callable[[str, Any], bool] | None, clock: Callable[[], float],
) -> None:
    for round_ in range(1, max(0, max_widenings) + 1):
        added: dict[str, Any] = {}
        limits: list[str] = []
        for name, info in result.edges().items():
            if not info["edge"]:
                continue
            value = accepted_widening(name, result.space[name], info["edge"], accepts)
            if value is None:
                limits.append(name)
                continue
            added[name] = value
        if not added:
            if limits:
                result.widenings.append({"round": round_, "added": {}, "at_limit": limits})
            return
        # A line search from the best point: the new value of each edge parameter, the
        # others held at their best. Crossing the new value with the whole grid would
        # multiply the cost (one more ALS factor count is 12 trials at the largest size).
        best_before = result.best.score
        best_params = dict(result.best.params)
        for name, value in added.items():
            result.space[name] = sorted([*result.space[name], value])
        done = [t.params for t in result.trials]
        new = [c for c in ({**best_params, name: value} for name, value in added.items())
               if c not in done]
        for params in new:
            _run_trial(evaluate, params, result.metric, result, clock)
        result.grid_size = len(result.trials)
        result.widenings.append({
            "round": round_, "added": added, "at_limit": limits, "trials": len(new),
            "best_before": best_before, "best_after": result.best.score,
        })
        log.info("widened %s: %d more trials, best %.4f -> %.4f", added, len(new),
                 best_before, result.best.score)
    if result.on_edge():
        log.warning("search ends with %s on a grid edge after %d widenings",
                    result.on_edge(), max_widenings)
