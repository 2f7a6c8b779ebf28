"""Can a learned re-ranker over the tuned models go past EASE? A gradient-boosted ranker.

Exploratory, for issue 20. The linear blends (``bench/blend_ceiling.py``) stop at about
EDLAE alone. This asks whether a *non-linear* learner over the same components, with a few
features the components do not see (item popularity, the user's history length, the
item's largest cosine similarity to one history item, each component's rank), does
better. Candidates are the union of each component's top ``--candidates`` unseen items.

Protocol (the binary one, seeds from ``--seeds``): the components (parameters as each
seed's ``bench/results/<name>_seed<N>.json`` chose them) are fitted on train; the ranker
learns from validation users' candidates, labelled by their validation items. The
ranker's own settings (leaves per tree down to stumps, learning rate, leaf size; the number
of trees by sklearn's early stopping) are chosen by 2-fold cross-validation over validation
users (NDCG@10 of the fold left out). Then the components are refitted on
train + validation, the ranker (fitted on all validation users) orders the test users'
candidates, and the rest of the catalogue follows in EDLAE's order. Paired per-user
differences to EASE and to EDLAE, stratified over seeds. Writes
``bench/results/ltr_rerank.{json,md}``.

    .venv/bin/python bench/ltr_rerank.py                   # seeds 0-3
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier

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

COMPONENTS = ("ease", "edlae", "als", "itemknn")
GRID = [{"max_iter": 300, "max_leaf_nodes": leaves, "learning_rate": rate, "min_samples_leaf": leaf}
        for leaves, rate, leaf in itertools.product((2, 3, 7, 15), (0.03, 0.1), (20, 200))]


class Features:
    """Per-user candidate lists and their feature rows from components fitted on ``fit``."""

    def __init__(self, params: dict[str, Any], fit: sp.csr_matrix, users: np.ndarray,
                 candidates: int) -> None:
        self.users = users
        hist = fit[users]
        z = []
        for name in COMPONENTS:
            raw = np.asarray(create(name, params[name]).fit(fit).score_history(hist), dtype=np.float64)
            exclude_seen(raw, hist)
            z.append(standardise(raw))
        self.z = np.stack(z)  # components x users x items
        binary = (fit > 0).astype(np.float64)
        popularity = np.asarray(binary.sum(axis=0)).ravel()
        norms = np.sqrt(np.maximum(popularity, 1.0))
        gram = (binary.T @ binary).toarray() / np.outer(norms, norms)
        np.fill_diagonal(gram, 0.0)
        self.rows: list[np.ndarray] = []
        self.cands: list[np.ndarray] = []
        for u in range(len(users)):
            row = self.z[:, u]
            tops = [np.argpartition(-row[c], candidates - 1)[:candidates] for c in range(len(COMPONENTS))]
            cand = np.unique(np.concatenate(tops))
            cand = cand[np.all(np.isfinite(row[:, cand]), axis=0)]
            ranks = np.stack([np.argsort(np.argsort(-row[c, cand])) for c in range(len(COMPONENTS))])
            seen = hist[u].indices
            near = gram[np.ix_(seen, cand)].max(axis=0) if len(seen) else np.zeros(len(cand))
            feats = np.column_stack([
                row[:, cand].T, np.log1p(ranks.T), np.log1p(popularity[cand]),
                np.full(len(cand), np.log1p(len(seen))), near])
            self.rows.append(feats)
            self.cands.append(cand)

    def design(self, which: np.ndarray, relevant: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([self.rows[u] for u in which])
        if relevant is None:
            return x, np.zeros(len(x))
        y = np.concatenate([np.isin(self.cands[u], relevant[u].indices) for u in which])
        return x, y.astype(np.int8)

    def ranked(self, model: Any, which: np.ndarray, fallback: int) -> np.ndarray:
        """Scores (users in ``which`` x items): candidates by the ranker above the rest,
        which keep the fallback component's order."""
        base = self.z[fallback, which].copy()
        out = np.where(np.isfinite(base), base - 1e6, -np.inf)
        for r, u in enumerate(which):
            out[r, self.cands[u]] = model.predict_proba(self.rows[u])[:, 1]
        return out


def _fit(settings: dict[str, Any], x: np.ndarray, y: np.ndarray) -> Any:
    return HistGradientBoostingClassifier(random_state=0, **settings).fit(x, y)


