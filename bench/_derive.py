"""Shared by the benchmarks of derived fits (``edlae_derive.py``, ``als_continue.py``):
a spread of timings, and one complete search run with derivations on and off."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}


def search_both_ways(algorithm: str, split: Any, side: Any, rounds: int,
                     switched_off: Callable[[], AbstractContextManager[None]]) -> dict[str, Any]:
    """The complete search of ``algorithm``'s default grid through ``evaluate_candidate``,
    with derivations and inside ``switched_off()`` (without), rounds interleaved (order
    flipped every round): seconds, trials derived, and whether both choose the same."""
    from contextlib import nullcontext

    from fastinsight.recsys.evaluation.runner import Candidate, evaluate_candidate

    runs: dict[str, list[dict[str, Any]]] = {"derived": [], "fresh": []}
    for r in range(rounds):
        for kind in (("derived", "fresh") if r % 2 == 0 else ("fresh", "derived")):
            with switched_off() if kind == "fresh" else nullcontext():
                started = time.perf_counter()
                result = evaluate_candidate(
                    Candidate(algorithm), split.train, split.validation, split.test, [10],
                    complete=True, side=side, mode="random",
                )
                seconds = time.perf_counter() - started
            assert result.search is not None
            info = result.search.to_dict()
            runs[kind].append({
                "seconds": seconds, "search_seconds": info["seconds"],
                "trials": info["trials_run"], "derived_trials": info["derived_trials"],
                "best_params": info["best_params"], "best_score": info["best_score"],
                "test_ndcg@10": result.test.metrics["ndcg@10"],
            })
    same = all(d["best_params"] == f["best_params"] for d, f in
               zip(runs["derived"], runs["fresh"], strict=True))
    return {
        "rounds": rounds, "runs": runs,
        "search_seconds": {k: spread([x["search_seconds"] for x in v]) for k, v in runs.items()},
        "trials": runs["derived"][0]["trials"], "derived_trials": runs["derived"][0]["derived_trials"],
        "same_choice": same,
        "best_score": {k: v[0]["best_score"] for k, v in runs.items()},
        "test_ndcg@10": {k: v[0]["test_ndcg@10"] for k, v in runs.items()},
    }
