"""Serving benchmark: recommendations vs a trivial endpoint of the same app, one run.

Builds a synthetic catalogue (default 100,000 items, 200,000 users, 1,000,000
interactions) in a fresh database, trains ALS through the normal training service,
starts the API with uvicorn on loopback, and drives it with wrk (32 keep-alive
connections, closed loop) against ``/v1/users/{id}/recommendations``, ``/health/live``
and a constant route with the recommendations route's signature (bench/serve_floor.py:
what the framework alone allows), after one visit per user (first visits are reported
on their own). Users with events posted since training are measured separately: they
are scored live instead of from the training-time lists (in alternating rounds with the
trivial route, from this server, which keeps a user's candidates until their history
changes, and from a second one that scores every answer). Then the same at half the
saturated rate (paced),
how soon a posted interaction is reflected (the purchased item disappears from the next
recommendations, read on a fresh connection), and how the served lists compare with
exact scoring. Every answer is recorded as an impression (the default); a second
server on the same database with ``FASTINSIGHT_RECORD_IMPRESSIONS=false`` is driven in
alternating rounds to measure what recording costs (target: at least 90% of the
throughput without it, p99 within the latency target).

Usage: ``python bench/serve.py [--items 100000 --users 200000 --interactions 1000000]
[--workers 1] [--db NAME]`` (``--db`` keeps the prepared database for the next run).

``--mode workers`` measures instead, on the same data, the memory of each worker (RSS
and PSS) with 1, 2 and 4 uvicorn workers, and the live path against the trivial route
at 1 and 2 workers (``bench/serve_workers.py``; results in ``results/serve_workers.json``).
"""

from __future__ import annotations

import argparse
import http.client
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
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.impressions import ImpressionRepository
from fastinsight.storage.mongo.interactions import InteractionRepository, interaction_document
from fastinsight.storage.mongo.models import ACTIVE_KEY, ModelVersionRepository
from fastinsight.storage.mongo.schema import IMPRESSION_DISPLAYS, IMPRESSIONS

KEY = "bench-key"
BENCH = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH / "wrk_paths.lua"
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


def load(url: str, paths: list[str], concurrency: int, seconds: float, threads: int = 2,
         rate: float = 0.0, key: str = KEY) -> dict[str, float]:
    """Closed-loop load from wrk (C, epoll): ``concurrency`` keep-alive connections.

    With ``rate`` (requests/s over all connections) each connection pauses before
    every request, so the server sees about that rate instead of all it can take.
    ``key`` is the X-API-Key sent (a tenant's key in bench/tenants.py).

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
             "-H", f"X-API-Key: {key}", "-s", str(WRK_SCRIPT), url, "--", fh.name,
             str(int(1000 * concurrency / rate) if rate else 0)],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def fresh_get(url: str, path: str) -> Any:
    """GET over a new TCP connection (http.client: no client set-up cost to speak of)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"X-API-Key": KEY})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def reflect_latency(url: str, users: list[str], rounds: int = 20) -> dict[str, float]:
    """POST a purchase of the user's top item, then GET on fresh connections until the
    item is gone. A fresh connection may land on any worker process, so with several
    workers this includes reaching the other processes (their real-time poll)."""
    first_ok, reflected, gets = 0, [], []
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        for user in users[:rounds]:
            path = f"/v1/users/{user}/recommendations"
            top = client.get(path, params={"k": 5}).json()["items"][0]["item_id"]
            client.post("/v1/interactions", json={"user_id": user, "item_id": top, "type": "purchase"})
            posted = time.perf_counter()
            for attempt in range(1000):
                started = time.perf_counter()
                items = [i["item_id"] for i in fresh_get(url, f"{path}?k=5")["items"]]
                done = time.perf_counter()
                if top not in items:
                    first_ok += attempt == 0
                    reflected.append((done - posted) * 1000)
                    gets.append((done - started) * 1000)
                    break
            else:
                raise SystemExit(f"posted interaction never reflected for {user}")
    return {"rounds": len(reflected), "reflected_on_first_get": first_ok,
            "post_to_reflected_get_p50_ms": float(np.median(reflected)),
            "post_to_reflected_get_max_ms": float(max(reflected)),
            "reflecting_get_p50_ms": float(np.median(gets))}


