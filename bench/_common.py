"""Helpers shared by the benchmarks: result files, tables, the database URI."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def mongo_uri() -> str:
    return os.environ.get("FASTINSIGHT_BENCH_MONGODB_URI", "mongodb://127.0.0.1:27017/")


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "date": datetime.now(UTC).isoformat(timespec="seconds")}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str) + "\n")
    return path


def write_study(out: Path, name: str, dataset: str, payload: dict[str, Any],
                markdown: list[str]) -> None:
    """``out/<name>.json`` (machine, commit and data set first) and ``out/<name>.md``."""
    out.mkdir(parents=True, exist_ok=True)
    full = {"machine": machine(), "commit": head(), "dataset": dataset, **payload}
    (out / f"{name}.json").write_text(json.dumps(full, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(markdown) + "\n")


def publish_study(args: argparse.Namespace, name: str, payload: dict[str, Any],
                  markdown: list[str], rows: list[dict[str, Any]], columns: list[str]) -> int:
    """A study's last step: :func:`write_study` into ``args.out``, then its summary
    ``rows`` as JSON and as a table on stdout. Returns the exit status (0)."""
    write_study(args.out, name, str(Path(args.data).name), payload, markdown)
    print(json.dumps(rows, indent=2))
    print(table(rows, columns, digits=4))
    return 0


def table(rows: list[dict[str, Any]], columns: list[str], digits: int = 2) -> str:
    widths = [max(len(c), *(len(_fmt(r.get(c), digits)) for r in rows)) for c in columns]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "-+-".join("-" * w for w in widths)
    body = [" | ".join(_fmt(r.get(c), digits).ljust(w) for c, w in zip(columns, widths, strict=True))
            for r in rows]
    return "\n".join([line, sep, *body])


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return "" if value is None else str(value)


MOVIELENS = Path("/work/shared/datasets/ml-latest-small")


def seeds_parser(description: str) -> argparse.ArgumentParser:
    """``--data`` (MovieLens folder), ``--seeds`` (comma-separated) and ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=MOVIELENS)
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser


def params_from_parser(description: str) -> argparse.ArgumentParser:
    """:func:`seeds_parser` and ``--params-from``: the over-seeds run whose per-seed
    choices (``bench/results/<name>_seed<N>.json``) a study refits."""
    parser = seeds_parser(description)
    parser.add_argument("--params-from", default="movielens_seeds_binary",
                        help="bench/results/<name>_seed<N>.json holding each seed's choices")
    return parser


