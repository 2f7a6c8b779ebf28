"""Fit time and peak memory of every model on 1,000,000 synthetic interactions.

Data: 50,000 users x 20,000 items, power-law item popularity, users with a favourite
topic (75% of their interactions come from it), the configured interaction types and
weights, 180 days of timestamps (30-day half-life decay). 5,000 users each have one
item held out, so every model also reports HR@10 as a sanity check (not a tuned score).

Each model fits in a fresh subprocess; peak memory is that process's ``ru_maxrss``
(tracemalloc cannot see native allocations), also shown as the growth over the
process's high-water mark right before ``fit``. ``implicit_als`` calls implicit's ALS
directly on the same matrix with the same parameters: the baseline for our ALS
pipeline's overhead (target < 30%), and its factors must equal ours.

    .venv/bin/python bench/train.py                  # everything, writes results/train.json
    .venv/bin/python bench/train.py --only als,implicit_als --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import checkout_ref, drop_checkout, head, table, write_result

ROOT = Path(__file__).resolve().parents[1]
HOLDOUT_USERS = 5_000
WORKER_TIMEOUT_S = 420

ALS_PARAMS: dict[str, Any] = {"factors": 64, "iterations": 15, "regularization": 0.05,
                              "alpha": 1.0, "random_state": 42}
# name -> (algorithm, params). "implicit_als" is the direct-implicit baseline.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "popularity": ("popularity", {}),
    "itemknn_cosine": ("itemknn", {"k": 100}),
    "itemknn_bm25": ("itemknn", {"k": 100, "weighting": "bm25"}),
    "ease_10k": ("ease", {"l2": 500.0, "max_items": 10_000}),
    "als": ("als", ALS_PARAMS),
    "implicit_als": ("implicit_als", ALS_PARAMS),
    # The same two models given the interaction times: sessions (30-minute gap) join
    # the fit. The plain rows above get no times, so "als" stays comparable with implicit.
    "ease_10k_sessions": ("ease", {"l2": 500.0, "max_items": 10_000}),
    "als_sessions": ("als", ALS_PARAMS),
    # Capped epochs keep the whole run near ten minutes on two cores.
    "two_tower": ("two_tower", {"epochs": 5}),
}


# ---- synthetic data ------------------------------------------------------------------------
def synthetic(n_users: int, n_items: int, n_inter: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_topics = 50
    topic = rng.integers(0, n_topics, n_items)
    popularity = 1.0 / rng.permutation(np.arange(1, n_items + 1)) ** 0.9
    favourite = rng.integers(0, n_topics, n_users)
    activity = rng.lognormal(0.0, 1.0, n_users)
    per_user = np.maximum(1, np.round(activity / activity.sum() * n_inter)).astype(np.int64)
    users = np.repeat(np.arange(n_users), per_user)[:n_inter]
    n = users.size

    order = np.argsort(topic, kind="stable")
    cum = np.cumsum(popularity[order])
    seg_end = np.searchsorted(topic[order], np.arange(n_topics), side="right")
    seg_start = np.concatenate([[0], seg_end[:-1]])
    before = np.where(seg_start > 0, cum[np.maximum(seg_start - 1, 0)], 0.0)
    total = cum[seg_end - 1] - before

    in_topic = rng.random(n) < 0.75
    t = favourite[users]
    target = np.where(in_topic, before[t] + rng.random(n) * total[t], rng.random(n) * cum[-1])
    items = order[np.minimum(np.searchsorted(cum, target, side="right"), n_items - 1)]

    kinds = np.array(["view", "click", "like", "add_to_cart", "purchase", "rating", "dislike"])
    types = kinds[rng.choice(len(kinds), size=n, p=[0.68, 0.15, 0.05, 0.05, 0.04, 0.02, 0.01])]
    values = np.where(types == "rating", rng.integers(1, 6, n), np.nan).astype(np.float64)
    now = np.datetime64("2024-06-30T00:00:00", "s")
    stamps = now - rng.integers(0, 180 * 86_400, n).astype("timedelta64[s]")
    return {"users": np.char.add("u", users.astype(str)), "items": np.char.add("i", items.astype(str)),
            "types": types, "values": values, "timestamps": stamps}


def hold_out(matrix: sp.csr_matrix, n_users: int, seed: int = 1
             ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Remove one random positive from each of ``n_users`` users with at least two."""
    rng = np.random.default_rng(seed)
    lengths = np.diff(matrix.indptr)
    eligible = np.flatnonzero(lengths >= 2)
    chosen = np.sort(rng.choice(eligible, size=min(n_users, eligible.size), replace=False))
    pos = matrix.indptr[chosen] + (rng.random(chosen.size) * lengths[chosen]).astype(np.int64)
    held_items = matrix.indices[pos].copy()
    train = matrix.copy()
    train.data[pos] = 0.0
    train.eliminate_zeros()
    return train, chosen, held_items


