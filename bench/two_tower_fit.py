"""Two-tower fit time and peak memory on a synthetic 1,000,000-interaction matrix.

Each configuration runs in a fresh subprocess, so ``peak_rss_mb`` is that fit's own
peak (Python + NumPy + JAX/XLA), not the benchmark's. ALS (``implicit``, through our
registry) on the same matrix is the baseline. Writes ``bench/results/two_tower_fit.json``.

    .venv/bin/python bench/two_tower_fit.py                 # 1M interactions, 2 epochs
    .venv/bin/python bench/two_tower_fit.py --nnz 200000 --epochs 1

For another benchmark (e.g. bench/train.py) import :func:`measure_fit`: it fits one
model in a subprocess and returns its seconds, per-epoch seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_result


def synthetic_matrix(
    n_users: int, n_items: int, nnz: int, clusters: int = 20, seed: int = 0
) -> sp.csr_matrix:
    """Users in taste clusters picking items with Zipf-like popularity, ~``nnz`` pairs."""
    rng = np.random.default_rng(seed)
    per_user = np.maximum(1, rng.poisson(1.4 * nnz / n_users, n_users))  # duplicates collapse
    user_cluster = rng.integers(clusters, size=n_users)
    item_cluster = rng.integers(clusters, size=n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    rng.shuffle(popularity)
    rows, cols = [], []
    for c in range(clusters):
        users = np.flatnonzero(user_cluster == c)
        weight = popularity * np.where(item_cluster == c, 8.0, 1.0)
        weight /= weight.sum()
        counts = per_user[users]
        rows.append(np.repeat(users, counts))
        cols.append(rng.choice(n_items, size=int(counts.sum()), p=weight))
    r, cidx = np.concatenate(rows), np.concatenate(cols)
    pairs = np.unique(r.astype(np.int64) * n_items + cidx)
    if len(pairs) > nnz:
        pairs = np.sort(rng.choice(pairs, nnz, replace=False))
    return sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (pairs // n_items, pairs % n_items)),
        shape=(n_users, n_items),
    )


def _child(spec: dict[str, Any]) -> None:
    """Runs in the subprocess: build the matrix, fit, print one JSON line."""
    from fastinsight.recsys import registry

    m = synthetic_matrix(spec["n_users"], spec["n_items"], spec["nnz"], seed=spec["seed"])
    model = registry.create(spec["algorithm"], spec["params"])
    if spec.get("content_dim"):
        rng = np.random.default_rng(1)
        feats = rng.standard_normal((m.shape[1], spec["content_dim"])).astype(np.float32)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        model.set_item_content(feats)  # type: ignore[attr-defined]
    started = time.perf_counter()
    model.fit(m)
    seconds = time.perf_counter() - started
    history = getattr(model, "history", {})
    print(json.dumps({
        "nnz": int(m.nnz), "users": m.shape[0], "items": m.shape[1], "fit_seconds": seconds,
        "epochs": len(history.get("loss", [])), "loss": history.get("loss", []),
        "epoch_seconds": history.get("epoch_seconds", []),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def measure_fit(
    algorithm: str, params: dict[str, Any], nnz: int = 1_000_000, n_users: int = 20_000,
    n_items: int = 10_000, content_dim: int = 0, seed: int = 0,
) -> dict[str, Any]:
    """Fit ``algorithm`` on the synthetic matrix in a fresh process; time and peak memory."""
    spec = {"algorithm": algorithm, "params": params, "nnz": nnz, "n_users": n_users,
            "n_items": n_items, "content_dim": content_dim, "seed": seed}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True, text=True, check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["epoch_seconds"]:
        # the first epoch includes XLA compilation; later ones are the steady state
        result["first_epoch_seconds"] = result["epoch_seconds"][0]
        result["later_epoch_seconds"] = float(np.mean(result["epoch_seconds"][1:] or [np.nan]))
    return {"algorithm": algorithm, "params": params, "content_dim": content_dim, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nnz", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return 0
    fixed = {"epochs": args.epochs, "validation_fraction": 0.0}
    runs = [
        ("als", {}, 0),
        ("two_tower", {**fixed}, 0),
        ("two_tower", {**fixed}, 128),
        ("two_tower", {**fixed, "batch_size": 1024}, 128),
    ]
    rows = []
    for algorithm, params, content_dim in runs:
        row = measure_fit(algorithm, params, args.nnz, args.users, args.items, content_dim)
        row["config"] = f"{algorithm} {json.dumps(params)} content={content_dim}"
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "loss"}), flush=True)
    print(table(rows, ["config", "nnz", "fit_seconds", "epochs", "first_epoch_seconds",
                       "later_epoch_seconds", "peak_rss_mb"]))
    path = write_result("two_tower_fit", {"runs": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
