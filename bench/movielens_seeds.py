"""Is the MovieLens lift a property of one split? EASE vs implicit's ALS over several seeds.

EASE is searched over its default space, sessions included (the session gap 0 means
none were chosen).

For each seed (a different random 80/10/10 split and search order) and each protocol
(default: lower ratings are training input; ``positives-only``: they are not), both
models are tuned on validation NDCG@10 with the same budget as ``movielens_eval.py``,
refitted on train + validation and scored on test. Prints JSON and a table; writes
``bench/results/movielens_seeds.{json,md}``.

    .venv/bin/python bench/movielens_seeds.py                  # seeds 0-3, about 16 min
    .venv/bin/python bench/movielens_seeds.py --seeds 0,1 --budget-seconds 20
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fastinsight.recsys.evaluation.data import load_movielens
from fastinsight.recsys.evaluation.experiment import EvaluationConfig, run_evaluation

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path("/work/shared/datasets/ml-latest-small")
PROTOCOLS = {"with lower ratings": True, "positives-only": False}


def _row(report: dict[str, Any], seed: int, protocol: str) -> dict[str, Any]:
    models = {m["name"]: m for m in report["models"]}
    comparison = report["comparison"]
    boot = comparison["paired_bootstrap"]
    return {
        "seed": seed, "protocol": protocol,
        "ease": comparison["ours_test"], "implicit_als": comparison["external_test"],
        "lift": comparison["relative_lift"], "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
        "ease_l2": models["ease"]["params"]["l2"],
        "ease_sessions": {k: models["ease"]["params"][k]
                          for k in ("session_gap_seconds", "session_weight")},
        "als_params": {k: models["implicit_als"]["params"][k]
                       for k in ("factors", "regularization", "alpha", "iterations")},
    }


def _sessions(params: dict[str, float]) -> str:
    gap = params["session_gap_seconds"]
    return "none" if gap <= 0 else f"{gap:g} ({params['session_weight']:g})"


def _table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        "| seed | protocol | EASE NDCG@10 | implicit ALS NDCG@10 | lift | paired 95% CI | EASE λ "
        "| EASE session gap s (weight) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['protocol']} | {r['ease']:.4f} | {r['implicit_als']:.4f} | "
            f"{r['lift'] * 100:+.1f}% | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | "
            f"{r['ease_l2']:g} | {_sessions(r['ease_sessions'])} |")
    lines.append("")
    for protocol, s in summary.items():
        lines.append(f"- {protocol}: lift mean {s['mean_lift'] * 100:+.1f}%, min "
                     f"{s['min_lift'] * 100:+.1f}%, max {s['max_lift'] * 100:+.1f}% over "
                     f"{s['seeds']} seeds")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--budget-seconds", type=float, default=80.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("bench.movielens_seeds")
    log.setLevel(logging.INFO)

    started = time.perf_counter()
    data = load_movielens(args.data, min_rating=4.0)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for protocol, context in PROTOCOLS.items():
            config = EvaluationConfig(
                seed=seed, ks=(10,), metric="ndcg@10", algorithms=("ease", "implicit_als"),
                budget_seconds=args.budget_seconds, context=context,
            )
            rows.append(_row(run_evaluation(data, config), seed, protocol))
            log.info("%s", rows[-1])
    summary = {}
    for protocol in PROTOCOLS:
        lifts = [r["lift"] for r in rows if r["protocol"] == protocol]
        summary[protocol] = {"seeds": len(lifts), "mean_lift": round(statistics.mean(lifts), 4),
                             "min_lift": min(lifts), "max_lift": max(lifts)}
    result = {
        "command": "python bench/movielens_seeds.py " + " ".join(sys.argv[1:]),
        "budget_seconds": args.budget_seconds, "rows": rows, "summary": summary,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    table = _table(rows, summary)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "movielens_seeds.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "movielens_seeds.md").write_text(
        "# EASE vs implicit ALS on MovieLens over seeds\n\n" + table + "\n")
    print(json.dumps(result, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
