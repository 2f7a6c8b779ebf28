"""Serving, two source trees side by side in one run: a reference commit against the working tree.

Used to show that a change (a restructure, a refactor) costs nothing on the hot paths. One
database is prepared (synthetic data and an ALS version trained with the working tree's code,
as bench/serve.py does), then two API processes serve it at once: one from a checkout of
``--base-ref`` (made with ``git worktree add`` and removed at the end), one from this tree.
Rounds are interleaved and the order alternates (base first, then this tree first), so the
machine's drift falls on both alike:

- saturated recommendations for users answered from the training-time lists;
- saturated recommendations for users with events since training (scored live);
- the trivial route, as each process's own ceiling.

Both processes must give the same answers: the lists of a sample of users are compared.
The table reports every round; the JSON the medians, the spread (min..max) and the per-round
ratio this tree / base.

    .venv/bin/python bench/serve_ab.py --base-ref aa86e50 [--db bench_ab_keep] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import ROOT, checkout_ref, drop_checkout, head, mongo_uri, table, write_result
from serve import KEY, free_port, load, post_events, prepare, server_env


def start(tree: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**server_env(name), "PYTHONPATH": str(tree / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], env=env, cwd=str(tree))
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(url: str, version: str, deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).json().get("model_version") == version:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not serve {version} within {deadline_s:.0f}s")


def answers(url: str, paths: list[str]) -> list[list[str]]:
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        return [[i["item_id"] for i in client.get(p).raise_for_status().json()["items"]] for p in paths]


def wait_same(urls: dict[str, str], paths: list[str], deadline_s: float = 60) -> float:
    """Both processes see the posted events (real-time poll): poll until their answers agree."""
    deadline = time.monotonic() + deadline_s
    while True:
        got = [answers(u, paths) for u in urls.values()]
        same = float(np.mean([a == b for a, b in zip(got[0], got[1], strict=True)]))
        if same == 1.0 or time.monotonic() > deadline:
            return same
        time.sleep(0.5)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(float(np.median(values)), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-ref", required=True, help="git ref of the reference code")
    parser.add_argument("--head-ref", default="", help="git ref to compare (default: this working tree)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", default="", help="reuse (or create and keep) this database")
    parser.add_argument("--name", default="serve_ab", help="results file name (results/NAME.json)")
    args = parser.parse_args()
    name = args.db or f"bench_ab_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri(), tz_aware=True)
    db = client[name]
    base_tree = checkout_ref(args.base_ref)
    head_tree = checkout_ref(args.head_ref) if args.head_ref else ROOT
    procs: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    try:
        version, _ = prepare(db, name, args)
        urls: dict[str, str] = {}
        for label, tree in (("base", base_tree), ("this tree", head_tree)):
            proc, urls[label] = start(tree, name)
            procs.append(proc)
        for url in urls.values():
            wait_ready(url, version)
        rng = np.random.default_rng(1)
        users = [f"u{u}" for u in rng.choice(args.users, 2000, replace=False)]
        listed = [f"/v1/users/{u}/recommendations?k=10" for u in users[:-300]]
        for url in urls.values():  # first visits (one database read per new user) out of the way
            answers(url, listed)
        same_listed = wait_same(urls, listed[:300])
        live = post_events(urls["base"], users[-300:], args.items)
        same_live = wait_same(urls, live)
        for r in range(args.rounds):
            order = list(urls) if r % 2 == 0 else list(reversed(urls))
            for label in order:
                for kind, paths in (("trivial", ["/health/live"]), ("listed", listed), ("live", live)):
                    res = load(urls[label], paths, args.concurrency, args.seconds)
                    rows.append({"round": r + 1, "code": label, "kind": kind, **res})
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        drop_checkout(base_tree)
        if head_tree != ROOT:
            drop_checkout(head_tree)
        if not args.db:
            client.drop_database(name)
        client.close()
    out: dict[str, Any] = {"benchmark": "serve_ab", "base_ref": args.base_ref,
                           "head": args.head_ref or head(),
                           "items": args.items, "users": args.users, "interactions": args.interactions,
                           "concurrency": args.concurrency, "seconds_per_run": args.seconds,
                           "identical_answers": {"listed_users": same_listed, "live_users": same_live},
                           "results": rows, "by_kind": {}}
    for kind in ("trivial", "listed", "live"):
        per = {label: [x for x in rows if x["kind"] == kind and x["code"] == label] for label in ("base", "this tree")}
        ratios = [h["req_per_s"] / b["req_per_s"] for b, h in zip(per["base"], per["this tree"], strict=True)]
        out["by_kind"][kind] = {
            **{f"{label} req_per_s": summary([x["req_per_s"] for x in xs]) for label, xs in per.items()},
            **{f"{label} p99_ms": summary([x["p99_ms"] for x in xs]) for label, xs in per.items()},
            "ratio this tree / base, by round": [round(x, 3) for x in ratios],
            "ratio median": round(float(np.median(ratios)), 3),
        }
    print(json.dumps(out, indent=2))
    print(table(rows, ["round", "code", "kind", "requests", "errors", "req_per_s", "p50_ms", "p99_ms"]))
    for kind, s in out["by_kind"].items():
        print(f"{kind}: this tree / base = {s['ratio median']:.3f} (rounds {s['ratio this tree / base, by round']})")
    write_result(args.name, out)


if __name__ == "__main__":
    main()
