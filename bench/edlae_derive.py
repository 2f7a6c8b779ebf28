"""EDLAE's diagonal variants derived from one factorisation, against fresh fits.

A search over EDLAE's default space fits every (λ, dropout, sessions) group once and
derives the other values of ``max_diagonal`` (and DLAE) from it by rescaling columns
(``Recommender.derive_from``, docs/evaluation.md). This measures, in one run:

* **one fit**: a fresh fit of ``max_diagonal=0.2`` against deriving it from a fitted
  ``max_diagonal=0``, rounds interleaved (order flipped every round), median and
  min-max; and how close the two models are (largest weight difference relative to the
  largest weight, share of users whose top 10 is identical);
* **one search**: the complete search of the default EDLAE grid through
  ``evaluate_candidate``, with derivations and with them switched off (the class's
  ``derived_params`` emptied), rounds interleaved: seconds, trials derived, and whether
  both choose the same parameters with the same validation NDCG@10.

Data: synthetic interactions of ``bench/train.py``'s kind (with their times, so the
session term is part of each factorisation), and ml-latest-small under the binary
protocol (seed 0 split) when ``--data`` has it.

    .venv/bin/python bench/edlae_derive.py            # writes results/edlae_derive.json
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import table, write_result
from _derive import fresh_and_derived, run_study, search_both_ways, spread, switched

BASE = {"l2": 50.0, "dropout": 0.25}


def _model(params: dict[str, Any], times: sp.csr_matrix | None) -> Any:
    from fastinsight.recsys.registry import create

    model = create("edlae", {**BASE, **params})
    model.set_interaction_times(times)
    return model


def one_fit(matrix: sp.csr_matrix, times: sp.csr_matrix | None, rounds: int) -> dict[str, Any]:
    fresh, derived, fresh_s, derived_s = fresh_and_derived(
        matrix, rounds, lambda: _model({"max_diagonal": 0.2}, times),
        lambda: _model({"max_diagonal": 0.0}, times), lambda: _model({"max_diagonal": 0.2}, times))
    assert fresh is not None and derived is not None
    a, b = fresh._state_arrays()["weights"], derived._state_arrays()["weights"]
    users = np.flatnonzero(np.diff(matrix.indptr))[:3000]
    top_a, _ = fresh.recommend_many(matrix[users], 10)
    top_b, _ = derived.recommend_many(matrix[users], 10)
    return {
        "items": int(matrix.shape[1]), "users": int(matrix.shape[0]), "nnz": int(matrix.nnz),
        "fresh_seconds": spread(fresh_s), "derived_seconds": spread(derived_s),
        "speedup_by_round": [round(f / d, 1) for f, d in zip(fresh_s, derived_s, strict=True)],
        "max_relative_weight_difference": float(np.abs(a - b).max() / np.abs(a).max()),
        "users_compared": int(users.size),
        "same_top10_share": round(float(np.all(top_a == top_b, axis=1).mean()), 4),
    }


def one_search(split: Any, rounds: int) -> dict[str, Any]:
    from fastinsight.recsys.edlae import EDLAERecommender

    return search_both_ways("edlae", split, None, rounds,
                            lambda: switched(EDLAERecommender, "derived_params", ()))


def main() -> int:
    args, out = run_study(__doc__ or "", one_fit, one_search)
    rows = []
    for name in ("synthetic", "movielens_binary_seed0"):
        if name in out:
            fit = out[name]["one_fit"]
            rows.append({"data": name, "items": fit["items"],
                         "fresh s": fit["fresh_seconds"]["median"],
                         "derived s": fit["derived_seconds"]["median"],
                         "speedup (min-max)": f"{min(fit['speedup_by_round'])}-"
                                              f"{max(fit['speedup_by_round'])}",
                         "max rel diff": f"{fit['max_relative_weight_difference']:.1e}",
                         "same top 10": fit["same_top10_share"]})
    print(table(rows, list(rows[0])))
    if "movielens_binary_seed0" in out:
        search = out["movielens_binary_seed0"]["search"]
        print(table([{"search": k, **v} for k, v in search["search_seconds"].items()],
                    ["search", "median", "min", "max"]))
        print(f"trials {search['trials']}, derived {search['derived_trials']}, "
              f"same choice {search['same_choice']}, best {search['best_score']}")
    if not args.no_write:
        print(write_result("edlae_derive", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
