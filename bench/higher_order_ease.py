"""Higher-order EASE (pairs of items as extra inputs) against EASE, over seeds.

Exploratory, not a product model: it answers "do pairwise item features take EASE
towards 1.05x (issue 20)?" on the binary-positives protocol of
``bench/movielens_seeds.py`` (ratings >= 4 of weight 1, users with >= 5, per-user random
80/10/10 split, full ranking without training items).

The model (after Steck & Liang 2021, solved exactly rather than by ADMM): the inputs are
the items and the ``m`` item pairs that co-occur most often in training (a pair's input
is 1 when the user has both items); the targets are the items. Ridge regression with
penalty λ on item inputs and ``λ_pair`` on pair inputs, under the constraints that no
item predicts itself and no pair containing an item predicts that item. Each target
column's constraints are equalities on a few coefficients, so the column is the
unconstrained solution corrected through the inverse Gram matrix (the derivation of
EASE's zero diagonal, with more than one constrained coefficient).

EASE's λ is chosen on validation NDCG@10 from ``EASE_L2``; the pair models search ``m``
and ``λ_pair`` at that λ and nest EASE (``m`` = 0). The validation choice of each family
is refitted on train + validation and scored on test; differences are paired per user
and pooled over seeds with the stratified interval of
``fastinsight.recsys.evaluation.seeds``. Writes ``bench/results/higher_order_ease.{json,md}``.

    .venv/bin/python bench/higher_order_ease.py                 # seeds 0-3
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from _common import (
    BINARY_PROTOCOL,
    binary_seed_runs,
    drop_per_user,
    ndcg_recall_at_10,
    paired_to_reference,
    publish_study,
    seed_split,
    seeds_parser,
    study_table,
)

EASE_L2 = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0)
PAIRS = (1000, 3000, 6000)
PAIR_L2 = (4.0, 16.0, 64.0)  # x EASE's λ
Weights = tuple[np.ndarray, np.ndarray, np.ndarray]  # item weights, pair weights, pairs


def top_pairs(x: sp.csr_matrix, m: int) -> np.ndarray:
    """The ``m`` item pairs (i < j) that the most rows of ``x`` hold together."""
    co = sp.coo_matrix(x.T @ x)
    upper = co.row < co.col
    rows, cols, counts = co.row[upper], co.col[upper], co.data[upper]
    order = np.argsort(-counts, kind="stable")[:m]
    return np.stack([rows[order], cols[order]], axis=1).astype(np.int64)


def pair_inputs(x: sp.csr_matrix, pairs: np.ndarray) -> sp.csr_matrix:
    columns = sp.csc_matrix(x)
    both = columns[:, pairs[:, 0]].multiply(columns[:, pairs[:, 1]])
    return sp.csr_matrix(both)


def fit(x: sp.csr_matrix, l2: float, pairs: np.ndarray, pair_l2: float) -> Weights:
    """Item and pair weights under the constraints (module docstring)."""
    n, m = x.shape[1], len(pairs)
    inputs = sp.hstack([x, pair_inputs(x, pairs)]).tocsr()
    gram = (inputs.T @ inputs).toarray()
    penalty = np.concatenate([np.full(n, l2), np.full(m, pair_l2)])
    gram[np.diag_indices_from(gram)] += penalty
    inverse = sla.inv(gram, overwrite_a=True, check_finite=False)
    # unconstrained: (G + Λ)⁻¹ Fᵀ X = E - (G + Λ)⁻¹ Λ restricted to the item columns
    w = -inverse[:, :n] * l2
    w[np.arange(n), np.arange(n)] += 1.0
    constrained: list[list[int]] = [[i] for i in range(n)]
    for p, (a, b) in enumerate(pairs):
        constrained[int(a)].append(n + p)
        constrained[int(b)].append(n + p)
    alone = np.array([len(c) == 1 for c in constrained])
    cols = np.flatnonzero(alone)  # EASE's closed form where the diagonal is the only constraint
    w[:, cols] -= inverse[:, cols] * (w[cols, cols] / inverse[cols, cols])[None, :]
    for i in np.flatnonzero(~alone):
        s = np.asarray(constrained[i])
        w[:, i] -= inverse[:, s] @ np.linalg.solve(inverse[np.ix_(s, s)], w[s, i])
    return w[:n], w[n:], pairs


def scores(weights: Weights, x: sp.csr_matrix) -> np.ndarray:
    items, pair_weights, pairs = weights
    out = np.asarray(x @ items)
    if len(pairs):
        out += np.asarray(pair_inputs(x, pairs) @ pair_weights)
    return out


NO_PAIRS = np.zeros((0, 2), dtype=np.int64)


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    parts = seed_split(data, seed, np.float64)
    split, train, final = parts.split, parts.train, parts.final
    val, test = parts.val_users, parts.test_users
    started = time.perf_counter()

    def validate(l2: float, m: int, pair_l2: float) -> float:
        pairs = top_pairs(train, m) if m else NO_PAIRS
        weights = fit(train, l2, pairs, pair_l2)
        return float(ndcg_recall_at_10(scores(weights, train[val]), train[val], split.validation[val])[0].mean())

    grid: dict[str, dict[tuple[float, int, float], float]] = {"ease": {}, "higher_order": {}}
    for l2 in EASE_L2:
        grid["ease"][(l2, 0, 0.0)] = validate(l2, 0, 0.0)
    l2 = max(grid["ease"], key=lambda c: grid["ease"][c])[0]
    grid["higher_order"][(l2, 0, 0.0)] = grid["ease"][(l2, 0, 0.0)]
    for m in PAIRS:
        for factor in PAIR_L2:
            grid["higher_order"][(l2, m, factor * l2)] = validate(l2, m, factor * l2)
    out: dict[str, Any] = {"seed": seed, "items": int(train.shape[1]), "families": {}}
    for family, trials in grid.items():
        config = max(trials, key=lambda c: trials[c])
        pairs = top_pairs(final, config[1]) if config[1] else NO_PAIRS
        fit_started = time.perf_counter()
        weights = fit(final, config[0], pairs, config[2])
        fit_seconds = time.perf_counter() - fit_started
        result = ndcg_recall_at_10(scores(weights, final[test]), final[test], split.test[test])
        out["families"][family] = {
            "config": {"l2": config[0], "pairs": config[1], "pair_l2": config[2]},
            "trials": len(trials), "validation_ndcg@10": trials[config],
            "validation_grid": [[*c, round(v, 5)] for c, v in trials.items()],
            "per_user_ndcg": result[0].tolist(), "test_ndcg@10": float(result[0].mean()),
            "test_recall@10": float(result[1].mean()), "fit_seconds": round(fit_seconds, 1),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reference = [np.asarray(s["families"]["ease"]["per_user_ndcg"]) for s in seeds]
    ease_mean = float(np.mean([r.mean() for r in reference]))
    rows = []
    for family in seeds[0]["families"]:
        runs = [s["families"][family] for s in seeds]
        paired = paired_to_reference([r["per_user_ndcg"] for r in runs], reference)
        mean = paired.pop("mean")
        rows.append({
            "family": family, "test_ndcg@10": round(mean, 4), "vs_ease": round(mean / ease_mean, 3),
            **paired,
            "test_recall@10": round(float(np.mean([r["test_recall@10"] for r in runs])), 4),
            "validation_ndcg@10": round(float(np.mean([r["validation_ndcg@10"] for r in runs])), 4),
            "fit_s": round(float(np.mean([r["fit_seconds"] for r in runs])), 1),
            "configs": "; ".join(
                f"λ {r['config']['l2']:g}, {r['config']['pairs']} pairs, λ_pair "
                f"{r['config']['pair_l2']:g}" for r in runs),
        })
    return rows


def main() -> int:
    parser = seeds_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    seeds = binary_seed_runs(args, run_seed)
    if seeds is None:
        return 2
    rows = summarise(seeds)
    columns = ["family", "test_ndcg@10", "vs_ease", "diff", "ci_low", "ci_high",
               "test_recall@10", "validation_ndcg@10", "fit_s"]
    drop_per_user(seeds)
    payload = {"protocol": BINARY_PROTOCOL,
               "grids": {"ease_l2": EASE_L2, "pairs": PAIRS, "pair_l2_times_l2": PAIR_L2},
               "summary": rows, "seeds": seeds}
    md = ["# Higher-order EASE over seeds (binary protocol)", "",
          f"Seeds {args.seeds}; `bench/higher_order_ease.py`; paired 95% interval of the "
          "per-user difference to EASE (stratified bootstrap within seeds). Seconds per "
          "seed: " + ", ".join(str(s["seconds"]) for s in seeds) + ".", ""]
    md += study_table(rows, columns, {"choice per seed": "configs"})
    return publish_study(args, "higher_order_ease", payload, md, rows, columns)


if __name__ == "__main__":
    raise SystemExit(main())
