"""``bench/serve.py --mode workers``: memory per worker at 1, 2 and 4 uvicorn workers, and
the live path (users with events since training) against the trivial route at 1 and 2.

For each worker count, one server is started over the prepared database (the same host
copy of the model version for all of them: the first start downloads it and builds the
HNSW graphs, the later ones map and read it), warmed up (every benchmark user once, then
a short saturated load of listed and live users), and each worker's memory read from
``/proc/<pid>/smaps_rollup``:

- RSS: pages resident in the worker, shared ones counted in full;
- PSS: each shared page divided by the number of processes mapping it (the sum of the
  workers' PSS is what the host pays); ``pss_anon`` is private heap (id maps, the
  HNSW graphs, the catalogue), ``pss_file`` mapped files (the model version's arrays,
  shared libraries);
- the model files alone (mappings under the host copy, from ``/proc/<pid>/smaps``).

The HNSW graphs cannot be mapped (hnswlib reads them into each process): their size on
disk, which each worker holds in private memory, is reported as ``hnsw_bytes``.
Then, at 1 and 2 workers, ``--rounds`` alternating runs of the trivial route and of the
live users' recommendations (wrk, ``--concurrency`` connections): median ratio, the
spread, and the worst p99.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from serve import first_visits, load, post_events, server_env, start_server

PAGE_FIELDS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon", "Pss_File": "pss_file",
               "Anonymous": "anonymous"}


def worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes under ``parent`` (itself when it runs one worker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in argv:
            out.append(int(stat.parent.name))
    return sorted(out) or [parent]


def memory(pid: int, models: Path) -> dict[str, float]:
    """MiB: the worker's RSS/PSS (smaps_rollup) and the part mapped from the model copy."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in PAGE_FIELDS:
            out[PAGE_FIELDS[key] + "_mib"] = round(int(rest.split()[0]) / 1024, 1)
    rss = pss = 0
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            inside = len(head) >= 6 and head[5].startswith(str(models))
        elif inside and head[0] == "Rss:":
            rss += int(head[1])
        elif inside and head[0] == "Pss:":
            pss += int(head[1])
    out["model_files_rss_mib"] = round(rss / 1024, 1)
    out["model_files_pss_mib"] = round(pss / 1024, 1)
    return out


def hnsw_bytes(models: Path) -> int:
    return sum(p.stat().st_size for p in models.rglob("hnsw.bin"))


def _live_rounds(url: str, live: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rounds = []
    for n in range(args.rounds):
        order = ["trivial", "live"] if n % 2 == 0 else ["live", "trivial"]
        run = {}
        for kind in order:
            run[kind] = load(url, ["/health/live"] if kind == "trivial" else live,
                             args.concurrency, args.seconds)
        rounds.append(run)
    ratios = [r["live"]["req_per_s"] / r["trivial"]["req_per_s"] for r in rounds]
    return {"rounds": rounds,
            "live_vs_trivial_throughput": round(float(np.median(ratios)), 3),
            "by_round": [round(r, 3) for r in ratios],
            "live_req_per_s_median": round(float(np.median([r["live"]["req_per_s"] for r in rounds])), 1),
            "trivial_req_per_s_median": round(float(np.median([r["trivial"]["req_per_s"] for r in rounds])), 1),
            "live_p99_ms_worst_round": max(r["live"]["p99_ms"] for r in rounds),
            "live_p99_ms_median": round(float(np.median([r["live"]["p99_ms"] for r in rounds])), 3)}


def run(args: argparse.Namespace, name: str, version: str) -> dict[str, Any]:
    """The sweep over ``args.worker_counts``; returns the results document."""
    rng = np.random.default_rng(1)
    users = [f"u{u}" for u in rng.choice(args.users, min(args.users, 2000), replace=False)]
    listed = [f"/v1/users/{u}/recommendations?k=10" for u in users[:-300]]
    live_users = users[-300:]
    live: list[str] = []
    sweep = []
    with tempfile.TemporaryDirectory(prefix="fi-bench-models-") as tmp:
        models = Path(tmp)
        env = {**server_env(name), "FASTINSIGHT_MODEL_CACHE_DIR": str(models)}
        for workers in args.worker_counts:
            started = time.perf_counter()
            proc, url = start_server(env, workers, version)
            ready = time.perf_counter() - started
            try:
                if not live:  # events posted once: every later server loads them at start
                    live = post_events(url, live_users, args.items)
                first_visits(url, listed + live)
                for paths in (listed, live):  # warm-up: what serving touches is resident
                    load(url, paths, args.concurrency, min(args.seconds, 5))
                pids = worker_pids(proc.pid)
                per_worker = [{"pid": pid, **memory(pid, models)} for pid in pids]
                entry: dict[str, Any] = {
                    "workers": workers, "ready_seconds": round(ready, 1),
                    "per_worker": per_worker,
                    "pss_total_mib": round(sum(w["pss_mib"] for w in per_worker), 1),
                    "rss_total_mib": round(sum(w["rss_mib"] for w in per_worker), 1),
                    "model_files_pss_total_mib": round(sum(w["model_files_pss_mib"] for w in per_worker), 1),
                }
                if workers in args.live_workers:
                    entry["live"] = _live_rounds(url, live, args)
                sweep.append(entry)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        copy_bytes = sum(p.stat().st_size for p in models.rglob("*") if p.is_file())
        graph_bytes = hnsw_bytes(models)
    return {"benchmark": "serve_workers", "items": args.items, "users": args.users,
            "interactions": args.interactions, "concurrency": args.concurrency,
            "seconds_per_run": args.seconds, "model": "als factors=64",
            "host_copy_bytes": copy_bytes, "hnsw_bytes": graph_bytes, "sweep": sweep,
            "targets": {"live_vs_trivial": 0.5, "live_p99_ms": 25}}


def rows(out: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(memory rows, live-path rows) for the printed tables."""
    memory_rows = [{"workers": s["workers"], "worker": n + 1, **{k: v for k, v in w.items() if k != "pid"}}
                   for s in out["sweep"] for n, w in enumerate(s["per_worker"])]
    live_rows = [{"workers": s["workers"], "round": n + 1, "kind": kind, **r[kind]}
                 for s in out["sweep"] if "live" in s
                 for n, r in enumerate(s["live"]["rounds"]) for kind in ("trivial", "live")]
    return memory_rows, live_rows
