"""Results over several seeds: the headline is the mean over seeds, with a paired interval.

One :class:`~.experiment.EvaluationRun` per seed (a different random split and search
order, the same protocol). For every model the test metrics are averaged over seeds.
The headline model is the one of ours that :func:`.choice.choose` serves (the best
**mean validation** score, or a model with fewer fitted parts within one standard error
of it; chosen without looking at test); it is compared with a reference (by default EASE tuned on
the same seeds) on the mean over seeds of the per-user test differences.

**The paired interval.** On each seed the two models are scored on the same users,
so each user gives a difference ``d_su``. The headline difference is the mean over
seeds of the per-seed means, ``D = mean_s mean_u d_su``. Its 95% interval is a
stratified bootstrap: users are resampled with replacement *within* each seed (the
seeds' splits are independent), ``D`` is recomputed, and the 2.5% and 97.5% quantiles
are taken. This measures the uncertainty due to which users (and held-out items) were
drawn, given the seeds; the spread between seeds is reported next to it (per-seed
differences and their own paired intervals), so a reader sees both. Pooling all
``d_su`` into one sample would give nearly the same centre but treat the seeds' users
as one population; the stratified form keeps each seed's weight equal, as ``D`` does.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastinsight.recsys.evaluation.choice import choose, contender
from fastinsight.recsys.evaluation.experiment import EvaluationRun, ablation_parts
from fastinsight.recsys.evaluation.metrics import paired_bootstrap
from fastinsight.recsys.evaluation.runner import ModelResult

REPORTED: tuple[str, ...] = ("ndcg@10", "recall@10", "coverage@10")


def stratified_interval(
    diffs: Sequence[np.ndarray], n_resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean over groups of the per-group mean of ``diffs``, and its 95% interval from
    resampling within each group; ``p_not_better`` is the share of resamples <= 0."""
    groups = [np.asarray(d, dtype=np.float64) for d in diffs if np.asarray(d).size]
    if not groups:
        return {"mean_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_not_better": 1.0}
    rng = np.random.default_rng(seed)
    means = np.zeros(n_resamples)
    for d in groups:
        idx = rng.integers(0, d.size, size=(n_resamples, d.size))
        means += d[idx].mean(axis=1)
    means /= len(groups)
    return {
        "mean_diff": float(np.mean([d.mean() for d in groups])),
        "ci_low": float(np.quantile(means, 0.025)),
        "ci_high": float(np.quantile(means, 0.975)),
        "p_not_better": float(np.mean(means <= 0)),
    }


def _by_label(run: EvaluationRun) -> dict[str, ModelResult]:
    return {r.candidate.label: r for r in run.results}


def _model_row(label: str, results: Sequence[ModelResult], metric: str) -> dict[str, Any]:
    per_seed = []
    for r in results:
        search = r.search.to_dict() if r.search else {}
        per_seed.append({
            **{m: round(r.test.metrics[m], 5) for m in (metric, *REPORTED) if m in r.test.metrics},
            "validation": round(r.validation.get(metric, float("nan")), 5),
            "fit_seconds": round(r.fit_seconds, 3), "params": r.params,
            "on_edge": search.get("on_edge", []), "widenings": len(search.get("widenings", [])),
        })
    mean = {m: round(statistics.mean(s[m] for s in per_seed), 5)
            for m in (*REPORTED, "validation", "fit_seconds") if all(m in s for s in per_seed)}
    return {"name": label, "kind": results[0].candidate.kind,
            "algorithm": results[0].candidate.algorithm, "mean": mean, "seeds": per_seed,
            "on_edge_any_seed": sorted({p for s in per_seed for p in s["on_edge"]})}