# ---- worker: one model, one fresh process ---------------------------------------------------
def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak RSS of this process during a block, from /proc (per address space).

    ``ru_maxrss`` is no good here: Linux carries the parent's high-water mark across
    fork+exec, so a child forked from the big data-generating parent starts at its size.
    ``VmHWM`` belongs to the new address space; writing 5 to ``clear_refs`` resets it to
    the current RSS, so the peak seen afterwards is the fit's own.
    """

    def __enter__(self) -> PeakMemory:
        self.before_peak = _status_mb("VmHWM") or 0.0
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.start = _status_mb("VmRSS") or 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        hwm = _status_mb("VmHWM")
        if hwm is None:  # no /proc: fall back to ru_maxrss (KiB on Linux)
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        self.fit_peak = hwm
        self.process_peak = max(hwm, self.before_peak)
        self.growth = hwm - self.start if self.reset else float("nan")


def worker(name: str, data_dir: Path) -> dict[str, Any]:
    algorithm, params = MODELS[name]
    with np.load(data_dir / "train.npz", allow_pickle=False) as z:
        matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        users, held = z["holdout_users"], z["holdout_items"]
    if algorithm == "implicit_als":
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with PeakMemory() as mem:
            started = time.perf_counter()
            with threadpool_limits(1, "blas"):
                model = AlternatingLeastSquares(dtype=np.float32, **params)
                model.fit(matrix, show_progress=False)
            seconds = time.perf_counter() - started
        factors = np.asarray(model.item_factors, dtype=np.float32)
        top = []
        for start in range(0, users.size, 1000):
            batch = users[start:start + 1000]
            ids, _ = model.recommend(batch, matrix[batch], N=10, filter_already_liked_items=True)
            top.append(ids)
        top10 = np.concatenate(top)
    else:
        # Framework imports stay outside the timing on both sides, as in a long-lived
        # training process; only fit() itself is measured.
        import implicit.cpu.als  # noqa: F401
        import threadpoolctl  # noqa: F401

        from fastinsight.recsys.registry import create

        if algorithm == "two_tower":
            import fastinsight.recsys.two_tower_net  # noqa: F401
        ours = create(algorithm, params)
        if name.endswith("_sessions"):
            with np.load(data_dir / "train.npz", allow_pickle=False) as z:
                ours.set_interaction_times(sp.csr_matrix(
                    (z["times"], z["indices"], z["indptr"]), shape=tuple(z["shape"])))
        with PeakMemory() as mem:
            started = time.perf_counter()
            ours.fit(matrix)
            seconds = time.perf_counter() - started
        maybe = ours.item_factors()
        factors = np.asarray(maybe, dtype=np.float32) if maybe is not None else np.zeros(0)
        top10 = np.stack([ours.recommend(int(u), 10)[0] for u in users])
    if algorithm in ("als", "implicit_als"):
        np.save(data_dir / f"{name}_items.npy", factors)
    hits = float(np.mean([h in row for h, row in zip(held.tolist(), top10.tolist(), strict=True)]))
    return {"model": name, "algorithm": algorithm, "params": params,
            "fit_s": round(seconds, 2), "peak_rss_mb": round(mem.process_peak, 1),
            "fit_growth_mb": round(mem.growth, 1), "hr@10": round(hits, 4)}


def run_worker(name: str, data_dir: Path, tree: Path = ROOT) -> dict[str, Any]:
    """Fit one model in a fresh process importing the code of ``tree`` (this checkout by default)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--data", str(data_dir)]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"model": name, "error": f"timed out after {WORKER_TIMEOUT_S}s"}
    if done.returncode != 0:
        return {"model": name, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - started, 1)
    return result