def choose(val: Features, relevant: sp.csr_matrix) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(0)
    order = rng.permutation(len(val.users))
    folds = [order[: len(order) // 2], order[len(order) // 2:]]
    tried = []
    for settings in GRID:
        scores = []
        for k in range(2):
            x, y = val.design(folds[k], relevant)
            model = _fit(settings, x, y)
            held = folds[1 - k]
            scores.append(ndcg_at_10(val.ranked(model, held, 1), relevant[held]).mean())
        tried.append({**settings, "cv_ndcg@10": round(float(np.mean(scores)), 4)})
    edlae = ndcg_at_10(val.z[1], relevant).mean()
    tried.append({"edlae_alone": True, "cv_ndcg@10": round(float(edlae), 4)})
    best = max(tried[:-1], key=lambda t: t["cv_ndcg@10"])
    return {k: best[k] for k in GRID[0]}, tried


def run_seed(data: Any, seed: int, name: str, candidates: int) -> dict[str, Any]:
    report = json.loads((RESULTS / f"{name}_seed{seed}.json").read_text())
    params = {m["name"]: m["params"] for m in report["models"] if m["name"] in COMPONENTS}
    parts = seed_split(data, seed)
    started = time.perf_counter()
    val_rel = parts.split.validation[parts.val_users]
    test_rel = parts.split.test[parts.test_users]
    val = Features(params, parts.train, parts.val_users, candidates)
    settings, tried = choose(val, val_rel)
    everyone = np.arange(len(val.users))
    x, y = val.design(everyone, val_rel)
    ranker = _fit(settings, x, y)
    test = Features(params, parts.final, parts.test_users, candidates)
    hit = float(np.mean([np.isin(test_rel[u].indices, test.cands[u]).mean() for u in range(len(test.users))]))
    rows: dict[str, Any] = {}
    for c, component in enumerate(COMPONENTS):
        per = ndcg_at_10(test.z[c], test_rel)
        rows[component] = {"test_ndcg@10": float(per.mean()), "per_user_ndcg": per.tolist()}
    per = ndcg_at_10(test.ranked(ranker, np.arange(len(test.users)), 1), test_rel)
    rows["ranker"] = {"test_ndcg@10": float(per.mean()), "per_user_ndcg": per.tolist()}
    return {"seed": seed, "params_from": f"{name}_seed{seed}.json", "ranker": settings,
            "ranker_grid": tried, "test_candidate_recall": round(hit, 4), "rows": rows,
            "seconds": round(time.perf_counter() - started, 1)}


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ref in ("ease", "edlae"):
        reference = [np.asarray(s["rows"][ref]["per_user_ndcg"]) for s in seeds]
        ref_mean = float(np.mean([r.mean() for r in reference]))
        for label in seeds[0]["rows"]:
            if label == ref:
                continue
            paired = paired_to_reference([s["rows"][label]["per_user_ndcg"] for s in seeds], reference)
            mean = paired.pop("mean")
            out.append({"model": label, "reference": ref, "test_ndcg@10": round(mean, 4),
                        "ratio": round(mean / ref_mean, 3), **paired})
    return out


def _cv(seed: dict[str, Any], edlae: bool) -> float:
    values = [t["cv_ndcg@10"] for t in seed["ranker_grid"] if bool(t.get("edlae_alone")) == edlae]
    return max(values)


def main() -> int:
    parser = params_from_parser(__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50)
    args = parser.parse_args()
    seeds = binary_seed_runs(args, lambda data, seed: run_seed(data, seed, args.params_from,
                                                               args.candidates))
    if seeds is None:
        return 2
    rows = summarise(seeds)
    drop_per_user(seeds, "rows")
    columns = ["model", "reference", "test_ndcg@10", "ratio", "diff", "ci_low", "ci_high"]
    md = ["# A gradient-boosted re-ranker over the tuned models (binary protocol)", "",
          f"Seeds {args.seeds}; `bench/ltr_rerank.py`; components as chosen by "
          f"`{args.params_from}`; top {args.candidates} of each as candidates; paired 95% "
          "interval of the per-user difference to the reference.", "",
          "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    md += ["", "Ranker settings (2-fold cross-validation over validation users) and the share "
           "of test items among the candidates, per seed:", ""]
    md += [f"* seed {s['seed']}: {s['ranker']}, cross-validated NDCG@10 {_cv(s, False)} against "
           f"EDLAE's {_cv(s, True)} on the same users, candidate recall {s['test_candidate_recall']}"
           for s in seeds]
    return publish_study(args, "ltr_rerank", {"summary": rows, "seeds": seeds}, md, rows, columns)


if __name__ == "__main__":
    raise SystemExit(main())
