"""Serving benchmark: recommendations vs a trivial endpoint of the same app, one run.

Builds a synthetic catalogue (default 100,000 items, 200,000 users, 1,000,000
interactions) in a fresh database, trains ALS through the normal training service,
starts the API with uvicorn on loopback, and drives it with wrk (32 keep-alive
connections, closed loop) against ``/v1/users/{id}/recommendations`` and
``/health/live``. Then measures how soon a posted interaction is reflected: the
purchased item disappears from the next recommendations.

Usage: ``python bench/serve.py [--items 100000 --users 200000 --interactions 1000000]
[--workers 1] [--db NAME]`` (``--db`` keeps the prepared database for the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import mongo_uri, table, write_result
from fastinsight.config import Settings
from fastinsight.services.training import train
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.interactions import interaction_document
from fastinsight.storage.mongo.models import ACTIVE_KEY, ModelVersionRepository

KEY = "bench-key"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_paths.lua"
TYPES = np.array(["view", "click", "like", "add_to_cart", "purchase"])
TYPE_P = np.array([0.6, 0.2, 0.1, 0.06, 0.04])


def generate(db: object, n_items: int, n_users: int, n_rows: int, seed: int = 3) -> None:
    """Vectorised synthetic data: 20 categories, user tastes, power-law item popularity."""
    rng = np.random.default_rng(seed)
    n_cat = 20
    now = datetime.now(UTC)
    items = [{"_id": f"i{i}", "item_id": f"i{i}", "title": f"Item {i}", "description": "",
              "categories": [f"cat{i % n_cat}"], "tags": [], "attributes": {}, "hidden": False,
              "published_at": None, "created_at": now, "updated_at": now} for i in range(n_items)]
    users = [{"_id": f"u{u}", "user_id": f"u{u}", "attributes": {}, "created_at": now, "updated_at": now}
             for u in range(n_users)]
    for col, docs in (("items", items), ("users", users)):
        for k in range(0, len(docs), 10_000):
            db[col].insert_many(docs[k: k + 10_000], ordered=False)  # type: ignore[index]
    tastes = np.cumsum(rng.dirichlet(np.full(n_cat, 0.2), size=n_users), axis=1)
    activity = rng.pareto(1.2, n_users) + 1
    user = rng.choice(n_users, size=n_rows, p=activity / activity.sum())
    cat = np.minimum((tastes[user] < rng.random(n_rows)[:, None]).sum(axis=1), n_cat - 1)
    per_cat = n_items // n_cat
    rank = np.floor(per_cat * rng.random(n_rows) ** 3).astype(np.int64)  # power law within a category
    item = rank * n_cat + cat
    kind = rng.choice(TYPES, size=n_rows, p=TYPE_P)
    age = rng.uniform(0, 60 * 86400, n_rows)
    batch = []
    for n in range(n_rows):
        ts = now - timedelta(seconds=float(age[n]))
        batch.append(interaction_document(f"u{user[n]}", f"i{item[n]}", str(kind[n]), None, ts, f"b{n}"))
        if len(batch) == 20_000:
            db["interactions"].insert_many(batch, ordered=False)  # type: ignore[index]
            batch = []
    if batch:
        db["interactions"].insert_many(batch, ordered=False)  # type: ignore[index]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(url: str, paths: list[str], concurrency: int, seconds: float, threads: int = 2) -> dict[str, float]:
    """Closed-loop load from wrk (C, epoll): ``concurrency`` keep-alive connections.

    wrk costs far less CPU per request than a Python client, so on this 2-core machine
    the server, not the load generator, is what gets measured.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench/serve.py needs wrk (apt-get install wrk; scripts/bench.sh installs it)")
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as fh:
        fh.write("\n".join(paths) + "\n")
    try:
        out = subprocess.run(
            [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s",
             "-H", f"X-API-Key: {KEY}", "-s", str(WRK_SCRIPT), url, "--", fh.name],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def reflect_latency(url: str, users: list[str], rounds: int = 20) -> dict[str, float]:
    """POST a purchase of the user's top item; time until the next GET no longer returns it."""
    totals, gets = [], []
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        for user in users[:rounds]:
            top = client.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()["items"][0]["item_id"]
            started = time.perf_counter()
            client.post("/v1/interactions", json={"user_id": user, "item_id": top, "type": "purchase"})
            get_started = time.perf_counter()
            items = [i["item_id"] for i in client.get(f"/v1/users/{user}/recommendations",
                                                      params={"k": 5}).json()["items"]]
            done = time.perf_counter()
            if top in items:
                raise SystemExit(f"posted interaction not reflected for {user}")
            totals.append((done - started) * 1000)
            gets.append((done - get_started) * 1000)
    return {"post_then_get_p50_ms": float(np.median(totals)), "post_then_get_max_ms": float(max(totals)),
            "next_get_p50_ms": float(np.median(gets)), "next_get_max_ms": float(max(gets))}


def prepare(db: Any, name: str, args: argparse.Namespace) -> tuple[str, float]:
    """Load the synthetic data and train ALS, unless ``--db`` names a prepared database."""
    active = ModelVersionRepository(db).active() if args.db else None
    if active is not None:
        print(f"reusing {name}: model {active['version']}", file=sys.stderr)
        return str(active["version"]), float(active.get("bench_train_seconds", 0.0))
    apply_indexes(db)
    t0 = time.perf_counter()
    generate(db, args.items, args.users, args.interactions)
    print(f"data loaded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    settings = Settings(mongodb_uri=mongo_uri(), mongodb_db=name, api_key=KEY, admin_key=KEY + "-admin",
                        _env_file=None)  # type: ignore[call-arg]
    t0 = time.perf_counter()
    version = train(db, settings, "als", {"factors": 64, "iterations": 10}, evaluate=False)
    seconds = time.perf_counter() - t0
    db["service_state"].update_one({"_id": ACTIVE_KEY}, {"$set": {"bench_train_seconds": seconds}})
    return str(version["version"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--db", default="", help="reuse (or create and keep) this database")
    args = parser.parse_args()
    name = args.db or f"bench_serve_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri(), tz_aware=True)
    db = client[name]
    proc = None
    try:
        version, train_seconds = prepare(db, name, args)
        port = free_port()
        env = {**os.environ, "FASTINSIGHT_MONGODB_URI": mongo_uri(), "FASTINSIGHT_MONGODB_DB": name,
               "FASTINSIGHT_API_KEY": KEY, "FASTINSIGHT_ADMIN_KEY": KEY + "-admin",
               "FASTINSIGHT_LOG_DIR": "/tmp/fastinsight-bench-log", "FASTINSIGHT_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--port", str(port),
                                 "--log-level", "warning", "--no-access-log", "--workers", str(args.workers)], env=env)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).json().get("model_version") == version:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        rng = np.random.default_rng(1)
        users = [f"u{u}" for u in rng.choice(args.users, 2000, replace=False)]
        rec_paths = [f"/v1/users/{u}/recommendations?k=10" for u in users]
        load(url, rec_paths[:50], args.concurrency, 3)  # warm-up
        trivial = load(url, ["/health/live"], args.concurrency, args.seconds)
        recs = load(url, rec_paths, args.concurrency, args.seconds)
        reflect = reflect_latency(url, users[-40:])
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if not args.db:
            client.drop_database(name)
        client.close()
    rows = [{"endpoint": "GET /health/live (trivial)", **trivial},
            {"endpoint": "GET /v1/users/{id}/recommendations", **recs}]
    ratio = recs["req_per_s"] / trivial["req_per_s"]
    out = {"benchmark": "serve", "items": args.items, "users": args.users, "interactions": args.interactions,
           "concurrency": args.concurrency, "model": "als factors=64", "train_seconds": round(train_seconds, 1),
           "results": rows, "recs_vs_trivial_throughput": round(ratio, 3), "reflect": reflect,
           "targets": {"recs_vs_trivial": 0.6, "p99_ms": 25, "reflect_ms": 50},
           "server": f"{args.workers} uvicorn worker(s); wrk in the same 2-core machine; FerretDB 1.24 (SQLite)"}
    print(json.dumps(out, indent=2))
    print(table(rows, ["endpoint", "requests", "errors", "req_per_s", "p50_ms", "p90_ms", "p99_ms"]))
    print(f"recommendations = {ratio:.0%} of trivial throughput; reflect: {reflect}")
    write_result("serve", out)


if __name__ == "__main__":
    main()
