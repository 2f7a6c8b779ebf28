"""Cold-start items on MovieLens: ranking items that had no training interactions.

Split: helper ``cold-items`` (seeded): 10% of items have all their interactions held
out. For each test user the model ranks only those cold items (a full-catalogue
ranking would be dominated by warm items and says little about cold start); NDCG@10
and recall@20 over the held-out pairs. Baselines: random order, and a content-only
profile (cosine between the mean content vector of the user's training items and
each cold item). Writes ``bench/results/cold_start.json``.

    .venv/bin/python bench/cold_start.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_result
from fastinsight.recsys.evaluation.data import filter_min_positives, load_movielens
from fastinsight.recsys.evaluation.metrics import ranking_metrics, top_k_from_scores
from fastinsight.recsys.evaluation.runner import content_features
from fastinsight.recsys.evaluation.splits import make_split
from fastinsight.recsys.two_tower import TwoTower, TwoTowerParams

DEFAULT_DATA = Path("/work/shared/datasets/ml-latest-small")


def _metrics(scores: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    m = ranking_metrics(top_k_from_scores(scores, 20), truth, [10, 20])
    return {"ndcg@10": float(m["ndcg@10"].mean()), "recall@20": float(m["recall@20"].mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = filter_min_positives(load_movielens(args.data), 5)
    split = make_split(data, "cold-items", 0.1, 0.1, seed=args.seed)
    content = content_features(data, seed=args.seed)
    if content is None:
        raise SystemExit("no item metadata: cold start needs movies.csv")
    cold = np.sort(split.cold_items)
    truth_all = split.test[:, cold].tocsr()
    users = np.flatnonzero(np.diff(truth_all.indptr))
    truth = truth_all[users]
    rows: list[dict[str, Any]] = []

    def add(name: str, scores: np.ndarray, seconds: float = 0.0) -> None:
        row = {"model": name, **_metrics(scores, truth), "fit_seconds": seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)

    rng = np.random.default_rng(args.seed)
    add("random", rng.random((len(users), len(cold))))
    feats = content.features
    profile = np.asarray(split.train[users] @ feats)
    profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-9)
    add("content profile (cosine)", profile @ feats[cold].T)
    for name, with_content in (("two_tower id-only", False), ("two_tower + content", True)):
        model = TwoTower(TwoTowerParams(seed=args.seed))
        if with_content:
            model.set_item_content(feats, content.encoder)
        started = time.perf_counter()
        model.fit(split.train)
        add(name, model.score_users(users)[:, cold], time.perf_counter() - started)
    print(table(rows, ["model", "ndcg@10", "recall@20", "fit_seconds"]))
    summary = {"dataset": str(args.data.name), "split": split.summary(),
               "cold_items": len(cold), "users": len(users), "rows": rows}
    print(f"wrote {write_result('cold_start', summary)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
