"""Shared by the benchmarks of derived fits (``edlae_derive.py``, ``als_continue.py``):
their arguments and data (synthetic with times, MovieLens seed 0 under the binary
protocol), a spread of timings, a class attribute switched off for a while, and one
complete search run with derivations on and off."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import MOVIELENS, binary_movielens, seed_split

OneFit = Callable[[sp.csr_matrix, sp.csr_matrix | None, int], dict[str, Any]]


def run_study(doc: str, one_fit: OneFit,
              search: Callable[[Any, int], Any]) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse the shared arguments; ``one_fit`` on synthetic data with its times and on
    MovieLens seed 0's training part, ``search(split, rounds)`` on that split (when
    ``--data`` has it). Returns the arguments and the result to write."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", type=Path, default=MOVIELENS)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--search-rounds", type=int, default=2)
    ap.add_argument("--synthetic", default="20000x5000x200000", help="users x items x interactions")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_average_1m_start": round(os.getloadavg()[0], 2),
                           "rounds": args.rounds}
    users, items, interactions = (int(v) for v in args.synthetic.split("x"))
    built, times = synthetic_matrix(users, items, interactions)
    out["synthetic"] = {"size": args.synthetic, "sessions": "default 30-minute gap",
                        "one_fit": one_fit(built.matrix, times, args.rounds)}
    data = binary_movielens(args.data)
    if data is not None:
        split = seed_split(data, 0).split
        out["movielens_binary_seed0"] = {
            "one_fit": one_fit(sp.csr_matrix(split.train, dtype=np.float32), None, args.rounds),
            "search": search(split, args.search_rounds),
        }
    return args, out


def synthetic_matrix(users: int, items: int, interactions: int) -> tuple[Any, sp.csr_matrix]:
    from fastinsight.config import DEFAULT_INTERACTION_WEIGHTS
    from fastinsight.recsys.matrix import from_arrays
    from train import synthetic

    cols = synthetic(users, items, interactions)
    built = from_arrays(cols["users"], cols["items"], cols["types"], cols["values"],
                        cols["timestamps"], DEFAULT_INTERACTION_WEIGHTS, half_life_days=30.0)
    return built, built.times


@contextmanager
def switched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` set to ``value`` inside the block (a derivation switched off)."""
    kept = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, kept)


def fresh_and_derived(
    matrix: sp.csr_matrix, rounds: int, fresh: Callable[[], Any], base: Callable[[], Any],
    derived: Callable[[], Any],
) -> tuple[Any, Any, list[float], list[float]]:
    """``rounds`` interleaved timings (order flipped every round) of fitting ``fresh()``
    on ``matrix`` against deriving ``derived()`` from a fitted ``base()``: the last
    fresh and derived models, and the seconds of each fit and derivation."""
    fresh_s: list[float] = []
    derived_s: list[float] = []
    fresh_model = derived_model = None
    for r in range(rounds):
        for kind in (("fresh", "derived") if r % 2 == 0 else ("derived", "fresh")):
            if kind == "fresh":
                fresh_model = None  # one model of each kind in memory at a time
                fresh_model = fresh()
                started = time.perf_counter()
                fresh_model.fit(matrix)
                fresh_s.append(time.perf_counter() - started)
            else:
                derived_model = None
                fitted = base().fit(matrix)
                derived_model = derived()
                started = time.perf_counter()
                if not derived_model.derive_from(fitted, matrix):
                    raise RuntimeError("derivation refused")
                derived_s.append(time.perf_counter() - started)
                del fitted
    return fresh_model, derived_model, fresh_s, derived_s


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
