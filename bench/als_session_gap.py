"""Does implicit's ALS gain from the session gap EASE searches? (product protocol, over seeds)

Superseded: both ALS models now search their sessions by default (a second search
stage, ``spaces.STAGED``), and ``movielens_seeds_product_sessions`` reproduces this
study's figures. It stays to reproduce ``als_session_gap.json`` from the run before
that change, in which EASE searched its session gap and weight ({0, 5, 30} minutes x
{0.5, 1, 2}) while both ALS rows kept the default 30-minute gap and weight 1. It asks
whether the reference was held back by that: on each seed, implicit's ALS keeps the
factors, regularisation, alpha and iterations its own complete search chose there (read
from ``bench/results/movielens_seeds_product_sessions_before_als_sessions.json``) and
searches EASE's session
grid on validation (a choice on the grid's edge is widened up to twice); the choice is
refitted on train + validation and scored on test,
next to the same ALS at the default gap and EASE with its chosen parameters, all on the
product protocol's split of that seed, through the evaluation's own code. Differences
are paired per user against EASE and pooled over seeds (stratified interval).
Writes ``bench/results/als_session_gap.{json,md}``.

    .venv/bin/python bench/als_session_gap.py                 # seeds 0-3
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from _common import (
    drop_per_user,
    paired_to_reference,
    product_seed_runs,
    publish_study,
    seeds_parser,
)

COMMITTED = (Path(__file__).resolve().parent / "results"
             / "movielens_seeds_product_sessions_before_als_sessions.json")
SESSION_SPACE = {"session_gap_seconds": [0.0, 300.0, 1800.0], "session_weight": [0.5, 1.0, 2.0]}
ROWS = ("ease", "implicit_als (30-minute gap)", "implicit_als (gap searched)")


def chosen_params(seed: int) -> dict[str, dict[str, Any]]:
    committed = json.loads(COMMITTED.read_text())
    index = committed["seeds"].index(seed)
    out = {}
    for model in committed["models"]:
        if model["name"] in ("ease", "implicit_als"):
            out[model["name"]] = dict(model["seeds"][index]["params"])
    return out


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    from fastinsight.recsys.evaluation.experiment import EvaluationConfig, evaluate_dataset
    from fastinsight.recsys.evaluation.runner import Candidate

    params = chosen_params(seed)
    als = {k: v for k, v in params["implicit_als"].items() if k not in SESSION_SPACE}
    candidates = (
        Candidate("ease", params=params["ease"], space={}),
        Candidate("implicit_als", ROWS[1], params={**als, "session_gap_seconds": 1800.0,
                                                   "session_weight": 1.0}, space={}),
        Candidate("implicit_als", ROWS[2], params=als, space=SESSION_SPACE, try_defaults=False),
    )
    run = evaluate_dataset(data, EvaluationConfig(
        protocol="product", seed=seed, ks=(10,), metric="ndcg@10", algorithms=("popularity",),
        extra_candidates=candidates, complete=True, max_widenings=2, search_mode="grid"))
    results = {r.candidate.label: r for r in run.results}
    return {"seed": seed, "models": {
        label: {"params": {k: results[label].params.get(k) for k in SESSION_SPACE},
                "validation_ndcg@10": results[label].validation.get("ndcg@10"),
                "test_ndcg@10": results[label].test.metrics["ndcg@10"],
                "per_user": results[label].test.per_user["ndcg@10"].tolist()}
        for label in ROWS}}


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    reference = [s["models"]["ease"]["per_user"] for s in seeds]
    for label in ROWS:
        paired = paired_to_reference([s["models"][label]["per_user"] for s in seeds], reference)
        rows.append({
            "model": label, "test_ndcg@10": round(paired["mean"], 4),
            "vs_ease": paired["diff"], "ci_low": paired["ci_low"], "ci_high": paired["ci_high"],
            "validation_ndcg@10": round(statistics.mean(
                s["models"][label]["validation_ndcg@10"] or 0.0 for s in seeds), 4),
            "gap, weight per seed": "; ".join(
                f"{s['models'][label]['params']['session_gap_seconds']:g}, "
                f"{s['models'][label]['params']['session_weight']:g}" for s in seeds),
        })
    return rows


def main() -> int:
    parser = seeds_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    seeds = product_seed_runs(args, run_seed)
    if seeds is None:
        return 2
    rows = summarise(seeds)
    columns = ["model", "test_ndcg@10", "vs_ease", "ci_low", "ci_high", "validation_ndcg@10",
               "gap, weight per seed"]
    drop_per_user(seeds, "models", "per_user")
    md = ["# implicit ALS with a searched session gap (product protocol)", "",
          f"Seeds {args.seeds}; `bench/als_session_gap.py`; ALS keeps each seed's chosen "
          "parameters from `movielens_seeds_product_sessions.json` and searches the session "
          "gap and weight on validation; paired 95% interval of the per-user difference to "
          "EASE (stratified bootstrap within seeds).", "",
          "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return publish_study(args, "als_session_gap",
                         {"protocol": "product (rating weights, lower ratings as context, times)",
                          "summary": rows, "seeds": seeds}, md, rows, columns)


if __name__ == "__main__":
    raise SystemExit(main())
