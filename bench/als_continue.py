"""ALS runs continued for more iterations, against fresh fits (ours and implicit's).

A search over ALS's default space runs each (factors, regularisation, alpha, sessions)
group's shorter run first and continues it for the longer one instead of starting over
(``ALSRecommender.derive_from``, ``ImplicitRanker.derive``; docs/evaluation.md). This
measures, in one run:

* **one fit**: a fresh fit of 60 iterations against continuing a fitted 15-iteration
  model for 45 more, rounds interleaved (order flipped every round), median and min-max;
  and whether the two models' factors are equal to the bit;
* **one search**: the complete search of the default grid of our ALS and of implicit's
  ALS (the reference) through ``evaluate_candidate``, with continuations and with them
  switched off, rounds interleaved: seconds, trials continued, and whether both choose
  the same parameters with the same validation NDCG@10.

Data: synthetic interactions of ``bench/train.py``'s kind with their times (session
rows are part of each fit), and ml-latest-small under the binary protocol (seed 0 split)
when ``--data`` has it.

    .venv/bin/python bench/als_continue.py            # writes results/als_continue.json
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import table, write_result
from _derive import fresh_and_derived, run_study, search_both_ways, spread, switched

BASE = {"factors": 128, "regularization": 20.0, "alpha": 5.0}


def _model(iterations: int, times: sp.csr_matrix | None) -> Any:
    from fastinsight.recsys.registry import create

    model = create("als", {**BASE, "iterations": iterations})
    model.set_interaction_times(times)
    return model


def one_fit(matrix: sp.csr_matrix, times: sp.csr_matrix | None, rounds: int) -> dict[str, Any]:
    fresh, continued, fresh_s, continued_s = fresh_and_derived(
        matrix, rounds, lambda: _model(60, times), lambda: _model(15, times),
        lambda: _model(60, times))
    assert fresh is not None and continued is not None
    return {
        "items": int(matrix.shape[1]), "users": int(matrix.shape[0]), "nnz": int(matrix.nnz),
        "params": BASE, "fresh_seconds": spread(fresh_s), "continued_seconds": spread(continued_s),
        "saving_by_round": [round(1 - c / f, 3) for f, c in zip(fresh_s, continued_s, strict=True)],
        "identical_factors": bool(np.array_equal(fresh._items, continued._items)
                                  and np.array_equal(fresh._users, continued._users)),
    }


def _switched_off(algorithm: str) -> AbstractContextManager[None]:
    from fastinsight.recsys.als import ALSRecommender
    from fastinsight.recsys.evaluation.external import ImplicitRanker

    if algorithm == "als":
        return switched(ALSRecommender, "derived_params", ())
    return switched(ImplicitRanker, "derivable", {})


def searches(split: Any, rounds: int) -> dict[str, Any]:
    return {a: search_both_ways(a, split, None, rounds, lambda a=a: _switched_off(a))
            for a in ("als", "implicit_als")}


def main() -> int:
    args, out = run_study(__doc__ or "", one_fit, searches)
    rows = []
    for name in ("synthetic", "movielens_binary_seed0"):
        if name in out:
            fit = out[name]["one_fit"]
            rows.append({"data": name, "items": fit["items"],
                         "fresh 60 s": fit["fresh_seconds"]["median"],
                         "15 + 45 more s": fit["continued_seconds"]["median"],
                         "saving (min-max)": f"{min(fit['saving_by_round']):.0%}-"
                                             f"{max(fit['saving_by_round']):.0%}",
                         "identical": fit["identical_factors"]})
    print(table(rows, list(rows[0])))
    for algorithm, search in out.get("movielens_binary_seed0", {}).get("search", {}).items():
        print(table([{"search": f"{algorithm} {k}", **v}
                     for k, v in search["search_seconds"].items()],
                    ["search", "median", "min", "max"]))
        print(f"trials {search['trials']}, continued {search['derived_trials']}, "
              f"same choice {search['same_choice']}, best {search['best_score']}")
    if not args.no_write:
        print(write_result("als_continue", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
