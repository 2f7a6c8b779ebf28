"""What alternating the staged search's stages buys the two ALS models (product protocol)

``movielens_seeds.py --protocol product`` searches each ALS model in two stages (its
factors, regularisation, alpha and iterations, then its session gap and weight). Run
once with one pass (the default, ``movielens_seeds_product_sessions``) and once with
``--max-alternations 4`` (``movielens_seeds_product_sessions_fixed_point``), the two
runs chose their parameters on the same splits. This study reads both runs' choices
per seed, refits each on train + validation of that seed's product-protocol split
through the evaluation's own code, and pairs the fixed point against the one pass per
user on test (stratified 95% interval over seeds), next to each run's search cost
(trials and seconds, from the runs' per-seed files). A refit reproduces its run's test
score, so the pairing is of the runs' own models.
Writes ``bench/results/staged_alternation.{json,md}``.

    .venv/bin/python bench/staged_alternation.py                 # seeds 0-3
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from _common import (
    RESULTS,
    drop_per_user,
    paired_to_reference,
    product_seed_runs,
    publish_study,
    seeds_parser,
    study_table,
)

RUNS = {"one pass": "movielens_seeds_product_sessions",
        "fixed point": "movielens_seeds_product_sessions_fixed_point"}
MODELS = ("als", "implicit_als")


def run_files(seed: int) -> dict[str, dict[str, Any]]:
    """Each run's per-seed result, keyed by run then model name."""
    out = {}
    for run, name in RUNS.items():
        payload = json.loads((RESULTS / f"{name}_seed{seed}.json").read_text())
        out[run] = {m["name"]: m for m in payload["models"]}
    return out


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    from fastinsight.recsys.evaluation.experiment import EvaluationConfig, evaluate_dataset
    from fastinsight.recsys.evaluation.runner import Candidate

    files = run_files(seed)
    candidates = tuple(Candidate(model, f"{model} ({run})", params=files[run][model]["params"],
                                 space={})
                       for model in MODELS for run in RUNS)
    evaluated = evaluate_dataset(data, EvaluationConfig(
        protocol="product", seed=seed, ks=(10,), metric="ndcg@10", algorithms=("popularity",),
        extra_candidates=candidates, complete=True, search_mode="grid"))
    results = {r.candidate.label: r for r in evaluated.results}
    models: dict[str, Any] = {}
    for model in MODELS:
        for run in RUNS:
            label, search = f"{model} ({run})", files[run][model]["search"]
            models[label] = {
                "params": files[run][model]["params"],
                "run_test_ndcg@10": files[run][model]["test"]["ndcg@10"],
                "refit_test_ndcg@10": results[label].test.metrics["ndcg@10"],
                "validation_ndcg@10": search["best_score"],
                "trials": search["trials_run"], "search_seconds": search["seconds"],
                "alternations": len((search.get("staged") or {}).get("alternations", [])),
                "fixed_point": (search.get("staged") or {}).get("fixed_point"),
                "per_user": results[label].test.per_user["ndcg@10"].tolist()}
    return {"seed": seed, "models": models}


def _mean(seeds: list[dict[str, Any]], label: str, key: str) -> float:
    return round(float(statistics.mean(s["models"][label][key] for s in seeds)), 4)


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for model in MODELS:
        one, fixed = (f"{model} ({run})" for run in RUNS)
        paired = paired_to_reference([s["models"][fixed]["per_user"] for s in seeds],
                                     [s["models"][one]["per_user"] for s in seeds])
        per_seed = [s["models"][fixed]["refit_test_ndcg@10"] - s["models"][one]["refit_test_ndcg@10"]
                    for s in seeds]

        rows.append({
            "model": model,
            "test one pass": _mean(seeds, one, "refit_test_ndcg@10"),
            "test fixed point": _mean(seeds, fixed, "refit_test_ndcg@10"),
            "difference": paired["diff"], "ci_low": paired["ci_low"], "ci_high": paired["ci_high"],
            "per seed": ", ".join(f"{d:+.4f}" for d in per_seed),
            "validation one pass": _mean(seeds, one, "validation_ndcg@10"),
            "validation fixed point": _mean(seeds, fixed, "validation_ndcg@10"),
            "trials one pass": _mean(seeds, one, "trials"), "trials fixed point": _mean(seeds, fixed, "trials"),
            "search s one pass": round(_mean(seeds, one, "search_seconds"), 1),
            "search s fixed point": round(_mean(seeds, fixed, "search_seconds"), 1),
            "alternations per seed": ", ".join(str(s["models"][fixed]["alternations"])
                                               for s in seeds),
            "fixed point reached": ", ".join(str(s["models"][fixed]["fixed_point"]) for s in seeds),
            "largest refit gap": round(max(abs(s["models"][label]["refit_test_ndcg@10"]
                                               - s["models"][label]["run_test_ndcg@10"])
                                           for s in seeds for label in (one, fixed)), 6),
        })
    return rows


def main() -> int:
    parser = seeds_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    seeds = product_seed_runs(args, run_seed)
    if seeds is None:
        return 2
    rows = summarise(seeds)
    drop_per_user(seeds, "models", "per_user")
    columns = ["model", "test one pass", "test fixed point", "difference", "ci_low", "ci_high",
               "per seed"]
    extra = {k: k for k in ("validation one pass", "validation fixed point", "trials one pass",
                            "trials fixed point", "search s one pass", "search s fixed point",
                            "alternations per seed", "fixed point reached")}
    md = ["# Staged search: one pass against alternating to a fixed point (product protocol)", "",
          f"Seeds {args.seeds}; `bench/staged_alternation.py`. Each run's chosen parameters "
          f"(`{RUNS['one pass']}`, `{RUNS['fixed point']}`: `--max-alternations 4`) refitted "
          "on train + validation and scored on test; difference = fixed point - one pass, "
          "paired per user, stratified 95% interval over seeds. Mean over seeds of test and "
          "validation NDCG@10, trials and search seconds (from the runs' per-seed files). "
          f"Largest gap between a refit and its run's test score: "
          f"{max(r['largest refit gap'] for r in rows)}.", "",
          *study_table(rows, columns, extra)]
    return publish_study(args, "staged_alternation",
                         {"protocol": "product (rating weights, lower ratings as context, times)",
                          "runs": RUNS, "summary": rows, "seeds": seeds}, md, rows,
                         [*columns, *extra])


if __name__ == "__main__":
    raise SystemExit(main())