def saturated_rounds(url: str, rec_paths: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Trivial, recommendations and constant route back to back, ``--rounds`` times: the
    machine's speed drifts (shared cores), so each ratio compares neighbouring runs."""
    floor_paths = [p.replace("/v1/users/", "/v1/floor/") for p in rec_paths]
    return [{"trivial": load(url, ["/health/live"], args.concurrency, args.seconds),
             "recs": load(url, rec_paths, args.concurrency, args.seconds),
             "floor": load(url, floor_paths, args.concurrency, args.seconds)}
            for _ in range(args.rounds)]


def first_visits(url: str, paths: list[str]) -> dict[str, float]:
    """Each path once, one connection: a user the process has not served yet may need a
    database read (users without a trained row are looked up once per process). The
    saturated runs then measure the steady state."""
    took = []
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        for path in paths:
            started = time.perf_counter()
            client.get(path).raise_for_status()
            took.append((time.perf_counter() - started) * 1000)
    return {"requests": len(took), "p50_ms": round(float(np.percentile(took, 50)), 3),
            "p99_ms": round(float(np.percentile(took, 99)), 3), "max_ms": round(max(took), 3)}


def post_events(url: str, users: list[str], n_items: int) -> list[str]:
    """One view each for ``users`` (a random item), so their next answers are live."""
    rng = np.random.default_rng(7)
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        for user in users:
            item = f"i{int(rng.integers(n_items))}"
            client.post("/v1/interactions", json={"user_id": user, "item_id": item,
                                                  "type": "view"}).raise_for_status()
    return [f"/v1/users/{u}/recommendations?k=10" for u in users]


def served_recall(name: str, users: list[str], live: list[str], k: int = 10) -> dict[str, Any]:
    """Recall@k of the served lists against exact scoring, same rules.

    Served lists come from the training-time candidate lists (built through the HNSW
    index); users with events since training (``live``) are scored from the version's
    candidate pools (exact unless the bound reaches too far, then the HNSW index). The
    reference process drops the lists and the pools and scores the whole catalogue for
    every user."""
    from fastinsight.services.serving.recommend import Filters, RecommendService
    from fastinsight.services.serving.versions import ModelManager
    from fastinsight.storage.mongo import connect, get_database

    lists: list[list[list[str]]] = []
    cache = tempfile.mkdtemp(prefix="fi-bench-recall-")  # one host copy for both processes
    try:
        for exact_max in (20_000, 10**9):  # the default, then an exact-only process
            settings = Settings(mongodb_uri=mongo_uri(), mongodb_db=name, api_key=KEY,
                                admin_key=KEY + "-admin", ann_exact_max_items=exact_max,
                                live_pools=exact_max == 20_000, model_cache_dir=Path(cache),
                                _env_file=None)  # type: ignore[call-arg]
            client = connect(settings)
            db = get_database(client, settings)
            manager = ModelManager(db, settings)
            manager.refresh_catalog()
            manager.sync()
            if exact_max > 20_000 and manager.current is not None:
                manager.current.candidates = None
            svc = RecommendService(db, settings, manager)
            svc.realtime.poll()  # the events posted for the live users
            lists.append([[i.item_id for i in svc.for_user(u, k, 0, Filters()).items] for u in users + live])
            client.close()
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    def agreement(got: list[list[str]], want: list[list[str]]) -> dict[str, float]:
        hits = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(got, want, strict=True)]
        return {"users": len(got), "k": k, "recall": float(np.mean(hits)) if hits else 0.0,
                "identical_lists": float(np.mean([a == b for a, b in zip(got, want, strict=True)])) if got else 0.0}

    n = len(users)
    return {**agreement(lists[0][:n], lists[1][:n]), "live": agreement(lists[0][n:], lists[1][n:])}


def prepare(db: Any, name: str, args: argparse.Namespace) -> tuple[str, float]:
    """Load the synthetic data and train ALS, unless ``--db`` names a prepared database."""
    active = ModelVersionRepository(db).active() if args.db else None
    if active is not None:
        print(f"reusing {name}: model {active['version']}", file=sys.stderr)
        # Events an earlier run posted would make those users live-scored and the
        # real-time poll slower: start, as after training, with an empty buffer.
        InteractionRepository(db).truncate_fresh(datetime.now(UTC))
        # Impressions of earlier runs only make every insert into the collection dearer
        # on FerretDB (one table): each run starts with none, as a new database would.
        for collection in (IMPRESSIONS, IMPRESSION_DISPLAYS):
            db.drop_collection(collection)
        apply_indexes(db)
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


