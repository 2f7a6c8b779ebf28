"""Offline evaluation on MovieLens (ml-latest-small): our models vs implicit's ALS and BPR.

Protocol (docs/evaluation.md): positives are ratings >= 4; users with >= 5 positives;
seeded random per-user 80/10/10 split of the positives, and on their own of the lower
ratings, which are training input but never relevant (``--positives-only`` drops them);
each model tuned on validation NDCG@10 within a time budget, refitted on
train+validation, reported on test over the full catalogue.
Every model registered in ``fastinsight.recsys.registry`` is included automatically.
Writes ``bench/results/movielens_eval.{json,md}`` and ``bench/results/plots/*.png``.

    .venv/bin/python bench/movielens_eval.py
    .venv/bin/python bench/movielens_eval.py --budget-seconds 20 --algorithms ease,implicit_als
    .venv/bin/python bench/movielens_eval.py --positives-only --name movielens_eval_positives_only
    .venv/bin/python bench/movielens_eval.py --split temporal --algorithms ease,implicit_als \
        --no-defaults-row --name movielens_eval_temporal
    .venv/bin/python bench/movielens_eval.py --protocol binary --complete \
        --name movielens_eval_binary     # the standard binary-positives protocol

``--complete`` runs every trial of every grid (no time budget) and widens grids whose
best point lies on an edge; the committed results should use it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from fastinsight.recsys.evaluation.data import load_movielens
from fastinsight.recsys.evaluation.experiment import PROTOCOLS, EvaluationConfig, run_evaluation
from fastinsight.recsys.evaluation.report import markdown, write_report
from fastinsight.recsys.evaluation.runner import Candidate

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path("/work/shared/datasets/ml-latest-small")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget-seconds", type=float, default=80.0)
    parser.add_argument("--algorithms", default="", help="comma-separated (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("random", "temporal"), default="random")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="movielens_eval")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="product",
                        help="binary: ratings >= 4 of weight 1 are the only input")
    parser.add_argument("--complete", action="store_true",
                        help="every trial of every grid, edges widened; no time budget")
    parser.add_argument("--positives-only", action="store_true",
                        help="train on ratings >= 4 alone (lower ratings not seen at all)")
    parser.add_argument("--no-defaults-row", dest="with_defaults", action="store_false",
                        help="skip the untuned implicit_als row")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("fastinsight.recsys.base", "fastinsight.recsys.two_tower_net", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    started = time.perf_counter()
    data = load_movielens(args.data, min_rating=4.0)
    load_seconds = time.perf_counter() - started
    algorithms = tuple(a for a in args.algorithms.split(",") if a) or None
    config = EvaluationConfig(
        protocol=args.protocol, complete=args.complete, split=args.split, validation=0.1, test=0.1, seed=args.seed, min_positives=5,
        ks=(5, 10, 20, 50), metric="ndcg@10", algorithms=algorithms, search=True,
        budget_seconds=args.budget_seconds, search_mode="random",
        context=not args.positives_only,
        # What tuning the reference is worth (the comparison uses the tuned one), and
        # what EASE's sessions are worth (the same model without them, l2 searched).
        extra_candidates=(
            *((Candidate("implicit_als", name="implicit_als (defaults)", space={}),)
              if args.with_defaults else ()),
            Candidate("ease", name="ease (no sessions)", params={"session_gap_seconds": 0.0},
                      space={"l2": [50.0, 100.0, 200.0, 400.0, 800.0]}),
        ),
        extra={"min_rating": 4.0, "command": "python bench/movielens_eval.py "
               + " ".join(sys.argv[1:])},
    )
    report = run_evaluation(data, config)
    report["timings"]["load_seconds"] = round(load_seconds, 2)
    report["timings"]["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_report(report, args.out, args.name)

    summary = {
        m["name"]: {"kind": m["kind"], "ndcg@10": m["test"]["ndcg@10"],
                    "recall@10": m["test"]["recall@10"], "coverage@10": m["test"]["coverage@10"],
                    "fit_seconds": m["fit_seconds"]}
        for m in report["models"]
    }
    print(json.dumps({"models": summary, "comparison": report["comparison"],
                      "timings": report["timings"]}, indent=2))
    print(markdown(report).split("\n## ")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
