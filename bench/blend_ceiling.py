"""How far can blending the tuned models go past EASE? Weights fitted on validation itself.

Exploratory, for issue 20. The product's blends learn their weights on a holdout *inside*
the fit data (hybrid: a grid; stacked: non-negative least squares). This asks what the
same components could reach at best if the weights were chosen directly on the
evaluation's own validation split (the split the hyper-parameters were chosen on), by
coordinate ascent of validation NDCG@10 over per-user standardised scores (weights on a
grid of 0..1 per component, at most five sweeps, starting from EASE alone), and, for
comparison, by the stack's least squares on the same rows. The chosen weights are
applied to the components refitted on train + validation and scored on test.

Components and their parameters are those chosen on each seed by
``bench/movielens_seeds.py`` (read from ``bench/results/<name>_seed<N>.json``), under the
binary-positives protocol. Paired per-user differences to EASE, stratified over seeds.
Writes ``bench/results/blend_ceiling.{json,md}``.

    .venv/bin/python bench/blend_ceiling.py                   # seeds 0-3
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import (
    RESULTS,
    binary_seed_runs,
    drop_per_user,
    ndcg_at_10,
    paired_to_reference,
    params_from_parser,
    publish_study,
    seed_split,
)
from fastinsight.recsys.evaluation.metrics import exclude_seen
from fastinsight.recsys.hybrid import standardise
from fastinsight.recsys.registry import create
from fastinsight.recsys.stacked import stack_weights

COMPONENTS = ("ease", "edlae", "als", "itemknn", "multvae", "two_tower")
GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
CANDIDATES = 100


def _scores(params: dict[str, Any], fit: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """(components x users x items) standardised scores, seen items at -inf."""
    out = []
    for name in COMPONENTS:
        model = create(name, params[name]).fit(fit)
        raw = np.asarray(model.score_history(fit[users]), dtype=np.float64)
        exclude_seen(raw, fit[users])
        out.append(standardise(raw))
    return np.stack(out)


def _blend(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.tensordot(weights, z, axes=1)
    return out


def coordinate_ascent(z: np.ndarray, relevant: sp.csr_matrix) -> tuple[np.ndarray, float]:
    weights = np.zeros(z.shape[0])
    weights[0] = 1.0
    best = float(ndcg_at_10(_blend(z, weights), relevant).mean())
    for _ in range(5):
        improved = False
        for c in range(z.shape[0]):
            for g in GRID:
                trial = weights.copy()
                trial[c] = g
                if trial.sum() == 0:
                    continue
                value = float(ndcg_at_10(_blend(z, trial), relevant).mean())
                if value > best + 1e-9:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    return weights / weights.sum(), best


def least_squares(z: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    rel = relevant.toarray() > 0
    features, labels = [], []
    for r in range(z.shape[1]):
        row = z[:, r]
        tops = [np.argpartition(-row[c], CANDIDATES - 1)[:CANDIDATES] for c in range(len(row))]
        cand = np.unique(np.concatenate(tops))
        cand = cand[np.all(np.isfinite(row[:, cand]), axis=0)]
        features.append(row[:, cand].T.astype(np.float64))
        labels.append(rel[r, cand].astype(np.float64))
    return stack_weights(features, labels)


def run_seed(data: Any, seed: int, name: str) -> dict[str, Any]:
    report = json.loads((RESULTS / f"{name}_seed{seed}.json").read_text())
    params = {m["name"]: m["params"] for m in report["models"] if m["name"] in COMPONENTS}
    parts = seed_split(data, seed)
    split, final = parts.split, parts.final
    val_users, test_users = parts.val_users, parts.test_users
    started = time.perf_counter()
    z_val = _scores(params, split.train, val_users)
    z_test = _scores(params, final, test_users)
    val_rel, test_rel = split.validation[val_users], split.test[test_users]
    ascent, _ = coordinate_ascent(z_val, val_rel)
    nnls = least_squares(z_val, val_rel)
    rows: dict[str, Any] = {}
    for label, weights in (("ease", np.eye(len(COMPONENTS))[0]), ("ascent on validation", ascent),
                           ("least squares on validation", nnls)):
        test = ndcg_at_10(_blend(z_test, weights), test_rel)
        rows[label] = {"weights": dict(zip(COMPONENTS, np.round(weights, 3).tolist(), strict=True)),
                       "validation_ndcg@10": float(ndcg_at_10(_blend(z_val, weights), val_rel).mean()),
                       "test_ndcg@10": float(test.mean()), "per_user_ndcg": test.tolist()}
    for c, component in enumerate(COMPONENTS[1:], start=1):
        test = ndcg_at_10(z_test[c], test_rel)
        rows[component] = {"test_ndcg@10": float(test.mean()), "per_user_ndcg": test.tolist(),
                           "validation_ndcg@10": float(ndcg_at_10(z_val[c], val_rel).mean())}
    return {"seed": seed, "params_from": f"{name}_seed{seed}.json", "rows": rows,
            "seconds": round(time.perf_counter() - started, 1)}


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reference = [np.asarray(s["rows"]["ease"]["per_user_ndcg"]) for s in seeds]
    ease = float(np.mean([r.mean() for r in reference]))
    out = []
    for label in seeds[0]["rows"]:
        paired = paired_to_reference([s["rows"][label]["per_user_ndcg"] for s in seeds], reference)
        mean = paired.pop("mean")
        out.append({"model": label, "test_ndcg@10": round(mean, 4), "vs_ease": round(mean / ease, 3),
                    **paired,
                    "validation_ndcg@10": round(float(np.mean(
                        [s["rows"][label]["validation_ndcg@10"] for s in seeds])), 4)})
    return out


def main() -> int:
    args = params_from_parser(__doc__.splitlines()[0]).parse_args()
    seeds = binary_seed_runs(args, lambda data, seed: run_seed(data, seed, args.params_from))
    if seeds is None:
        return 2
    rows = summarise(seeds)
    drop_per_user(seeds, "rows")
    columns = ["model", "test_ndcg@10", "vs_ease", "diff", "ci_low", "ci_high",
               "validation_ndcg@10"]
    md = ["# Blend weights chosen on validation itself (binary protocol)", "",
          f"Seeds {args.seeds}; `bench/blend_ceiling.py`; components as chosen by "
          f"`{args.params_from}`; paired 95% interval of the per-user difference to EASE.", "",
          "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    md += ["", "Weights per seed (ascent on validation):", ""]
    md += [f"* seed {s['seed']}: {s['rows']['ascent on validation']['weights']}" for s in seeds]
    return publish_study(args, "blend_ceiling", {"summary": rows, "seeds": seeds}, md, rows,
                         columns)


if __name__ == "__main__":
    raise SystemExit(main())