def compare_with_ref(args: argparse.Namespace, names: list[str], data_dir: Path) -> None:
    """Each model fitted ``--repeat`` times by each tree, alternating which goes first."""
    base = checkout_ref(args.base_ref)
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            for r in range(args.repeat):
                order = [("this tree", ROOT), ("base", base)]
                for label, tree in order if r % 2 == 0 else order[::-1]:
                    print(f"fitting {name} ({label}, run {r + 1}) ...", file=sys.stderr, flush=True)
                    rows.append({"model": name, "code": label, "run": r + 1, **run_worker(name, data_dir, tree)})
    finally:
        drop_checkout(base)
    summary: dict[str, Any] = {}
    for name in names:
        side = {label: [x for x in rows if x["model"] == name and x["code"] == label]
                for label in ("base", "this tree")}
        fits = {label: [x["fit_s"] for x in xs if "fit_s" in x] for label, xs in side.items()}
        if not all(fits.values()):
            summary[name] = {"error": [x.get("error") for x in rows if x["model"] == name and "error" in x]}
            continue
        # fit_s is rounded to 10 ms: a model that fits faster has no meaningful ratio.
        ratios = [h / b for b, h in zip(fits["base"], fits["this tree"], strict=True) if b > 0]
        summary[name] = {
            **{f"{label} fit_s": {"median": float(np.median(v)), "min": min(v), "max": max(v)}
               for label, v in fits.items()},
            "ratio this tree / base, by run": [round(x, 3) for x in ratios],
            "ratio median": round(float(np.median(ratios)), 3) if ratios else None,
            "same hr@10": len({x.get("hr@10") for x in side["base"] + side["this tree"]}) == 1,
        }
    out = {"benchmark": "train_ab", "base_ref": args.base_ref, "head": head(), "repeat": args.repeat,
           "data": {"users": args.users, "items": args.items, "interactions": args.interactions},
           "results": rows, "summary": summary}
    print(json.dumps(out, indent=2))
    print(table(rows, ["model", "code", "run", "fit_s", "peak_rss_mb", "hr@10"]))
    for name, s in summary.items():
        print(f"{name}: this tree / base fit time = {s.get('ratio median')} (runs {s.get('ratio this tree / base, by run')})")
    if not args.no_write:
        write_result("train_ab", out)


