"""Variants of EASE that the literature reports beyond it, against EASE, over seeds.

Exploratory: none of these is a product model. It answers "would a variant of the
linear autoencoder close the gap to 1.05x EASE (issue 20)?" on the binary-positives
protocol of ``bench/movielens_seeds.py`` (ratings >= 4 of weight 1, users with >= 5,
per-user random 80/10/10 split, full ranking without training items). Every family is
searched on validation NDCG@10 over its grid, the validation choice is refitted on
train + validation and scored on test:

* ``ease``: ``B = I - P/diag(P)``, ``P = (XᵀX + λI)⁻¹`` (Steck 2019);
* ``edlae``: the dropout penalty ``λ + p/(1-p)·diag(XᵀX)`` (Steck 2020), diagonal zero;
* ``rdlae``: EDLAE's penalty with the diagonal constraint relaxed to ``diag(B) <= ξ``
  (Moon et al. 2023);
* ``dan``: data-adaptive normalisation (Park et al. 2025): the Gram matrix from rows
  scaled by ``|u|^-β`` and ``B`` rescaled ``d_i^(1-alpha) B_ij d_j^-(1-alpha)`` (``d`` = item
  counts), around EDLAE; λ is relative to the mean diagonal so that it follows β;
* ``two_hop``: EASE scores plus ``gamma`` times the scores propagated once more (``XB + gamma XBB``);
* ``pseudo``: EASE refitted after adding each user's ``m`` best unseen EASE items as
  positives of weight ``η``.

Each family's grid contains EASE's own points where it nests EASE, so a family can only
lose on validation by overfitting it. Differences are paired per user and pooled over
seeds with the stratified interval of ``fastinsight.recsys.evaluation.seeds``.
Writes ``bench/results/linear_variants.{json,md}``.

    .venv/bin/python bench/linear_variants.py                 # seeds 0-3
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
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
    seed_split,
    seeds_parser,
    study_table,
    table,
    write_study,
)
from fastinsight.recsys.evaluation.metrics import exclude_seen, top_k_from_scores

Config = tuple[Any, ...]
Scorer = Callable[[sp.csr_matrix, np.ndarray], np.ndarray]

EASE_L2 = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0)
DROPOUT = (0.1, 0.25, 0.5)
XI = (0.1, 0.2, 0.3)
BETA = (0.25, 0.5, 1.0)
REL_L2 = (8.0, 16.0, 32.0)  # x mean diagonal of the (normalised) Gram matrix
ALPHA = (1.0, 0.9, 0.75, 0.5)
GAMMA = (0.1, 0.2, 0.4)
PSEUDO_M = (10, 20)
PSEUDO_ETA = (0.25, 0.5)
PSEUDO_L2 = (100.0, 200.0, 400.0)


class Fit:
    """``P = (G + Λ)⁻¹`` of one matrix and its penalty, with the item counts."""

    def __init__(self, x: sp.csr_matrix, l2: float, dropout: float = 0.0, beta: float = 0.0,
                 relative: bool = False) -> None:
        users = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
        self.counts = np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1.0).astype(np.float32)
        scaled = sp.diags(users ** -beta) @ x if beta else x
        gram = (scaled.T @ x).toarray().astype(np.float32)  # as the product's EASE
        diag = gram.diagonal().copy()
        base = l2 * float(diag.mean()) if relative else l2
        self.penalty = base + dropout / (1.0 - dropout) * diag
        gram[np.diag_indices_from(gram)] += self.penalty
        factor = sla.cho_factor(gram, overwrite_a=True, check_finite=False)
        self.p = sla.cho_solve(factor, np.eye(gram.shape[0], dtype=np.float32),
                               check_finite=False)

    def weights(self, xi: float | None = None, alpha: float = 1.0) -> np.ndarray:
        diag = self.p.diagonal()
        b: np.ndarray
        if xi is None:
            b = -self.p / diag[None, :]
        else:  # diag(B) <= ξ: the constraint binds only where the free diagonal exceeds ξ
            binding = (1.0 - self.penalty * diag) > xi
            multiplier = np.where(binding, (1.0 - xi) / diag - self.penalty, 0.0)
            b = -self.p * (self.penalty + multiplier)[None, :]
        if alpha != 1.0:
            scale = self.counts ** (1.0 - alpha)
            b = b * scale[:, None] / scale[None, :]
        np.fill_diagonal(b, 0.0)
        return b


def _pseudo(x: sp.csr_matrix, b: np.ndarray, m: int, eta: float) -> sp.csr_matrix:
    scores = np.asarray(x @ b)
    exclude_seen(scores, x)
    top = top_k_from_scores(scores, m)
    rows = np.repeat(np.arange(x.shape[0]), m)
    added = sp.csr_matrix((np.full(rows.size, eta), (rows, top.ravel())), shape=x.shape)
    return sp.csr_matrix(x + added)


def _linear(b: np.ndarray) -> Scorer:
    """Scores of ``users`` (rows of a matrix) through the item x item weights ``b``."""
    return lambda m, users: np.asarray(m[users] @ b)


def _scorers(x: sp.csr_matrix) -> Iterator[tuple[str, Config, Scorer]]:
    """Every (family, configuration, scorer of users) on the fit matrix ``x``."""
    ease_fits = {lam: Fit(x, lam) for lam in EASE_L2}
    for lam, fit in ease_fits.items():
        b = fit.weights()
        yield "ease", (lam,), _linear(b)
        for name in ("edlae", "rdlae", "dan", "two_hop"):
            yield name, ("ease", lam), _linear(b)  # every family nests EASE's grid
        bb = b @ b
        for gamma in GAMMA:
            yield "two_hop", (lam, gamma), _linear(b + gamma * bb)
    for lam, p in itertools.product(EASE_L2[1:5], DROPOUT):
        fit = Fit(x, lam, p)
        b = fit.weights()
        for name in ("edlae", "rdlae", "dan"):
            yield name, (lam, p), _linear(b)
        for xi in XI:
            yield "rdlae", (lam, p, xi), _linear(fit.weights(xi=xi))
        for alpha in ALPHA[1:]:
            yield "dan", (lam, p, 0.0, alpha), _linear(fit.weights(alpha=alpha))
    for beta, rel, p in itertools.product(BETA, REL_L2, (0.0, 0.1)):
        fit = Fit(x, rel, p, beta, relative=True)
        for alpha in ALPHA:
            yield "dan", (rel, p, beta, alpha), _linear(fit.weights(alpha=alpha))


def _pseudo_scorers(x: sp.csr_matrix, lam: float) -> Iterator[tuple[Config, Scorer]]:
    base = Fit(x, lam).weights()
    yield ("ease", lam), _linear(base)
    for m, eta, lam2 in itertools.product(PSEUDO_M, PSEUDO_ETA, PSEUDO_L2):
        yield (lam, m, eta, lam2), _linear(Fit(_pseudo(x, base, m, eta), lam2).weights())


def _refit(x: sp.csr_matrix, family: str, config: Config) -> Scorer:
    """The chosen configuration fitted on ``x`` (train + validation)."""
    if family == "ease" or config[0] == "ease":
        b = Fit(x, config[-1]).weights()
    elif family == "pseudo":
        lam, m, eta, lam2 = config
        b = Fit(_pseudo(x, Fit(x, lam).weights(), m, eta), lam2).weights()
    elif family == "two_hop":
        b = Fit(x, config[0]).weights()
        b = b + config[1] * (b @ b)
    elif family == "edlae":
        b = Fit(x, config[0], config[1]).weights()
    elif family == "rdlae":
        b = Fit(x, config[0], config[1]).weights(xi=config[2] if len(config) > 2 else None)
    else:  # dan
        rel, p, beta, alpha = config if len(config) == 4 else (*config, 0.0, 1.0)
        relative = beta != 0.0
        b = Fit(x, rel, p, beta, relative=relative).weights(alpha=alpha)
    return _linear(b)


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    parts = seed_split(data, seed, np.float64)
    split, train, final = parts.split, parts.train, parts.final
    val_users, test_users = parts.val_users, parts.test_users
    started = time.perf_counter()
    validation: dict[str, dict[Config, float]] = {}
    for family, config, scorer in _scorers(train):
        score = ndcg_recall_at_10(scorer(train, val_users), train[val_users], split.validation[val_users])
        validation.setdefault(family, {})[config] = float(score[0].mean())
    best_ease = max(validation["ease"], key=lambda c: validation["ease"][c])[0]
    for config, scorer in _pseudo_scorers(train, best_ease):
        score = ndcg_recall_at_10(scorer(train, val_users), train[val_users], split.validation[val_users])
        validation.setdefault("pseudo", {})[config] = float(score[0].mean())
    out: dict[str, Any] = {"seed": seed, "families": {}}
    for family, grid in validation.items():
        config = max(grid, key=lambda c: grid[c])
        scorer = _refit(final, family, config)
        test = ndcg_recall_at_10(scorer(final, test_users), final[test_users], split.test[test_users])
        out["families"][family] = {
            "config": list(config), "trials": len(grid), "validation_ndcg@10": grid[config],
            "per_user_ndcg": test[0].tolist(), "test_ndcg@10": float(test[0].mean()),
            "test_recall@10": float(test[1].mean()),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    reference = [np.asarray(s["families"]["ease"]["per_user_ndcg"]) for s in seeds]
    ease_mean = float(np.mean([r.mean() for r in reference]))
    for family in seeds[0]["families"]:
        paired = paired_to_reference(
            [s["families"][family]["per_user_ndcg"] for s in seeds], reference)
        mean = paired.pop("mean")
        rows.append({
            "family": family, "test_ndcg@10": round(mean, 4),
            "vs_ease": round(mean / ease_mean, 3), **paired,
            "test_recall@10": round(float(np.mean(
                [s["families"][family]["test_recall@10"] for s in seeds])), 4),
            "validation_ndcg@10": round(float(np.mean(
                [s["families"][family]["validation_ndcg@10"] for s in seeds])), 4),
            "configs": "; ".join(str(tuple(s["families"][family]["config"])) for s in seeds),
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
               "test_recall@10", "validation_ndcg@10"]
    drop_per_user(seeds)
    payload = {"protocol": BINARY_PROTOCOL,
               "summary": rows, "seeds": seeds}
    text = table(rows, columns, digits=4)
    md = ["# EASE variants over seeds (binary protocol)", "",
          f"Seeds {args.seeds}; `bench/linear_variants.py`; paired 95% interval of the "
          "per-user difference to EASE (stratified bootstrap within seeds).", ""]
    md += study_table(rows, columns, {"choice per seed": "configs"})
    write_study(args.out, "linear_variants", str(args.data.name), payload, md)
    print(json.dumps(rows, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