def over_seeds(seeds: str, run: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    """``run(seed)`` for each of the comma-separated ``seeds``, its seconds on stderr."""
    out = []
    for seed in (int(s) for s in seeds.split(",")):
        started = time.perf_counter()
        out.append(run(seed))
        print(f"seed {seed}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return out


def paired_to_reference(per: Sequence[Any], reference: Sequence[Any]) -> dict[str, float]:
    """Mean over seeds of per-user scores ``per`` (one array per seed), and the paired
    difference to ``reference`` (same users per seed) with its stratified 95% interval
    (:func:`fastinsight.recsys.evaluation.seeds.stratified_interval`), rounded to 4 digits."""
    import numpy as np

    from fastinsight.recsys.evaluation.seeds import stratified_interval

    paired = stratified_interval([np.asarray(p) - np.asarray(r)
                                  for p, r in zip(per, reference, strict=True)])
    return {"mean": float(np.mean([np.asarray(p).mean() for p in per])),
            "diff": round(paired["mean_diff"], 4), "ci_low": round(paired["ci_low"], 4),
            "ci_high": round(paired["ci_high"], 4)}


def binary_movielens(directory: Path) -> Any | None:
    """MovieLens under the binary protocol (ratings >= 4 of weight 1, users with >= 5), or
    None after saying on stderr where the data set was looked for."""
    from fastinsight.recsys.evaluation.data import filter_min_positives

    data = product_movielens(directory)
    return None if data is None else filter_min_positives(data.binary().without_context(), 5)


def product_movielens(directory: Path) -> Any | None:
    """MovieLens as the product protocol reads it (ratings >= 4 positive, the rest context,
    with times), or None after saying on stderr where the data set was looked for."""
    from fastinsight.recsys.evaluation.data import load_movielens

    if not (directory / "ratings.csv").exists():
        print(f"no ratings.csv in {directory}; pass --data", file=sys.stderr)
        return None
    return load_movielens(directory, min_rating=4.0)


def binary_seed_runs(args: argparse.Namespace,
                     run: Callable[[Any, int], dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``run(data, seed)`` for each of ``args.seeds`` on MovieLens under the binary
    protocol from ``args.data``, or None (said on stderr) when the data set is missing."""
    return _seed_runs(binary_movielens(args.data), args.seeds, run)


def product_seed_runs(args: argparse.Namespace,
                      run: Callable[[Any, int], dict[str, Any]]) -> list[dict[str, Any]] | None:
    """As :func:`binary_seed_runs`, on MovieLens as the product protocol reads it."""
    return _seed_runs(product_movielens(args.data), args.seeds, run)


def _seed_runs(data: Any | None, seeds: str,
               run: Callable[[Any, int], dict[str, Any]]) -> list[dict[str, Any]] | None:
    return None if data is None else over_seeds(seeds, lambda seed: run(data, seed))


@dataclass(frozen=True)
class SeedSplit:
    """One seed's random 80/10/10 split as the studies use it: ``train`` is fitted and
    scored on validation, ``final`` (train + validation) refitted and scored on test."""

    split: Any
    train: Any
    final: Any
    val_users: Any
    test_users: Any


def seed_split(data: Any, seed: int, dtype: Any = None) -> SeedSplit:
    """The split of ``data`` for ``seed``; ``dtype`` converts the fit matrices (None: as is)."""
    import numpy as np
    import scipy.sparse as sp

    from fastinsight.recsys.evaluation.splits import make_split

    split = make_split(data, "random", 0.1, 0.1, seed)
    return SeedSplit(
        split=split, train=sp.csr_matrix(split.train, dtype=dtype),
        final=sp.csr_matrix(split.train + split.validation, dtype=dtype),
        val_users=np.flatnonzero(np.diff(split.validation.indptr)),
        test_users=np.flatnonzero(np.diff(split.test.indptr)),
    )


def ndcg_at_10(scores: Any, relevant: Any) -> Any:
    """Per-user NDCG@10 of ``scores`` as given (seen items already excluded) against ``relevant``."""
    from fastinsight.recsys.evaluation.metrics import ranking_metrics, top_k_from_scores

    return ranking_metrics(top_k_from_scores(scores, 10), relevant, [10])["ndcg@10"]


def ndcg_recall_at_10(scores: Any, seen: Any, relevant: Any) -> Any:
    """Per-user NDCG@10 and Recall@10 (a 2 x users array) of ``scores`` ranked without the
    items of ``seen``, against ``relevant``, as the over-seeds studies score them."""
    import numpy as np

    from fastinsight.recsys.evaluation.metrics import (
        exclude_seen,
        ranking_metrics,
        top_k_from_scores,
    )

    ranked = np.array(scores, dtype=np.float64)
    exclude_seen(ranked, seen)
    metrics = ranking_metrics(top_k_from_scores(ranked, 10), relevant, [10])
    return np.stack([metrics["ndcg@10"], metrics["recall@10"]])


BINARY_PROTOCOL = ("binary positives (rating >= 4), users >= 5, random 80/10/10, "
                   "chosen on validation NDCG@10, refit on train + validation")


def study_table(rows: list[dict[str, Any]], columns: list[str],
                extra: dict[str, str]) -> list[str]:
    """Markdown lines of an over-seeds study's table: ``columns`` (row keys as headers),
    then ``extra`` (header -> row key)."""
    headers = [*columns, *extra]
    keys = [*columns, *extra.values()]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]


def drop_per_user(seeds: list[dict[str, Any]], group: str = "families",
                  key: str = "per_user_ndcg") -> None:
    """Remove the per-user scores (``seed[group][*][key]``, kept for the pairing) before a
    study is written."""
    for seed in seeds:
        for entry in seed[group].values():
            entry.pop(key)


def checkout_ref(ref: str) -> Path:
    """A detached ``git worktree`` of ``ref`` in a temporary folder (remove with ``drop_checkout``)."""
    where = Path(tempfile.mkdtemp(prefix="fi-base-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
                   check=True, capture_output=True)
    # The dashboard's chart library is installed, not tracked: share this tree's copy.
    modules = ROOT / "src/fastinsight/dashboard/node_modules"
    if modules.exists():
        (where / "src/fastinsight/dashboard/node_modules").symlink_to(modules)
    return where


def drop_checkout(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False)


def head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