# ---- parent ------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the ALS pair (best kept)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--base-ref", default="",
                    help="also fit every model with the code of this git ref, runs interleaved "
                         "(--repeat each), and write results/train_ab.json instead")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.data))))
        return

    sys.path.insert(0, str(ROOT / "src"))
    from fastinsight.config import DEFAULT_INTERACTION_WEIGHTS
    from fastinsight.recsys.ease import estimate_bytes
    from fastinsight.recsys.matrix import from_arrays
    from fastinsight.recsys.registry import algorithms
    from fastinsight.recsys.sessions import pair_times, session_matrix

    load_start = os.getloadavg()
    started = time.perf_counter()
    cols = synthetic(args.users, args.items, args.interactions)
    gen_s = time.perf_counter() - started
    t = time.perf_counter()
    built = from_arrays(cols["users"], cols["items"], cols["types"], cols["values"],
                        cols["timestamps"], DEFAULT_INTERACTION_WEIGHTS, half_life_days=30.0)
    build_s = time.perf_counter() - t
    train, h_users, h_items = hold_out(built.matrix, HOLDOUT_USERS)
    assert built.times is not None
    times = pair_times(built.times, train)
    sessions = session_matrix(train, times, 1800.0)

    names = [n for n in (args.only.split(",") if args.only else MODELS)]
    notes: list[str] = []
    if "two_tower" in names and "two_tower" not in algorithms():
        names.remove("two_tower")
        notes.append("two_tower skipped: not registered in fastinsight.recsys.registry")
    results = []
    with tempfile.TemporaryDirectory(prefix="fi-bench-train-") as tmp:
        data_dir = Path(tmp)
        np.savez(data_dir / "train.npz", data=train.data, indices=train.indices,
                 indptr=train.indptr, shape=np.array(train.shape),
                 holdout_users=h_users, holdout_items=h_items, times=times)
        if args.base_ref:
            compare_with_ref(args, names, data_dir)
            return
        for name in names:
            print(f"fitting {name} ...", file=sys.stderr, flush=True)
            results.append(run_worker(name, data_dir))
            print(f"  {results[-1]}", file=sys.stderr, flush=True)
        by_name = {r["model"]: r for r in results}
        # The ALS pair is the overhead comparison: on a shared machine one run each is
        # noisy, so alternate extra runs and keep each side's fastest.
        pair = [n for n in ("als", "implicit_als") if "fit_s" in by_name.get(n, {})]
        for _ in range(args.repeat - 1 if len(pair) == 2 else 0):
            for name in pair:
                again = run_worker(name, data_dir)
                by_name[name].setdefault("fit_s_runs", [by_name[name]["fit_s"]])
                by_name[name]["fit_s_runs"].append(again.get("fit_s"))
                if again.get("fit_s", float("inf")) < by_name[name]["fit_s"]:
                    by_name[name]["fit_s"] = again["fit_s"]
        comparison: dict[str, Any] = {}
        if "fit_s" in by_name.get("als", {}) and "fit_s" in by_name.get("implicit_als", {}):
            ours, base = by_name["als"]["fit_s"], by_name["implicit_als"]["fit_s"]
            same = np.load(data_dir / "als_items.npy")
            ref = np.load(data_dir / "implicit_als_items.npy")
            comparison = {"als_fit_s": ours, "implicit_fit_s": base,
                          "overhead_pct": round(100.0 * (ours - base) / base, 1),
                          "target_pct": 30.0,
                          "max_abs_item_factor_diff": float(np.abs(same - ref).max())}

    summary = {
        "data": {"users": built.n_users, "items": built.n_items,
                 "interactions": int(cols["users"].size), "nnz": int(built.matrix.nnz),
                 "dislikes": int(built.negatives.nnz), "holdout_users": int(h_users.size),
                 "generate_s": round(gen_s, 2), "from_arrays_s": round(build_s, 2),
                 "sessions_30min": int(sessions.shape[0]), "session_entries": int(sessions.nnz)},
        "ease_full_catalogue_estimate_gib": round(estimate_bytes(built.n_items) / 2**30, 2),
        "results": results,
        "als_vs_implicit": comparison,
        "notes": [
            *notes,
            "fit_s: wall time of fit() in a fresh process (ours: Recommender.fit incl. "
            "input checks; implicit_als: AlternatingLeastSquares.fit); framework imports "
            "outside the timing. als/implicit_als: best of --repeat alternating runs.",
            "peak_rss_mb: peak RSS of the worker process (/proc VmHWM); fit_growth_mb: "
            "peak during fit minus RSS when fit started.",
            "ease_10k: EASE on the 10,000 most popular items (max_items) to keep the run "
            "short; the full 20k catalogue needs the estimate above and ~8x the time.",
            "two_tower: epochs capped at 5 for run time.",
            "*_sessions: the model also gets each pair's time and fits with its default "
            "30-minute sessions (single-item sessions left out; the synthetic times are "
            "spread evenly over 180 days, so few sessions form: these rows measure the "
            "cost of the session step, see data.sessions_30min).",
        ],
        "total_s": round(time.perf_counter() - started, 1),
        "load_average_1m": {"start": round(load_start[0], 2),
                            "end": round(os.getloadavg()[0], 2)},
    }
    print(json.dumps(summary, indent=2, default=str))
    print()
    print(table(results, ["model", "fit_s", "peak_rss_mb", "fit_growth_mb", "hr@10", "error"]))
    if comparison:
        print(f"\nALS overhead vs implicit: {comparison['overhead_pct']}% "
              f"(target < 30%), max |factor diff| {comparison['max_abs_item_factor_diff']:.2e}")
    if not args.no_write:
        print(f"written to {write_result('train', summary)}")


if __name__ == "__main__":
    main()
