"""Our models vs EASE and implicit's ALS on MovieLens over several seeds; headline = the mean.

For each seed (a different random 80/10/10 split and search order) every model is tuned
on validation NDCG@10, refitted on train + validation and scored on test, under one
protocol (default ``binary``: ratings >= 4 of weight 1 are the only input, for every
model and reference alike). Searches are complete by default (every trial of every grid,
edges widened until the best point is interior or a limit is hit), so no clock decides
anything. The headline is the mean over seeds of our best model (chosen on mean
validation NDCG@10) against EASE tuned on the same seeds, with a paired 95% interval
of the per-user differences (stratified bootstrap within seeds; see
``fastinsight.recsys.evaluation.seeds``). Each blend is also run without each Keras
model (paired ablations), and item-kNN with each neighbour selection fixed; neither
kind of row is a headline candidate (production never serves them). Writes
``bench/results/<name>.{json,md}``, ``bench/results/plots/<name>_ndcg.png`` and one
full report per seed (``<name>_seed<N>.{json,md}``). README/docs quote figures from
these files only.

    .venv/bin/python bench/movielens_seeds.py                       # seeds 0-3, complete
    .venv/bin/python bench/movielens_seeds.py --seeds 0 --algorithms ease,edlae
    .venv/bin/python bench/movielens_seeds.py --protocol product    # the product's inputs
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from fastinsight.recsys.evaluation.data import load_movielens
from fastinsight.recsys.evaluation.experiment import (
    KERAS_MODELS,
    PROTOCOLS,
    EvaluationConfig,
    EvaluationRun,
    evaluate_dataset,
)
from fastinsight.recsys.evaluation.report import write_report
from fastinsight.recsys.evaluation.runner import Candidate
from fastinsight.recsys.evaluation.seeds import plot_seeds, seeds_markdown, summarise_seeds
from fastinsight.recsys.evaluation.spaces import default_space

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path("/work/shared/datasets/ml-latest-small")


def _knn_selections() -> tuple[Candidate, ...]:
    """item-kNN with each neighbour selection fixed, searched over the rest of its space,
    so both are reported side by side (the ``itemknn`` row searches the selection too)."""
    space = {k: v for k, v in default_space("itemknn").items() if k != "selection"}
    return tuple(Candidate("itemknn", name=f"itemknn ({side})", params={"selection": side},
                           space=space) for side in ("source", "target"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="binary")
    parser.add_argument("--algorithms", default="",
                        help="comma-separated (default: all registered + implicit_als)")
    parser.add_argument("--reference", default="ease", help="model the headline compares with")
    parser.add_argument("--budget", dest="complete", action="store_false",
                        help="time-budgeted searches instead of complete ones")
    parser.add_argument("--budget-seconds", type=float, default=80.0)
    parser.add_argument("--max-widenings", type=int, default=3)
    parser.add_argument("--max-alternations", type=int, default=0,
                        help="staged searches: more alternations of their two stages")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="movielens_seeds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("bench.movielens_seeds")
    log.setLevel(logging.INFO)

    started = time.perf_counter()
    data = load_movielens(args.data, min_rating=4.0)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    algorithms = tuple(a for a in args.algorithms.split(",") if a) or None
    if algorithms is None:
        from fastinsight.recsys.evaluation.experiment import registered_algorithms

        algorithms = (*registered_algorithms(), "implicit_als")
    command = "python bench/movielens_seeds.py " + " ".join(sys.argv[1:])
    runs: dict[int, EvaluationRun] = {}
    seconds: dict[int, float] = {}
    for seed in seeds:
        t0 = time.perf_counter()
        config = EvaluationConfig(
            protocol=args.protocol, seed=seed, ks=(10, 20), metric="ndcg@10",
            algorithms=algorithms, complete=args.complete, budget_seconds=args.budget_seconds,
            max_widenings=args.max_widenings, max_alternations=args.max_alternations,
            search_mode="grid", ablate=KERAS_MODELS,
            extra_candidates=_knn_selections() if "itemknn" in algorithms else (),
            extra={"min_rating": 4.0, "command": command},
        )
        runs[seed] = evaluate_dataset(data, config)
        seconds[seed] = round(time.perf_counter() - t0, 1)
        write_report(runs[seed].report, args.out, f"{args.name}_seed{seed}")
        log.info("seed %d done in %.0fs", seed, seconds[seed])
    summary = summarise_seeds(runs, reference=args.reference, metric="ndcg@10",
                              exclude=[c.label for c in _knn_selections()])
    result = {
        "command": command, "protocol": args.protocol,
        "search": "complete" if args.complete else f"budget {args.budget_seconds:g}s",
        "seconds_per_seed": seconds, "wall_seconds": round(time.perf_counter() - started, 1),
        **summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = seeds_markdown(summary, f"MovieLens over seeds, protocol {args.protocol}")
    (args.out / f"{args.name}.md").write_text(
        text + f"\nSearch: {result['search']}; seconds per seed: {seconds}.\n")
    plot_seeds(summary, args.out / "plots" / f"{args.name}_ndcg.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
