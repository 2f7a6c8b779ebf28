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

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import binary_movielens, seed_split, table, write_result
from _derive import search_both_ways, spread
from edlae_derive import synthetic_matrix

DEFAULT_DATA = Path("/work/shared/datasets/ml-latest-small")
BASE = {"factors": 128, "regularization": 20.0, "alpha": 5.0}


def _model(iterations: int, times: sp.csr_matrix | None) -> Any:
    from fastinsight.recsys.registry import create

    model = create("als", {**BASE, "iterations": iterations})
    model.set_interaction_times(times)
    return model


def one_fit(matrix: sp.csr_matrix, times: sp.csr_matrix | None, rounds: int) -> dict[str, Any]:
    fresh_s: list[float] = []
    continued_s: list[float] = []
    fresh = continued = None
    for r in range(rounds):
        for kind in (("fresh", "continued") if r % 2 == 0 else ("continued", "fresh")):
            if kind == "fresh":
                fresh = None
                fresh = _model(60, times)
                started = time.perf_counter()
                fresh.fit(matrix)
                fresh_s.append(time.perf_counter() - started)
            else:
                continued = None
                short = _model(15, times).fit(matrix)
                continued = _model(60, times)
                started = time.perf_counter()
                if not continued.derive_from(short, matrix):
                    raise RuntimeError("continuation refused")
                continued_s.append(time.perf_counter() - started)
                del short
    assert fresh is not None and continued is not None
    return {
        "items": int(matrix.shape[1]), "users": int(matrix.shape[0]), "nnz": int(matrix.nnz),
        "params": BASE, "fresh_seconds": spread(fresh_s), "continued_seconds": spread(continued_s),
        "saving_by_round": [round(1 - c / f, 3) for f, c in zip(fresh_s, continued_s, strict=True)],
        "identical_factors": bool(np.array_equal(fresh._items, continued._items)
                                  and np.array_equal(fresh._users, continued._users)),
    }


@contextmanager
def _switched_off(algorithm: str) -> Iterator[None]:
    from fastinsight.recsys.als import ALSRecommender
    from fastinsight.recsys.evaluation.external import ImplicitRanker

    if algorithm == "als":
        declared = ALSRecommender.derived_params
        ALSRecommender.derived_params = ()
        try:
            yield
        finally:
            ALSRecommender.derived_params = declared
    else:
        derivable = ImplicitRanker.derivable
        ImplicitRanker.derivable = {}
        try:
            yield
        finally:
            ImplicitRanker.derivable = derivable


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
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
            "search": {a: search_both_ways(a, split, None, args.search_rounds,
                                           lambda a=a: _switched_off(a))
                       for a in ("als", "implicit_als")},
        }
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