def version_costs(db: Any, version: str) -> dict[str, Any]:
    """What training the served version cost: its stages, the per-user lists and their
    stored size (from the version document)."""
    doc = ModelVersionRepository(db).get(version) or {}
    files = doc.get("files") or []
    snapshot = {k: str(v) if isinstance(v, datetime) else v for k, v in (doc.get("snapshot") or {}).items()}
    return {"version": version, "snapshot": snapshot, "stages": doc.get("stages"),
            "candidates": doc.get("candidates"),
            "candidates_mb": round(sum(f["bytes"] for f in files
                                       if str(f["name"]).startswith("candidates")) / 2**20, 1),
            "artefact_mb": round(sum(f["bytes"] for f in files) / 2**20, 1)}


def server_env(db_name: str) -> dict[str, str]:
    """The environment of an API process over ``db_name`` with the benchmark's keys, running
    this tree's code (an installed copy elsewhere, e.g. another worktree's, comes after)."""
    path = os.pathsep.join(p for p in (str(BENCH.parent / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path,
            "FASTINSIGHT_MONGODB_URI": mongo_uri(), "FASTINSIGHT_MONGODB_DB": db_name,
            "FASTINSIGHT_API_KEY": KEY, "FASTINSIGHT_ADMIN_KEY": KEY + "-admin",
            "FASTINSIGHT_LOG_DIR": "/tmp/fastinsight-bench-log", "FASTINSIGHT_LOG_LEVEL": "WARNING"}


def start_server(env: dict[str, str], workers: int, version: str) -> tuple[subprocess.Popen[bytes], str]:
    """The API plus a constant route with the recommendations route's signature
    (bench/serve_floor.py), once it serves ``version``."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "serve_floor:app",
                             "--port", str(port), "--log-level", "warning", "--no-access-log",
                             "--workers", str(workers)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).json().get("model_version") == version:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.terminate()
    proc.wait(timeout=30)
    raise SystemExit(f"the API did not serve {version} (see its log above)")


def live_rounds(url: str, env: dict[str, str], live: list[str], args: argparse.Namespace,
                version: str) -> dict[str, Any]:
    """Users with events since training, ``--rounds`` times in alternating order: the
    trivial route, their recommendations from this server (the default: a user asking again
    with the same history gets the candidates kept since their first answer), and from a
    second server that scores every answer (``FASTINSIGHT_LIVE_CACHE_USERS=0``). The first
    answer of each user after an event costs what the second server pays every time."""
    scored, scored_url = start_server({**env, "FASTINSIGHT_LIVE_CACHE_USERS": "0"}, args.workers, version)
    targets = {"trivial": (url, ["/health/live"]), "kept": (url, live), "scored": (scored_url, live)}
    try:
        first_visits(scored_url, live)  # the same warm state as the first server
        rounds = []
        for n in range(args.rounds):
            order = ["trivial", "kept", "scored"][n % 3:] + ["trivial", "kept", "scored"][:n % 3]
            rounds.append({kind: load(targets[kind][0], targets[kind][1], args.concurrency, args.seconds)
                           for kind in order})
    finally:
        scored.terminate()
        scored.wait(timeout=30)
    labels = {"trivial": "GET /health/live (trivial)",
              "kept": "GET /v1/users/{id}/recommendations, users with events since training",
              "scored": "the same, every answer scored (live_cache_users=0)"}
    out: dict[str, Any] = {"rows": [{"endpoint": labels[kind], "load": f"saturated, live round {n + 1}", **r[kind]}
                                    for n, r in enumerate(rounds) for kind in ("trivial", "kept", "scored")]}
    for kind in ("kept", "scored"):
        ratios = [r[kind]["req_per_s"] / r["trivial"]["req_per_s"] for r in rounds]
        out[kind] = {"vs_trivial_throughput": round(float(np.median(ratios)), 3),
                     "by_round": [round(x, 3) for x in ratios],
                     "req_per_s_median": round(float(np.median([r[kind]["req_per_s"] for r in rounds])), 1),
                     "p99_ms_median": round(float(np.median([r[kind]["p99_ms"] for r in rounds])), 3),
                     "p99_ms_worst_round": max(r[kind]["p99_ms"] for r in rounds)}
    out["targets"] = {"vs_trivial": 0.5, "p99_ms": 25}
    return out


def impression_rounds(url: str, env: dict[str, str], rec_paths: list[str], args: argparse.Namespace,
                      version: str, db: Any) -> dict[str, Any]:
    """Recommendations with impressions recorded (``url``) against a second server that
    records none, alternating which goes first; the median ratio of throughputs."""
    off, off_url = start_server({**env, "FASTINSIGHT_RECORD_IMPRESSIONS": "false"}, args.workers, version)
    try:
        first_visits(off_url, rec_paths)  # the same warm state as the recording server
        time.sleep(3)  # earlier answers' impressions are written by now
        before = ImpressionRepository(db).count()
        rounds = []
        for n in range(args.impression_rounds):
            order = [("with", url), ("without", off_url)][:: 1 if n % 2 == 0 else -1]
            rounds.append({label: load(target, rec_paths, args.concurrency, args.seconds) for label, target in order})
        time.sleep(3)  # the recording server writes what it still holds
        written = ImpressionRepository(db).count() - before
    finally:
        off.terminate()
        off.wait(timeout=30)
    ratios = [r["with"]["req_per_s"] / r["without"]["req_per_s"] for r in rounds]
    served = sum(r["with"]["requests"] for r in rounds)
    return {"rounds": rounds, "with_vs_without_throughput": round(float(np.median(ratios)), 3),
            "by_round": [round(r, 3) for r in ratios],
            "with_p99_ms_worst_round": max(r["with"]["p99_ms"] for r in rounds),
            "without_p99_ms_worst_round": max(r["without"]["p99_ms"] for r in rounds),
            "impressions_written": written, "answers_served_with": served,
            "target": {"with_vs_without": 0.9}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=3, help="saturated rounds (median reported)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--recall-users", type=int, default=300,
                        help="users whose served lists are checked against exact scoring (0: skip)")
    parser.add_argument("--impression-rounds", type=int, default=3,
                        help="rounds with against without impressions recorded (0: skip)")
    parser.add_argument("--db", default="", help="reuse (or create and keep) this database")
    parser.add_argument("--mode", choices=["full", "workers"], default="full",
                        help="workers: memory per worker and the live path by worker count")
    parser.add_argument("--worker-counts", type=_counts, default=[1, 2, 4],
                        help="--mode workers: worker counts whose memory is measured")
    parser.add_argument("--live-workers", type=_counts, default=[1, 2],
                        help="--mode workers: worker counts whose live path is measured")
    args = parser.parse_args()
    name = args.db or f"bench_serve_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri(), tz_aware=True)
    db = client[name]
    if args.mode == "workers":
        try:
            version, _ = prepare(db, name, args)
            workers_mode(args, name, version)
        finally:
            if not args.db:
                client.drop_database(name)
            client.close()
        return
    proc = None
    try:
        version, train_seconds = prepare(db, name, args)
        trained = version_costs(db, version)
        env = server_env(name)
        # The framework's own ceiling (the constant route) is measured in the same run.
        proc, url = start_server(env, args.workers, version)
        rng = np.random.default_rng(1)
        users = [f"u{u}" for u in rng.choice(args.users, 2000, replace=False)]
        rec_paths = [f"/v1/users/{u}/recommendations?k=10" for u in users[:-300]]
        first = first_visits(url, rec_paths)
        rounds = saturated_rounds(url, rec_paths, args)
        recs_rps = float(np.median([r["recs"]["req_per_s"] for r in rounds]))
        # Latency when the server is not saturated: half the throughput it reached.
        rate = round(recs_rps / 2)
        paced = {name: load(url, paths, args.concurrency, args.seconds, rate=rate)
                 for name, paths in (("trivial", ["/health/live"]), ("recs", rec_paths))}
        impressions = (impression_rounds(url, env, rec_paths, args, version, db)
                       if args.impression_rounds else None)
        # Users with events since training: their history is no longer the training
        # row, so they are scored live (fold-in, index search, exact re-scoring). Last,
        # because the buffered events make every real-time poll cost more on FerretDB.
        live = live_rounds(url, env, post_events(url, users[-300:], args.items), args, version)
        reflect = reflect_latency(url, users[-340:-300])
        recall = (served_recall(name, users[: args.recall_users], users[-300:][: args.recall_users])
                  if args.recall_users else None)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if not args.db:
            client.drop_database(name)
        client.close()
    labels = {"trivial": "GET /health/live (trivial)", "recs": "GET /v1/users/{id}/recommendations",
              "floor": "same route signature, constant answer"}
    rows = [{"endpoint": labels[key], "load": f"saturated, round {n + 1}", **r[key]}
            for n, r in enumerate(rounds) for key in ("trivial", "recs", "floor")]
    rows += [{"endpoint": labels["trivial"], "load": f"paced {rate}/s", **paced["trivial"]},
             {"endpoint": labels["recs"], "load": f"paced {rate}/s", **paced["recs"]},
             *live.pop("rows")]
    ratios = [r["recs"]["req_per_s"] / r["trivial"]["req_per_s"] for r in rounds]
    floor_ratios = [r["floor"]["req_per_s"] / r["trivial"]["req_per_s"] for r in rounds]
    ratio, floor_ratio = float(np.median(ratios)), float(np.median(floor_ratios))
    out = {"benchmark": "serve", "items": args.items, "users": args.users, "interactions": args.interactions,
           "concurrency": args.concurrency, "model": "als factors=64", "train_seconds": round(train_seconds, 1),
           "results": rows, "recs_vs_trivial_throughput": round(ratio, 3),
           "recs_vs_trivial_by_round": [round(r, 3) for r in ratios],
           "recs_p99_ms_worst_round": max(r["recs"]["p99_ms"] for r in rounds),
           "constant_route_vs_trivial_throughput": round(floor_ratio, 3),
           "live_scoring_vs_trivial_throughput": live["kept"]["vs_trivial_throughput"],
           "live": live,
           "first_visits": first, "reflect": reflect,
           "targets": {"recs_vs_trivial": 0.6, "p99_ms": 25, "reflect_ms": 50},
           "server": f"{args.workers} uvicorn worker(s); wrk in the same 2-core machine; FerretDB 1.24 (SQLite)",
           "version": trained}
    print(json.dumps(out, indent=2))
    print(table(rows, ["endpoint", "load", "requests", "errors", "req_per_s", "p50_ms", "p90_ms", "p99_ms"]))
    print(f"recommendations = {ratio:.0%} of trivial throughput, median of {len(ratios)} rounds "
          f"({', '.join(f'{r:.0%}' for r in ratios)}; a constant answer through the same route: "
          f"{floor_ratio:.0%}); reflect: {reflect}")
    if impressions is not None:
        out["impressions"] = impressions
        print(table([{"round": n + 1, "recording": label, **r[label]} for n, r in enumerate(impressions["rounds"])
                     for label in ("with", "without")],
                    ["round", "recording", "requests", "errors", "req_per_s", "p50_ms", "p99_ms"]))
        print(f"with impressions recorded = {impressions['with_vs_without_throughput']:.0%} of the throughput "
              f"without (rounds {impressions['by_round']}); {impressions['impressions_written']} impressions "
              f"written for {impressions['answers_served_with']} answers")
    for kind, label in (("kept", "users with events since training"),
                        ("scored", "the same, every answer scored")):
        lv = live[kind]
        print(f"{label}: {lv['vs_trivial_throughput']:.0%} of trivial (rounds {lv['by_round']}), "
              f"p99 median {lv['p99_ms_median']} ms, worst {lv['p99_ms_worst_round']} ms")
    if recall is not None:
        out["served_recall_vs_exact"] = recall
        print(f"served lists vs exact scoring: {recall}")
    write_result("serve" if args.workers == 1 else f"serve_{args.workers}_workers", out)


def _counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def workers_mode(args: argparse.Namespace, name: str, version: str) -> None:
    import serve_workers

    out = serve_workers.run(args, name, version)
    print(json.dumps(out, indent=2))
    memory_rows, live_rows = serve_workers.rows(out)
    print(table(memory_rows, ["workers", "worker", "rss_mib", "pss_mib", "pss_anon_mib", "pss_file_mib",
                              "model_files_rss_mib", "model_files_pss_mib"]))
    for s in out["sweep"]:
        print(f"{s['workers']} worker(s): PSS total {s['pss_total_mib']:,.1f} MiB, RSS total "
              f"{s['rss_total_mib']:,.1f} MiB, model files PSS total {s['model_files_pss_total_mib']:,.1f} MiB; "
              f"ready in {s['ready_seconds']} s")
    print(f"host copy {out['host_copy_bytes'] / 2**20:,.1f} MiB on disk, of which HNSW graphs "
          f"{out['hnsw_bytes'] / 2**20:,.1f} MiB (read into each worker)")
    print(table(live_rows, ["workers", "round", "kind", "requests", "errors", "req_per_s", "p50_ms", "p99_ms"]))
    for s in out["sweep"]:
        if "live" in s:
            lv = s["live"]
            print(f"{s['workers']} worker(s): live path = {lv['live_vs_trivial_throughput']:.0%} of trivial "
                  f"(rounds {lv['by_round']}), p99 worst {lv['live_p99_ms_worst_round']} ms")
    write_result("serve_workers", out)


if __name__ == "__main__":
    main()
