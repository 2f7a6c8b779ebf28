"""item-kNN with its similarity shrink searched, against the default grid without it.

For issue 20. ``shrink`` discounts pairs of items seen together by few users
(``dot / (|a| |b| + shrink)``); the usual tuning of item-kNN searches it, the default
grid leaves it at 0. Now that a search computes the similarities once per (weighting,
shrink) and cuts every smaller ``k`` from that fit, searching it costs a few fits more.
For each seed, under the binary protocol, two complete searches (every trial, edges
widened), each refitted on train + validation and scored on test: the default grid,
and the default grid with ``shrink`` in ``SHRINK``. Paired per-user difference (with
shrink minus without), stratified over seeds. Writes
``bench/results/itemknn_shrink.{json,md}``.

    .venv/bin/python bench/itemknn_shrink.py                  # seeds 0-3
"""

from __future__ import annotations

from typing import Any

from _common import (
    BINARY_PROTOCOL,
    binary_seed_runs,
    drop_per_user,
    paired_to_reference,
    publish_study,
    seed_split,
    seeds_parser,
    study_table,
)
from fastinsight.recsys.evaluation.runner import Candidate, evaluate_candidate
from fastinsight.recsys.evaluation.spaces import default_space

SHRINK = [0.0, 10.0, 50.0, 200.0]
VARIANTS = ("without shrink", "shrink searched")


def _search(parts: Any, space: dict[str, list[Any]]) -> dict[str, Any]:
    result = evaluate_candidate(
        Candidate("itemknn", space=space), parts.train, parts.split.validation,
        parts.split.test, [10], complete=True, metric="ndcg@10", seed=0,
    )
    assert result.search is not None
    info = result.search.to_dict()
    trials = len(result.search.trials)
    return {
        "params": {k: result.params[k] for k in ("k", "weighting", "selection", "shrink")},
        "validation_ndcg@10": result.validation["ndcg@10"],
        "test_ndcg@10": result.test.metrics["ndcg@10"],
        "test_recall@10": result.test.metrics["recall@10"],
        "trials": trials, "fits": trials - info["derived_trials"] - info["repeated_trials"],
        "search_seconds": round(result.search.seconds, 1), "on_edge": result.search.on_edge(),
        "per_user_ndcg": result.test.per_user["ndcg@10"].tolist(),
    }


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    parts = seed_split(data, seed)
    plain = default_space("itemknn")
    return {"seed": seed, "variants": {
        VARIANTS[0]: _search(parts, plain),
        VARIANTS[1]: _search(parts, {**plain, "shrink": SHRINK}),
    }}


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reference = [s["variants"][VARIANTS[0]]["per_user_ndcg"] for s in seeds]
    out = []
    for name in VARIANTS:
        runs = [s["variants"][name] for s in seeds]
        paired = paired_to_reference([r["per_user_ndcg"] for r in runs], reference)
        out.append({
            "variant": name, "test_ndcg@10": round(paired["mean"], 4), "diff": paired["diff"],
            "ci_low": paired["ci_low"], "ci_high": paired["ci_high"],
            "validation_ndcg@10": round(sum(r["validation_ndcg@10"] for r in runs) / len(runs), 4),
            "test_recall@10": round(sum(r["test_recall@10"] for r in runs) / len(runs), 4),
            "fits per seed": ", ".join(str(r["fits"]) for r in runs),
            "search s per seed": ", ".join(str(r["search_seconds"]) for r in runs),
            "shrink per seed": ", ".join(str(r["params"]["shrink"]) for r in runs),
        })
    return out


def main() -> int:
    args = seeds_parser(__doc__.splitlines()[0]).parse_args()
    seeds = binary_seed_runs(args, run_seed)
    if seeds is None:
        return 2
    rows = summarise(seeds)
    drop_per_user(seeds, "variants")
    columns = ["variant", "test_ndcg@10", "diff", "ci_low", "ci_high", "validation_ndcg@10",
               "test_recall@10", "fits per seed", "search s per seed", "shrink per seed"]
    md = ["# item-kNN with the similarity shrink searched", "",
          f"Seeds {args.seeds}; `bench/itemknn_shrink.py`; {BINARY_PROTOCOL}; complete "
          f"searches of the default item-kNN grid, and of it with shrink in {SHRINK}; "
          "differences are to the search without shrink, paired per user, 95% interval "
          "stratified over seeds.", ""]
    md += study_table(rows, columns, {})
    md += ["", "Chosen parameters per seed:", ""]
    md += [f"* seed {s['seed']}: " + "; ".join(
        f"{name} {v['params']} (validation {v['validation_ndcg@10']:.4f})"
        for name, v in s["variants"].items()) for s in seeds]
    return publish_study(args, "itemknn_shrink", {"summary": rows, "seeds": seeds}, md, rows,
                         columns)


if __name__ == "__main__":
    raise SystemExit(main())
