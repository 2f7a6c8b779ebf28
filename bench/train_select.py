"""How long ``fastinsight train --select`` takes, and where the time goes.

``train --select`` runs :func:`fastinsight.recsys.evaluation.selection.select_model` with
``search="complete"`` over the default candidates (every registered model but
``trending``): each candidate's whole default grid on a 10% holdout, grid edges widened,
then the blends from the tuned models, then the choice rule (:mod:`.choice`). This
measures that call on synthetic data of ``bench/train.py``'s kind (power-law popularity,
users with a favourite topic, the product's interaction types and weights, interaction
times given to the models that use them), at each ``--sizes`` point, one after another
in one process, and reports per candidate: trials run, seconds, holdout NDCG@10, and
the winner with the rule's reason. One run per size: this is a cost profile, not a
comparison, so no rounds are interleaved.

    .venv/bin/python bench/train_select.py                          # writes results/train_select.json
    .venv/bin/python bench/train_select.py --sizes 2000x1000x20000 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import table, write_result
from train import synthetic

ROOT = Path(__file__).resolve().parents[1]


def run_size(users: int, items: int, interactions: int) -> dict[str, Any]:
    from fastinsight.config import DEFAULT_INTERACTION_WEIGHTS
    from fastinsight.recsys.evaluation.selection import default_candidates, select_model
    from fastinsight.recsys.matrix import from_arrays
    from fastinsight.recsys.side import SideData

    cols = synthetic(users, items, interactions)
    built = from_arrays(cols["users"], cols["items"], cols["types"], cols["values"],
                        cols["timestamps"], DEFAULT_INTERACTION_WEIGHTS, half_life_days=30.0)
    candidates = default_candidates()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    chosen = select_model(built.matrix, candidates, side=SideData(None, built.times),
                          search="complete")
    total = time.perf_counter() - started
    rows = []
    for algorithm in candidates:
        trials = chosen.seconds.get(algorithm)
        rows.append({"size": f"{users}x{items}x{interactions}", "model": algorithm,
                     "seconds": trials, "ndcg@10": chosen.scores[algorithm]["ndcg@10"],
                     "share": round((trials or 0.0) / total, 3)})
    return {
        "users": users, "items": items, "interactions": interactions,
        "matrix": {"users": int(built.matrix.shape[0]), "items": int(built.matrix.shape[1]),
                   "nnz": int(built.matrix.nnz)},
        "seconds": round(total, 1), "load_average_1m_start": round(load, 2),
        "winner": chosen.winner, "params": chosen.params, "reasons": chosen.reasons,
        "rows": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000x1000x20000,5000x2000x50000",
                    help="comma-separated USERSxITEMSxINTERACTIONS")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    results = []
    for users, items, interactions in sizes:
        results.append(run_size(users, items, interactions))
        print(f"{users}x{items}x{interactions}: {results[-1]['seconds']} s, "
              f"winner {results[-1]['winner']}", flush=True)
    payload = {"what": "select_model(search='complete') over the default candidates, "
                       "as `fastinsight train --select` runs it", "sizes": results}
    rows = [r for res in results for r in res["rows"]]
    print(json.dumps(payload, indent=2, default=str))
    print(table(rows, ["size", "model", "seconds", "share", "ndcg@10"], digits=3))
    for res in results:
        print(f"{res['users']}x{res['items']}x{res['interactions']}: total {res['seconds']} s;"
              f" {res['reasons'][0]}")
    if not args.no_write:
        print(write_result("train_select", payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
