"""Two-tower early stopping on MovieLens: refits with and without ``min_epochs``.

Binary protocol (as ``movielens_seeds.py --protocol binary``), each seed's two-tower
parameters as chosen by that benchmark (``bench/results/movielens_seeds_binary_seed<N>.json``).
For ``min_epochs`` 0 (the behaviour before it existed) and 10 (the default), the model is
fitted on train (scored on validation) and on train + validation (scored on test), as
the evaluation does; the table gives the epochs run, the epoch whose weights were kept,
NDCG@10 and Coverage@10. Writes ``two_tower_refit.{json,md}`` to ``--out``.

    .venv/bin/python bench/two_tower_refit.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, binary_seed_runs, head, seed_split, seeds_parser, table, write_study
from fastinsight.recsys.evaluation.metrics import (
    catalogue_metrics,
    exclude_seen,
    item_popularity,
    ranking_metrics,
    top_k_from_scores,
)
from fastinsight.recsys.registry import create

MIN_EPOCHS = (0, 10)


def _chosen_params(seed: int) -> dict[str, Any]:
    report = json.loads((RESULTS / f"movielens_seeds_binary_seed{seed}.json").read_text())
    row = next(m for m in report["models"] if m["name"] == "two_tower")
    params: dict[str, Any] = row["params"]
    return params


def _fit_and_score(params: dict[str, Any], fit: sp.csr_matrix, users: np.ndarray,
                   relevant: sp.csr_matrix) -> dict[str, Any]:
    model = create("two_tower", params).fit(fit)
    scores = np.array(model.score_history(fit[users]), dtype=np.float64)
    exclude_seen(scores, fit[users])
    recs = top_k_from_scores(scores, 10)
    recall = model.history.get("val_recall", [])
    kept = int(np.argmax(recall[params["min_epochs"]:])) + params["min_epochs"] + 1 \
        if len(recall) > params["min_epochs"] else len(recall)
    return {
        "epochs_run": len(model.history.get("loss", [])), "kept_epoch": kept,
        "ndcg@10": float(ranking_metrics(recs, relevant[users], [10])["ndcg@10"].mean()),
        "coverage@10": catalogue_metrics(recs, item_popularity(fit), fit.shape[0],
                                         [10])["coverage@10"],
        "holdout_recall": [round(v, 4) for v in recall],
    }


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    parts = seed_split(data, seed, np.float32)
    out: dict[str, Any] = {"seed": seed, "runs": []}
    for min_epochs in MIN_EPOCHS:
        params = {**_chosen_params(seed), "min_epochs": min_epochs}
        out["runs"].append({
            "min_epochs": min_epochs,
            "validation": _fit_and_score(params, parts.train, parts.val_users,
                                         parts.split.validation),
            "test": _fit_and_score(params, parts.final, parts.test_users, parts.split.test),
        })
    return out


def main() -> int:
    args = seeds_parser(__doc__.splitlines()[0]).parse_args()
    seeds = binary_seed_runs(args, run_seed)
    if seeds is None:
        return 2
    rows = [
        {"seed": s["seed"], "min_epochs": r["min_epochs"], "fit": part,
         "epochs_run": r[part]["epochs_run"], "kept_epoch": r[part]["kept_epoch"],
         "ndcg@10": r[part]["ndcg@10"], "coverage@10": r[part]["coverage@10"]}
        for s in seeds for r in s["runs"] for part in ("validation", "test")
    ]
    for m in MIN_EPOCHS:
        tests = [r["ndcg@10"] for r in rows if r["min_epochs"] == m and r["fit"] == "test"]
        rows.append({"seed": "mean", "min_epochs": m, "fit": "test", "epochs_run": "",
                     "kept_epoch": "", "ndcg@10": float(np.mean(tests)), "coverage@10": ""})
    columns = ["seed", "min_epochs", "fit", "epochs_run", "kept_epoch", "ndcg@10", "coverage@10"]
    payload = {"protocol": "binary positives (rating >= 4), users >= 5, random 80/10/10; "
                           "validation: fit on train; test: fit on train + validation",
               "rows": rows, "seeds": seeds}
    text = table(rows, columns, digits=4)
    write_study(args.out, "two_tower_refit", str(args.data.name), payload, [
        "# Two-tower early stopping: min_epochs 0 and 10 (binary protocol)", "",
        f"`bench/two_tower_refit.py`, commit {head()}; parameters as chosen by "
        "movielens_seeds_binary per seed.", "", "```", text, "```"])
    print(json.dumps(rows, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
