"""Insight endpoints on 1,000,000 interactions: rollup snapshot vs on-demand from the raw
collection.

Loads synthetic data (demo generator) into a scratch database, stores random embeddings as
the active model version, refreshes the rollups (timed), then measures every insight,
audience and segment endpoint through the app (in-process ASGI, p50/p99 over repeated
calls) next to the same answer computed on demand from ``interactions`` (a projected
cursor with the window filter, plus Python: the fastest on-demand way on FerretDB, whose
``$group`` is far slower). Answers of both paths are compared.

    .venv/bin/python bench/insights.py [--interactions 1000000] [--calls 50] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from pymongo import MongoClient
from pymongo.database import Database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mongo_uri, table, write_result
from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.data.demo import DemoSize, synthetic_interactions, synthetic_items, synthetic_users
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.insights.analytics import DEFAULT_FUNNEL, refresh_insights
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.interactions import interaction_document
from fastinsight.storage.mongo.models import EMBEDDINGS_FILE, ModelVersionRepository

API, ADMIN = "bench-api", "bench-admin"
Db = Database[dict[str, Any]]


def load(db: Db, settings: Settings, size: DemoSize) -> dict[str, float]:
    started = time.perf_counter()
    ingest = IngestService(db, settings)
    ingest.import_items(enumerate(synthetic_items(size), start=1))
    ingest.import_users(enumerate(synthetic_users(size), start=1))
    batch: list[dict[str, Any]] = []
    inserted = 0
    for row in synthetic_interactions(size):
        ts = datetime.fromisoformat(row["timestamp"])
        batch.append(interaction_document(row["user_id"], row["item_id"], row["type"],
                                          row.get("value"), ts, None))
        if len(batch) == 10_000:
            inserted += len(db["interactions"].insert_many(batch, ordered=False).inserted_ids)
            batch = []
    if batch:
        inserted += len(db["interactions"].insert_many(batch, ordered=False).inserted_ids)
    print(f"loaded {inserted} interactions in {time.perf_counter() - started:.0f}s", flush=True)
    return {"load_seconds": round(time.perf_counter() - started, 1), "interactions": inserted}


def store_embeddings(db: Db, size: DemoSize, dim: int = 32) -> None:
    rng = np.random.default_rng(0)
    repo = ModelVersionRepository(db)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / EMBEDDINGS_FILE,
                 user_ids=np.asarray([f"user-{u:06d}" for u in range(size.users)]),
                 user_vectors=rng.normal(size=(size.users, dim)).astype(np.float32),
                 item_ids=np.asarray([f"item-{i:06d}" for i in range(size.items)]),
                 item_vectors=rng.normal(size=(size.items, dim)).astype(np.float32))
        repo.save({"version": "bench-embeddings", "algorithm": "random", "status": "ready",
                   "created_at": datetime.now(UTC), "metrics": {"ndcg@10": 0.0}}, Path(tmp))
    repo.activate("bench-embeddings", "benchmark")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return (time.perf_counter() - started) * 1000, out


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "calls": len(ordered)}


# ---- on-demand baselines: same answers from the raw collection ------------------------------
def since(today: date, days: int) -> datetime:
    start = today - timedelta(days=days - 1)
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def base_activity(db: Db, today: date, days: int) -> dict[str, int]:
    per_day: Counter[str] = Counter()
    for d in db["interactions"].find({"timestamp": {"$gte": since(today, days)}}, {"_id": 0, "day": 1}):
        per_day[d["day"]] += 1
    return dict(per_day)


def base_top_items(db: Db, today: date, days: int, k: int) -> list[tuple[str, int]]:
    cutoff = since(today, days)
    cur: Counter[str] = Counter()
    for d in db["interactions"].find({"timestamp": {"$gte": since(today, 2 * days)}},
                                     {"_id": 0, "item_id": 1, "timestamp": 1}):
        if d["timestamp"] >= cutoff:
            cur[d["item_id"]] += 1
    return sorted(cur.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def base_top_categories(db: Db, today: date, days: int) -> dict[str, int]:
    cats = {d["_id"]: d.get("categories", []) for d in db["items"].find({}, {"categories": 1})}
    out: Counter[str] = Counter()
    for d in db["interactions"].find({"timestamp": {"$gte": since(today, days)}}, {"_id": 0, "item_id": 1}):
        out.update(cats.get(d["item_id"], []))
    return dict(out)


def base_funnel(db: Db, today: date, days: int) -> list[int]:
    counts = Counter(d["type"] for d in db["interactions"].find(
        {"timestamp": {"$gte": since(today, days)}, "type": {"$in": list(DEFAULT_FUNNEL)}},
        {"_id": 0, "type": 1}))
    return [counts[t] for t in DEFAULT_FUNNEL]


def base_funnel_aggregate(db: Db, today: date, days: int, limit_ms: int) -> list[int]:
    rows = db["interactions"].aggregate([
        {"$match": {"timestamp": {"$gte": since(today, days)}, "type": {"$in": list(DEFAULT_FUNNEL)}}},
        {"$group": {"_id": "$type", "n": {"$sum": 1}}},
    ], maxTimeMS=limit_ms)
    counts = {r["_id"]: r["n"] for r in rows}
    return [counts.get(t, 0) for t in DEFAULT_FUNNEL]


def base_catalogue(db: Db) -> int:
    seen = {d["item_id"] for d in db["interactions"].find({}, {"_id": 0, "item_id": 1})}
    return sum(1 for d in db["items"].find({}, {"_id": 1}) if d["_id"] not in seen)


def base_overview(db: Db, today: date) -> dict[str, int]:
    users: set[str] = set()
    active7: set[str] = set()
    total = 0
    cutoff = (today - timedelta(days=6)).isoformat()
    for d in db["interactions"].find({}, {"_id": 0, "user_id": 1, "day": 1}):
        total += 1
        users.add(d["user_id"])
        if d["day"] >= cutoff:
            active7.add(d["user_id"])
    return {"interactions": total, "users": len(users), "active_7d": len(active7)}


def base_audience_exclusion(db: Db, item: str) -> int:
    return len({d["user_id"] for d in db["interactions"].find({"item_id": item}, {"user_id": 1})})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--aggregate", action="store_true",
                        help="also time the funnel as a $match/$group aggregation (slow on FerretDB)")
    parser.add_argument("--aggregate-limit-s", type=int, default=600)
    parser.add_argument("--db", default="fi_bench_insights")
    parser.add_argument("--keep", action="store_true", help="keep the database (reuse with --reuse)")
    parser.add_argument("--reuse", action="store_true", help="skip loading; use the kept database")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    size = DemoSize(users=args.users, items=args.items, interactions=args.interactions, days=180, seed=11)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri(), tz_aware=True)
    settings = Settings(mongodb_uri=mongo_uri(), mongodb_db=args.db, api_key=API, admin_key=ADMIN,
                        model_poll_seconds=3600, import_batch_size=5000, _env_file=None)  # type: ignore[call-arg]
    db = client[args.db]
    result: dict[str, Any] = {"dataset": {"users": size.users, "items": size.items, "days": size.days}}
    try:
        if not args.reuse:
            client.drop_database(args.db)
            apply_indexes(db)
            result["dataset"].update(load(db, settings, size))
            store_embeddings(db, size)
        refresh_ms, rollup = timed(lambda: refresh_insights(db))
        print(f"refresh {refresh_ms / 1000:.1f}s", flush=True)
        result["refresh_seconds"] = round(refresh_ms / 1000, 2)
        result["rollup_build_seconds"] = rollup.duration_seconds
        result["snapshot_mb"] = round(sum(a.nbytes for a in rollup.to_arrays().values()) / 2**20, 1)
        result["dataset"]["interactions"] = rollup.total_events
        today = rollup.computed_at.date()
        item = "item-000001"

        endpoints = [
            "/v1/insights/overview", "/v1/insights/activity?days=90",
            "/v1/insights/activity?granularity=week&days=180", "/v1/insights/top-items?days=7",
            "/v1/insights/top-categories?days=30", "/v1/insights/funnel?days=30",
            "/v1/insights/funnel/categories?days=30", "/v1/insights/catalogue",
            "/v1/insights/models", f"/v1/items/{item}/audience?k=100",
            "/v1/categories/books/audience?k=100",
        ]
        rows: list[dict[str, Any]] = []
        answers: dict[str, Any] = {}
        with TestClient(create_app(settings), headers={"X-API-Key": API}) as http:
            cold_ms, _ = timed(lambda: http.get("/v1/insights/overview").raise_for_status())
            result["first_call_after_refresh_ms"] = round(cold_ms, 1)
            rebuild_ms, _ = timed(lambda: http.post("/v1/admin/segments/rebuild",
                                                    headers={"X-API-Key": ADMIN}).raise_for_status())
            result["segments_rebuild_seconds"] = round(rebuild_ms / 1000, 2)
            endpoints += ["/v1/segments", "/v1/segments/campaigns", "/v1/segments/s1/users?limit=100"]
            for path in endpoints:
                for _ in range(3):
                    http.get(path).raise_for_status()
                samples = []
                for _ in range(args.calls):
                    ms, res = timed(lambda p=path: http.get(p))  # type: ignore[misc]
                    res.raise_for_status()
                    samples.append(ms)
                answers[path] = res.json()
                rows.append({"endpoint": path, **percentiles(samples)})
                print(f"{path}: {rows[-1]}", flush=True)

        checks: dict[str, bool] = {}
        baselines: dict[str, tuple[Callable[[], Any], Callable[[Any], bool]]] = {
            "/v1/insights/overview": (
                lambda: base_overview(db, today),
                lambda b: b["interactions"] == answers["/v1/insights/overview"]["interactions"]
                and b["active_7d"] == answers["/v1/insights/overview"]["active_users"]["7d"]),
            "/v1/insights/activity?days=90": (
                lambda: base_activity(db, today, 90),
                lambda b: all(b.get(x["start"], 0) == x["total"]
                              for x in answers["/v1/insights/activity?days=90"]["buckets"])),
            "/v1/insights/top-items?days=7": (
                lambda: base_top_items(db, today, 7, 20),
                lambda b: b == [(e["id"], e["count"]) for e in answers["/v1/insights/top-items?days=7"]["entries"]]),
            "/v1/insights/top-categories?days=30": (
                lambda: base_top_categories(db, today, 30),
                lambda b: all(b.get(e["id"]) == e["count"]
                              for e in answers["/v1/insights/top-categories?days=30"]["entries"])),
            "/v1/insights/funnel?days=30": (
                lambda: base_funnel(db, today, 30),
                lambda b: b == [s["count"] for s in answers["/v1/insights/funnel?days=30"]["steps"]]),
            "/v1/insights/catalogue": (
                lambda: base_catalogue(db),
                lambda b: b == answers["/v1/insights/catalogue"]["never_interacted"]),
            f"/v1/items/{item}/audience?k=100": (
                lambda: base_audience_exclusion(db, item),
                lambda b: b == answers[f"/v1/items/{item}/audience?k=100"]["excluded"]),
        }
        for row in rows:
            entry = baselines.get(row["endpoint"])
            if entry is None:
                continue
            ms, value = timed(entry[0])
            row["on_demand_ms"] = round(ms, 1)
            row["speedup_p50"] = round(ms / max(row["p50_ms"], 1e-3), 0)
            checks[row["endpoint"]] = bool(entry[1](value))
            row["same_answer"] = checks[row["endpoint"]]
            print(f"baseline {row['endpoint']}: {ms / 1000:.1f}s same={row['same_answer']}", flush=True)
        if args.aggregate:
            try:
                ms, counts = timed(lambda: base_funnel_aggregate(db, today, 30, args.aggregate_limit_s * 1000))
                result["funnel_aggregate_group_ms"] = round(ms, 1)
                result["funnel_aggregate_same_answer"] = counts == [
                    s["count"] for s in answers["/v1/insights/funnel?days=30"]["steps"]]
            except Exception as exc:  # FerretDB's $group can exceed any sensible limit
                result["funnel_aggregate_group_ms"] = f"failed: {exc.__class__.__name__}"
        result["endpoints"] = rows
        result["all_answers_match"] = all(checks.values())
        print(table(rows, ["endpoint", "p50_ms", "p99_ms", "calls", "on_demand_ms", "speedup_p50",
                           "same_answer"]))
        print(json.dumps({k: v for k, v in result.items() if k != "endpoints"}, indent=2, default=str))
        print("written to", write_result("insights", result))
    finally:
        if not args.keep:
            client.drop_database(args.db)
        client.close()


if __name__ == "__main__":
    main()
