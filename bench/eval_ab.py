"""Offline evaluation, a reference commit against this tree in one run: same answers, same speed?

Each tree evaluates the same fixed configurations (the parameters the committed
``results/movielens_eval.json`` chose, no search, so nothing depends on a time budget)
on ml-latest-small, in a fresh process importing that tree's code; runs alternate
between the trees (``--repeat`` each, order flipped every run). Test metrics must be
identical between the trees; fit and scoring (ranking every test user over the full
catalogue) times are reported as medians with their spread and the per-run ratio.

    .venv/bin/python bench/eval_ab.py --base-ref aa86e50 [--repeat 3] [--models ease,als]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _common import ROOT, checkout_ref, drop_checkout, head, table, write_result

DEFAULT_DATA = Path("/work/shared/datasets/ml-latest-small")
COMMITTED = Path(__file__).resolve().parent / "results" / "movielens_eval.json"
DEFAULT_MODELS = "popularity,itemknn,ease,als,two_tower,implicit_als"


def worker(data_dir: Path, models: list[str]) -> dict[str, Any]:
    from fastinsight.recsys.evaluation.data import load_movielens
    from fastinsight.recsys.evaluation.experiment import EvaluationConfig, run_evaluation
    from fastinsight.recsys.evaluation.runner import Candidate

    chosen = {m["name"]: m["params"] for m in json.loads(COMMITTED.read_text())["models"]}
    data = load_movielens(data_dir, min_rating=4.0)
    config = EvaluationConfig(
        split="random", validation=0.1, test=0.1, seed=0, min_positives=5, ks=(10, 20),
        metric="ndcg@10", algorithms=(), search=False, context=True,
        extra_candidates=tuple(Candidate(name, params=chosen[name], space={}) for name in models),
    )
    report = run_evaluation(data, config)
    return {m["name"]: {"test": m["test"], "fit_seconds": m["fit_seconds"],
                        "score_seconds": m["score_seconds"]} for m in report["models"]}


def run(tree: Path, data_dir: Path, models: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", str(data_dir),
           "--models", ",".join(models)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(tree / "src")})
    if done.returncode != 0:
        raise SystemExit(f"evaluation in {tree} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-ref", default="")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    if args.worker:
        print(json.dumps(worker(args.data, models)))
        return
    if not args.base_ref:
        raise SystemExit("--base-ref is required")
    base = checkout_ref(args.base_ref)
    runs: list[dict[str, Any]] = []
    try:
        for r in range(args.repeat):
            order = [("this tree", ROOT), ("base", base)]
            for label, tree in order if r % 2 == 0 else order[::-1]:
                print(f"run {r + 1}: {label} ...", file=sys.stderr, flush=True)
                runs.append({"code": label, "run": r + 1, "models": run(tree, args.data, models)})
    finally:
        drop_checkout(base)
    rows, summary = [], {}
    for name in models:
        side = {label: [x["models"][name] for x in runs if x["code"] == label] for label in ("base", "this tree")}
        metrics = [json.dumps(m["test"], sort_keys=True) for ms in side.values() for m in ms]
        entry: dict[str, Any] = {"identical_test_metrics": len(set(metrics)) == 1,
                                 "ndcg@10": {label: sorted({m["test"]["ndcg@10"] for m in ms})
                                             for label, ms in side.items()}}
        for what in ("fit_seconds", "score_seconds"):
            values = {label: [m[what] for m in ms] for label, ms in side.items()}
            ratios = [h / b for b, h in zip(values["base"], values["this tree"], strict=True) if b > 0]
            entry[what] = {**{label: spread(v) for label, v in values.items()},
                           "ratio this tree / base, by run": [round(x, 3) for x in ratios],
                           "ratio median": round(float(np.median(ratios)), 3) if ratios else None}
        summary[name] = entry
        rows.append({"model": name, "same metrics": entry["identical_test_metrics"],
                     "ndcg@10": f"{entry['ndcg@10']['this tree'][0]:.5f}",
                     "fit s (base)": entry["fit_seconds"]["base"]["median"],
                     "fit s (this)": entry["fit_seconds"]["this tree"]["median"],
                     "score s (base)": entry["score_seconds"]["base"]["median"],
                     "score s (this)": entry["score_seconds"]["this tree"]["median"],
                     "score ratio": entry["score_seconds"]["ratio median"]})
    out = {"benchmark": "eval_ab", "base_ref": args.base_ref, "head": head(), "repeat": args.repeat,
           "protocol": "ml-latest-small, ratings >= 4 positives, lower ratings as context, users >= 5, "
                       "random 80/10/10 seed 0, fixed parameters from results/movielens_eval.json",
           "summary": summary, "runs": runs}
    print(json.dumps(out, indent=2))
    print(table(rows, list(rows[0])))
    write_result("eval_ab", out)


if __name__ == "__main__":
    main()
