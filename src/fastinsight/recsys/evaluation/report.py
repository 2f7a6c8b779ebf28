"""Evaluation results as JSON (machines), Markdown (people), PNG plots, and the stored document."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ndcg@{k}", "NDCG@{k}"), ("recall@{k}", "Recall@{k}"), ("precision@{k}", "P@{k}"),
    ("mrr@{k}", "MRR@{k}"), ("hit@{k}", "Hit@{k}"), ("coverage@{k}", "Coverage@{k}"),
    ("novelty@{k}", "Novelty@{k}"), ("arp@{k}", "ARP@{k}"),
)


def _fmt(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _value(value: Any) -> str:
    if isinstance(value, list | tuple) and value and all(
            isinstance(v, Mapping) and "algorithm" in v for v in value):
        return "+".join(str(v["algorithm"]) for v in value)  # hybrid components
    return str(value)


def _params(params: Mapping[str, Any], searched: Mapping[str, Any] | None) -> str:
    keys = sorted(searched) if searched else []
    return ", ".join(f"{k}={_value(params[k])}" for k in keys if k in params) or "defaults"


def _weights(info: Mapping[str, Any]) -> str:
    weights = info.get("weights") or {}
    return ("; weights " + ", ".join(f"{k.split('_', 1)[-1]} {v:g}" for k, v in weights.items())
            if weights else "")


def _alternations(p: Mapping[str, Any]) -> str:
    n = int(p.get("max_alternations") or 0)
    return f"; staged searches alternate their stages up to {n} more times" if n else ""


def _search_sentence(p: Mapping[str, Any], metric: str) -> str:
    how = ("complete grids (every trial, no time budget; edges widened up to "
           f"{p.get('max_widenings', 0)} times{_alternations(p)})" if p.get("complete")
           else f"{p['search_mode']}, {p['budget_seconds']} s per model")
    return (f"Search: {how}, on validation {metric}; chosen configuration refitted on "
            "train+validation.")


def _edges(search: Mapping[str, Any]) -> str:
    """Parameters whose best value is on an edge of the grid, and the widenings made."""
    if not search:
        return ""
    widened = sum(1 for w in search.get("widenings", []) if w.get("added"))
    edge = ", ".join(search.get("on_edge", [])) or "none"
    return edge + (f" (widened {widened}x)" if widened else "")


def _metric_k(report: Mapping[str, Any]) -> int:
    return int(str(report["protocol"]["metric"]).partition("@")[2])


def markdown(report: Mapping[str, Any]) -> str:
    """Human-readable tables: headline at the first K, then every K, then the search."""
    ks: list[int] = report["protocol"]["ks"]
    metric = report["protocol"]["metric"]
    k0 = _metric_k(report)
    ds = report["dataset"]["after_filter"]
    p = report["protocol"]
    lines = [
        f"# Offline evaluation — {ds['source']}",
        "",
        f"Split **{p['split']}** (validation {p['validation']}, test {p['test']}, seed {p['seed']}),"
        f" users with ≥ {p['min_positives']} positives: {ds['users']} users, {ds['items']} items,"
        f" {ds['positives']} positives"
        + (f" and {ds['context_pairs']} other interactions (training input, never relevant)"
           if ds.get("context_pairs") else " (training on positives alone)")
        + f"; {p['evaluated_users_test']} users evaluated on test."
        f" Full-catalogue ranking, training items excluded. "
        + (f"Protocol **{p.get('protocol', 'product')}**. " if p.get("protocol") else "")
        + (_search_sentence(p, metric)
           if p["search"] else "No search: given parameters, refitted on train+validation."),
        "",
        f"| Model | kind | {metric} (val) | NDCG@{k0} ± 95% | Recall@{k0} | Coverage@{k0} | "
        f"Novelty@{k0} | ARP@{k0} | fit s | trials | grid edge | chosen params |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        t = m["test"]
        search = m.get("search") or {}
        space = {tr_k: None for tr in search.get("trials", [])[:1] for tr_k in tr["params"]}
        lines.append(
            f"| {m['name']} | {m['kind']} | {_fmt(m['validation'].get(metric))} | "
            f"{_fmt(t[f'ndcg@{k0}'])} ± {_fmt(m['test_ci95'][f'ndcg@{k0}'], 3)} | "
            f"{_fmt(t[f'recall@{k0}'])} | {_fmt(t[f'coverage@{k0}'])} | "
            f"{_fmt(t[f'novelty@{k0}'], 2)} | {_fmt(t[f'arp@{k0}'])} | {m['fit_seconds']:.2f} | "
            f"{search.get('trials_run', 0)}/{search.get('grid_size', 0)} | "
            f"{_edges(search)} | {_params(m['params'], space)}{_weights(m.get('model_info') or {})} |"
        )
    comp = report.get("comparison") or {}
    if comp:
        boot = comp["paired_bootstrap"]
        lift = comp["relative_lift"]
        lines += [
            "",
            f"**Best of ours vs best external reference** (each chosen on validation {metric}):"
            f" {comp['best_ours']} {comp['ours_test']:.4f} vs {comp['best_external']}"
            f" {comp['external_test']:.4f} on test"
            + (f", lift {lift * 100:+.1f}%" if lift is not None else "")
            + f"; paired bootstrap of the per-user difference: mean {boot['mean_diff']:+.4f},"
            f" 95% CI [{boot['ci_low']:+.4f}, {boot['ci_high']:+.4f}].",
        ]
        if comp.get("choice"):
            lines += ["", f"**Choice of ours:** {comp['choice']['rule']}."]
    lines += ["", "## All metrics on test", ""]
    for k in ks:
        header = ["Model"] + [label.format(k=k) for _, label in TABLE_COLUMNS]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for m in report["models"]:
            cells = [m["name"]] + [_fmt(m["test"].get(key.format(k=k))) for key, _ in TABLE_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["", f"## NDCG@{k0} by user activity (training interactions)", ""]
    buckets = [b["bucket"] for b in report["models"][0]["ndcg_by_activity"]] if report[
        "models"] else []
    counts = [str(b["users"]) for b in report["models"][0]["ndcg_by_activity"]] if buckets else []
    lines.append("| Model | " + " | ".join(buckets) + " |")
    lines.append("|" + "---|" * (len(buckets) + 1))
    lines.append("| *users* | " + " | ".join(counts) + " |")
    for m in report["models"]:
        lines.append(f"| {m['name']} | " + " | ".join(
            _fmt(b["mean"]) for b in m["ndcg_by_activity"]) + " |")
    t = report["timings"]
    load = t.get("load_average_1m") or {}
    lines += ["", f"Total {t['total_seconds']:.0f} s on {report['environment']['cpus']} CPUs"
              f" (data preparation {t['prepare_seconds']:.1f} s; 1-minute load average"
              f" {load.get('start')} at start, {load.get('end')} at end).", ""]
    return "\n".join(lines)


def plot_metric_vs_k(report: Mapping[str, Any], path: Path, metric: str = "ndcg") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = report["protocol"]["ks"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in report["models"]:
        style = "--" if m["kind"] == "external" else "-"
        ax.plot(ks, [m["test"][f"{metric}@{k}"] for k in ks], style, marker="o", label=m["name"])
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K (test)")
    ax.set_xticks(ks)
    ax.set_title(f"{metric}@K — {report['dataset']['after_filter']['source']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_activity(report: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = report["models"]
    buckets = [b["bucket"] for b in models[0]["ndcg_by_activity"]] if models else []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(buckets))
    for i, m in enumerate(models):
        values = {b["bucket"]: b["mean"] for b in m["ndcg_by_activity"]}
        ax.bar(x + i * width, [values.get(b, 0.0) for b in buckets], width, label=m["name"])
    counts = [b["users"] for b in models[0]["ndcg_by_activity"]] if models else []
    ax.set_xticks(x + width * (len(models) - 1) / 2,
                  [f"{b}\n({n} users)" for b, n in zip(buckets, counts, strict=True)])
    k0 = _metric_k(report)
    ax.set_xlabel("training interactions per user")
    ax.set_ylabel(f"NDCG@{k0} (test)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: Mapping[str, Any], out_dir: Path, name: str = "evaluation") -> list[Path]:
    """``<name>.json``, ``<name>.md`` and ``plots/<name>_*.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    md_path = out_dir / f"{name}.md"
    md_path.write_text(markdown(report))
    paths = [json_path, md_path]
    if report["models"]:
        plots = out_dir / "plots"
        paths.append(plot_metric_vs_k(report, plots / f"{name}_ndcg_vs_k.png", "ndcg"))
        paths.append(plot_metric_vs_k(report, plots / f"{name}_recall_vs_k.png", "recall"))
        paths.append(plot_activity(report, plots / f"{name}_ndcg_by_activity.png"))
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths


def evaluation_document(report: Mapping[str, Any], model_version: str | None = None) -> dict[str, Any]:
    """The report as it is stored (search trials dropped to keep it small)."""
    doc: dict[str, Any] = json.loads(json.dumps(report))
    for m in doc.get("models", []):
        if m.get("search"):
            m["search"].pop("trials", None)
    doc["stored_at"] = datetime.now(UTC)
    if model_version is not None:
        doc["model_version"] = model_version
    return doc