def _paired(
    a: Sequence[ModelResult], b: Sequence[ModelResult], seeds: Sequence[int], metric: str,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Stratified interval of ``a - b`` over seeds, and each seed's own paired interval."""
    diffs, per_seed = [], []
    for s, x, y in zip(seeds, a, b, strict=True):
        if not np.array_equal(x.test.users, y.test.users):
            raise RuntimeError(f"seed {s}: models were evaluated on different users")
        diffs.append(x.test.per_user[metric] - y.test.per_user[metric])
        boot = paired_bootstrap(x.test.per_user[metric], y.test.per_user[metric], seed=s)
        per_seed.append({"seed": s, **{k: round(v, 5) for k, v in boot.items()}})
    return stratified_interval(diffs), per_seed


def _ablations(
    rows: Sequence[Mapping[str, Any]], tables: Mapping[int, Mapping[str, ModelResult]],
    seeds: Sequence[int], metric: str,
) -> list[dict[str, Any]]:
    """Each blend against its ablation (``"stacked without two_tower"``), paired by user:
    what the left-out model adds to the blend, over seeds."""
    out = []
    for row in rows:
        parts = ablation_parts(row["name"])
        if parts is None:
            continue
        blend_algorithm, dropped = parts
        bases = [r["name"] for r in rows if r["algorithm"] == blend_algorithm
                 and ablation_parts(r["name"]) is None]
        if len(bases) != 1:
            continue
        full = [tables[s][bases[0]] for s in seeds]
        ablated = [tables[s][row["name"]] for s in seeds]
        interval, per_seed = _paired(full, ablated, seeds, metric)
        out.append({
            "blend": bases[0], "without": dropped,
            "blend_mean": round(statistics.mean(r.test.metrics[metric] for r in full), 5),
            "ablated_mean": round(statistics.mean(r.test.metrics[metric] for r in ablated), 5),
            "used_on_seeds": [s for s, r in zip(seeds, full, strict=True) if dropped in
                              {c["algorithm"] for c in r.params.get("components", [])}],
            "paired_interval": {k: round(v, 5) for k, v in interval.items()},
            "excludes_zero": interval["ci_low"] > 0 or interval["ci_high"] < 0,
            "per_seed": per_seed,
        })
    return out


def summarise_seeds(
    runs: Mapping[int, EvaluationRun], reference: str = "ease", metric: str = "ndcg@10",
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Mean-over-seeds table of every model, and the headline: our best model (mean
    validation ``metric``; ``exclude``d labels never chosen) vs ``reference``."""
    seeds = sorted(runs)
    labels = [r.candidate.label for r in runs[seeds[0]].results]
    tables = {s: _by_label(runs[s]) for s in seeds}
    labels = [label for label in labels if all(label in tables[s] for s in seeds)]
    rows = [_model_row(label, [tables[s][label] for s in seeds], metric) for label in labels]
    ours = [r for r in rows if r["kind"] == "ours" and r["name"] not in exclude
            and ablation_parts(r["name"]) is None]
    out: dict[str, Any] = {"seeds": seeds, "metric": metric, "reference": reference,
                           "models": rows, "headline": {},
                           "ablations": _ablations(rows, tables, seeds, metric)}
    if reference not in labels:
        return out
    for row in rows:  # every model against the reference, paired by user
        interval, _ = _paired([tables[s][row["name"]] for s in seeds],
                              [tables[s][reference] for s in seeds], seeds, metric)
        row["vs_reference"] = {k: round(v, 5) for k, v in interval.items()}
    if not ours:
        return out
    choice = choose([contender([tables[s][r["name"]] for s in seeds]) for r in ours])
    best = choice.winner
    interval, per_seed = _paired([tables[s][best] for s in seeds],
                                 [tables[s][reference] for s in seeds], seeds, metric)
    mean_best = statistics.mean(tables[s][best].test.metrics[metric] for s in seeds)
    mean_ref = statistics.mean(tables[s][reference].test.metrics[metric] for s in seeds)
    out["headline"] = {
        "best": best, "chosen_on": f"mean validation {metric} over seeds, one standard error "
                                   "rule", "choice": choice.to_dict(),
        "best_mean": round(mean_best, 5), "reference_mean": round(mean_ref, 5),
        "ratio": round(mean_best / mean_ref, 4) if mean_ref > 0 else None,
        "paired_interval": {k: round(v, 5) for k, v in interval.items()},
        "interval_method": "stratified bootstrap of per-user differences within each seed",
        "excludes_zero": interval["ci_low"] > 0 or interval["ci_high"] < 0,
        "per_seed": per_seed,
    }
    return out


def seeds_markdown(summary: Mapping[str, Any], title: str = "Evaluation over seeds") -> str:
    metric = summary["metric"]
    lines = [f"# {title}", "", f"Seeds {', '.join(map(str, summary['seeds']))}; every figure "
             "is the mean over seeds.", ""]
    head = summary.get("headline") or {}
    if head:
        ci = head["paired_interval"]
        lines += [
            f"**Headline:** {head['best']} (chosen on {head['chosen_on']}) reaches "
            f"{head['best_mean']:.4f} test {metric} vs {head['reference_mean']:.4f} for "
            f"{summary['reference']}: **{head['ratio']:.3f}x**; mean paired difference "
            f"{ci['mean_diff']:+.4f}, 95% interval [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]"
            f" ({head['interval_method']}); the interval "
            + ("excludes" if head["excludes_zero"] else "includes") + " 0.", "",
            *([f"**Choice:** {head['choice']['rule']}.", ""] if head.get("choice") else []),
            "| seed | difference | paired 95% interval |", "|---|---|---|",
            *(f"| {p['seed']} | {p['mean_diff']:+.4f} | [{p['ci_low']:+.4f}, "
              f"{p['ci_high']:+.4f}] |" for p in head["per_seed"]), "",
        ]
    ablations = summary.get("ablations") or []
    if ablations:
        lines += [f"**Ablations** (paired by user, mean over seeds; {metric}): what the "
                  "left-out model adds to each blend. Where the blend did not use it, the "
                  "ablation is the blend itself (difference 0 on that seed).", "",
                  "| blend | without | blend | ablated | difference | paired 95% interval | "
                  "used on seeds |", "|---|---|---|---|---|---|---|"]
        for a in ablations:
            ci = a["paired_interval"]
            lines.append(
                f"| {a['blend']} | {a['without']} | {a['blend_mean']:.4f} | "
                f"{a['ablated_mean']:.4f} | {ci['mean_diff']:+.4f} | [{ci['ci_low']:+.4f}, "
                f"{ci['ci_high']:+.4f}] | {', '.join(map(str, a['used_on_seeds'])) or 'none'} |")
        lines.append("")
    lines += [f"| Model | kind | {metric} (val) | NDCG@10 | vs {summary['reference']}: "
              "paired difference [95%] | Recall@10 | Coverage@10 | fit s | "
              "min-max NDCG@10 over seeds | on a grid edge (any seed) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary["models"]:
        m = row["mean"]
        values = [s.get("ndcg@10", float("nan")) for s in row["seeds"]]
        vs = row.get("vs_reference")
        paired = "" if vs is None else (
            f"{vs['mean_diff']:+.4f} [{vs['ci_low']:+.4f}, {vs['ci_high']:+.4f}]")
        lines.append(
            f"| {row['name']} | {row['kind']} | {m.get('validation', float('nan')):.4f} | "
            f"{m.get('ndcg@10', float('nan')):.4f} | {paired} | "
            f"{m.get('recall@10', float('nan')):.4f} | "
            f"{m.get('coverage@10', float('nan')):.4f} | {m.get('fit_seconds', 0.0):.2f} | "
            f"{min(values):.4f}-{max(values):.4f} | "
            f"{', '.join(row['on_edge_any_seed']) or 'none'} |")
    return "\n".join(lines) + "\n"


def plot_seeds(summary: Mapping[str, Any], path: Path, metric: str = "ndcg@10") -> Path:
    """Mean test ``metric`` per model (bars) with each seed's value (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["models"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(rows) + 2), 4.5))
    x = np.arange(len(rows))
    ax.bar(x, [r["mean"].get(metric, 0.0) for r in rows], color="#9bb7d4")
    for i, r in enumerate(rows):
        values = [s.get(metric, np.nan) for s in r["seeds"]]
        ax.scatter(np.full(len(values), i), values, color="#1f3b5b", s=12, zorder=3)
    ax.set_xticks(x, [r["name"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel(f"test {metric} (mean over seeds; dots: seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
