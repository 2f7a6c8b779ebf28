"""Tenancy benchmark: many tenants in one API process, in one run.

Starts one API process (uvicorn, one worker) with an operator key and a bound on loaded
tenants (``--max-loaded``, the default tenant included, below ``--tenants`` so that
loading them all evicts the least recently used), then:

1. setup: creates ``--tenants`` tenants through the operator API, each with an ``api``
   key, a synthetic catalogue (items cycling over ``--sizes``; users and interactions
   in proportion, by default 1 user and 8 interactions per item; one seed per tenant) loaded through the ingest service into the
   tenant's database, and an ALS model trained in this process with the tenant's
   settings (``settings_for``), as a training job would;
2. loaded against not loaded: every tenant's first request (which loads it: services
   built, the model loading in the background, the answer from the version's popular
   items meanwhile) and how long until it answers from its trained version; between
   batches of those loads (``--rounds``), ``--requests`` sequential requests to a loaded
   tenant of each size; then first requests to tenants evicted earlier (reloads, the
   model files already on this host). Evictions are read from
   ``fastinsight_tenants_loaded``;
3. noisy neighbour (bench/tenants_noisy.py): tenant B's p99 at a paced rate, alone and
   while tenant A (rate-limited to 50 requests/s) is hammered far above its limit,
   imports interactions, or retrains, in rotating order;
4. memory: the API process's RSS and PSS before loading any tenant and after each load,
   per loaded tenant (before the first eviction) and by catalogue size, with the model
   bytes per tenant (the trained version's ``artefact_bytes``; the operator API's usage).

The server's misbehaviour (5xx, a tenant that never loads, logged errors with their
tracebacks) is reported in ``problems`` and ``server_errors``, not worked around. Every
database the run created is dropped and the server stopped, also on failure.

Usage: ``python bench/tenants.py [--quick] [--tenants 50 --sizes 200,1000,5000]
[--out PATH]`` (results in ``results/tenants.json`` unless ``--out``).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import machine, mongo_uri, table, write_result
from fastinsight.config import Settings
from fastinsight.services.data.demo import DemoSize, load_synthetic
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.tenancy.directory import TenantRecord
from fastinsight.services.tenancy.settings import settings_for
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo import apply_indexes
from serve import KEY, server_env
from tenants_server import Server, Tenant, gauge, labelled

FULL = {"tenants": 50, "sizes": "200,1000,5000", "max_loaded": 20, "rounds": 3, "requests": 500,
        "seconds": 10.0, "reloads": 5}
QUICK = {"tenants": 6, "sizes": "100,300,1000", "max_loaded": 4, "rounds": 1, "requests": 100,
         "seconds": 3.0, "reloads": 2}
LOADED = "fastinsight_tenants_loaded"
MODEL_BYTES = "fastinsight_tenant_model_bytes"


# ---- 1. setup ---------------------------------------------------------------------------
def prepare(server: Server, mongo: MongoClient[dict[str, Any]], name: str, folder: Path,
            args: argparse.Namespace) -> list[Tenant]:
    base = Settings(mongodb_uri=mongo_uri(), mongodb_db=name, api_key=KEY, admin_key=KEY + "-admin",
                    var_dir=folder / "var", log_dir=folder / "log", _env_file=None)
    sizes = [int(s) for s in args.sizes.split(",")]
    tenants = []
    for n in range(args.tenants):
        size, tenant_id = sizes[n % len(sizes)], f"t{n:02d}"
        record = server.operator_call("POST", "", {"id": tenant_id, "name": f"bench {size} items"})
        key = server.operator_call("POST", f"/{tenant_id}/keys", {"scope": "api", "name": "bench"})["key"]
        tenant = Tenant(tenant_id, size, record["database"], key)
        db = mongo[tenant.database]
        apply_indexes(db)
        settings = settings_for(base, TenantRecord(tenant_id, tenant.database))
        demo = DemoSize(items=size, users=max(20, int(size * args.users_per_item)),
                        interactions=int(size * args.interactions_per_item), seed=args.seed + n)
        started = time.perf_counter()
        load_synthetic(IngestService(db, settings), demo)
        tenant.ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        doc = train(db, settings, "als", evaluate=False)
        tenant.train_s = time.perf_counter() - started
        tenant.version, tenant.artefact_bytes = str(doc["version"]), int(doc["artefact_bytes"])
        # Users with history (answered from the model, not trending); the first 5,000
        # events hold enough of them (a full distinct scans every event on FerretDB).
        users = sorted({str(d["user_id"]) for d in db["interactions"].find({}, {"user_id": 1}).limit(5000)})
        picked = np.random.default_rng(n).choice(len(users), min(len(users), 200), replace=False)
        tenant.users = [users[i] for i in picked]
        tenants.append(tenant)
        print(f"{tenant_id}: {size} items, ingest {tenant.ingest_s:.1f}s, train {tenant.train_s:.1f}s",
              file=sys.stderr)
    return tenants


# ---- 2. loaded against not loaded, 4. memory ----------------------------------------------
def first_load(server: Server, tenant: Tenant, args: argparse.Namespace, phase: str,
               round_: int) -> dict[str, Any]:
    """The tenant's first request (not loaded), then polls until its model answers."""
    before, mem_before = server.metrics(), server.memory()
    seen = server.until_model(tenant, args.deadline)
    after, mem_after = server.metrics(), server.memory()
    print(f"{phase} {tenant.id} ({tenant.size} items): first answer {seen['first_answer']} in "
          f"{seen['first_ms']:.0f} ms, model after {seen['model_after_ms']} ms", file=sys.stderr)
    return {"tenant": tenant.id, "size": tenant.size, "phase": phase, "round": round_, **seen,
            "loaded_before": gauge(before, LOADED), "loaded_after": gauge(after, LOADED),
            "was_loaded": tenant.id in labelled(before, MODEL_BYTES, "tenant"),
            "gauge_model_bytes_when_model": gauge(after, MODEL_BYTES, tenant=tenant.id),
            "artefact_bytes": tenant.artefact_bytes,
            "rss_before_mib": mem_before["rss_mib"], "rss_after_mib": mem_after["rss_mib"],
            "pss_after_mib": mem_after["pss_mib"]}


def sequential(server: Server, tenant: Tenant, args: argparse.Namespace) -> dict[str, Any]:
    """``--requests`` GETs one after another on one keep-alive connection, once the
    tenant answers from its model (it may have been evicted meanwhile)."""
    server.until_model(tenant, args.deadline)
    for n in range(10):
        server.http.get(tenant.path(n), headers=tenant.headers)
    took, failed = [], 0
    for n in range(args.requests):
        started = time.perf_counter()
        response = server.http.get(tenant.path(n), headers=tenant.headers)
        took.append((time.perf_counter() - started) * 1000)
        failed += response.status_code != 200
    if failed:
        server.problem(f"tenant {tenant.id}: {failed} of {args.requests} loaded requests not 200")
    return {"tenant": tenant.id, "size": tenant.size, "requests": args.requests, "non_200": failed,
            "p50_ms": round(float(np.percentile(took, 50)), 3),
            "p99_ms": round(float(np.percentile(took, 99)), 3), "max_ms": round(max(took), 3)}


def loading(server: Server, tenants: list[Tenant], args: argparse.Namespace) -> dict[str, Any]:
    warm = list({t.size: t for t in reversed(tenants)}.values())[::-1]  # first of each size
    rest = [t for t in tenants if t not in warm]
    baseline = server.memory()
    loads = [first_load(server, t, args, "first", 0) for t in warm]
    rounds = []
    for n, batch in enumerate(np.array_split(np.arange(len(rest)), args.rounds)):
        rounds.append([sequential(server, t, args) for t in warm])
        loads += [first_load(server, rest[i], args, "first", n) for i in batch]
    samples = server.metrics()
    loaded_now = set(labelled(samples, MODEL_BYTES, "tenant"))
    evicted = [t for t in tenants if t.id not in loaded_now]
    loads += [first_load(server, t, args, "reload", args.rounds - 1) for t in evicted[: args.reloads]]
    usage = {t["id"]: t["usage"] for t in server.operator_call("GET", "?usage=true")["tenants"]}
    gauges = labelled(server.metrics(), MODEL_BYTES, "tenant")
    return {"loads": loads, "loaded_rounds": rounds, "baseline_memory": baseline,
            "final_memory": server.memory(), "usage": usage, "final_model_bytes_gauge": gauges}


def memory_summary(loads: list[dict[str, Any]], baseline: dict[str, float],
                   usage: dict[str, Any]) -> dict[str, Any]:
    """Per loaded tenant, up to the first eviction: RSS growth over the baseline."""
    before_eviction = []
    for load in loads:
        if load["loaded_after"] is None or load["loaded_before"] is None:
            break
        if load["loaded_after"] <= load["loaded_before"]:
            break
        before_eviction.append(load)
    k = len(before_eviction)
    last = before_eviction[-1] if before_eviction else None
    by_size: dict[int, dict[str, Any]] = {}
    for size in sorted({load["size"] for load in loads}):
        deltas = [b["rss_after_mib"] - b["rss_before_mib"] for b in before_eviction if b["size"] == size]
        artefacts = [b["artefact_bytes"] for b in loads if b["size"] == size]
        served = [u["model_bytes"] for u in usage.values() if u.get("loaded") and u.get("model_bytes")
                  and u["items"] == size]
        by_size[size] = {"rss_delta_per_load_mib_median": _median(deltas), "loads_counted": len(deltas),
                         "artefact_bytes_median": _median(artefacts),
                         "operator_usage_model_bytes_median": _median(served)}
    return {"tenants_loaded_before_first_eviction": k,
            "rss_baseline_mib": baseline["rss_mib"], "pss_baseline_mib": baseline["pss_mib"],
            "rss_after_k_mib": last["rss_after_mib"] if last else None,
            "rss_per_loaded_tenant_mib": round((last["rss_after_mib"] - baseline["rss_mib"]) / k, 2)
            if last else None,
            "by_size": by_size}


# ---- the run ------------------------------------------------------------------------------
def run(args: argparse.Namespace, name: str, folder: Path, mongo: MongoClient[dict[str, Any]]
        ) -> dict[str, Any]:
    import tenants_noisy

    operator_key = secrets.token_urlsafe(32)
    env = {**server_env(name), "FASTINSIGHT_OPERATOR_KEY": operator_key,
           "FASTINSIGHT_TENANT_MAX_LOADED": str(args.max_loaded),
           "FASTINSIGHT_VAR_DIR": str(folder / "var"), "FASTINSIGHT_LOG_DIR": str(folder / "log")}
    server = Server(env, folder, operator_key)
    out: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        tenants = prepare(server, mongo, name, folder, args)
        out["setup_seconds"] = round(time.perf_counter() - started, 1)
        out["tenants"] = [{"id": t.id, "items": t.size, "version": t.version, "artefact_bytes": t.artefact_bytes,
                           "ingest_s": round(t.ingest_s, 2), "train_s": round(t.train_s, 2)} for t in tenants]
        out["loading"] = loading(server, tenants, args)
        sizes = sorted({t.size for t in tenants})
        b = next(t for t in tenants if t.size == sizes[len(sizes) // 2])
        a = max((t for t in tenants if t is not b), key=lambda t: t.size)  # the largest catalogue
        a.admin_key = server.operator_call("POST", f"/{a.id}/keys", {"scope": "admin", "name": "bench"})["key"]
        out["noisy"] = tenants_noisy.run(server, a, b, args)
    except BaseException:
        server.stop()
        for error in server.logged_errors():
            print(f"server error logged: {json.dumps(error, default=str)}", file=sys.stderr)
        raise
    server.stop()
    out["problems"] = server.problems
    out["server_errors"] = server.logged_errors()
    return out


def summarise(out: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    loads = out["loading"]["loads"]
    first = [x for x in loads if x["phase"] == "first"]
    reload = [x for x in loads if x["phase"] == "reload"]
    sizes = sorted({x["size"] for x in loads})
    loaded = {size: [r for rnd in out["loading"]["loaded_rounds"] for r in rnd if r["size"] == size]
              for size in sizes}
    gauges = out["loading"]["final_model_bytes_gauge"]
    evictions = sum(max(0.0, x["loaded_before"] + 1 - x["loaded_after"]) for x in loads
                    if x["loaded_before"] is not None and x["loaded_after"] is not None)
    return {
        "loaded_p50_ms": {s: _spread([r["p50_ms"] for r in loaded[s]]) for s in sizes},
        "loaded_p99_ms": {s: _spread([r["p99_ms"] for r in loaded[s]]) for s in sizes},
        "first_request_ms": _dist([x["first_ms"] for x in first]),
        "first_request_p50_ms_by_round": _spread([float(np.median([x["first_ms"] for x in first if x["round"] == n]))
                                                  for n in sorted({x["round"] for x in first})]),
        "first_request_ms_by_size": {s: _dist([x["first_ms"] for x in first if x["size"] == s]) for s in sizes},
        "first_answers": {kind: sum(x["first_answer"] == kind for x in first)
                          for kind in sorted({x["first_answer"] for x in first})},
        "fallback_answers_all_popular": all(x.get("fallback_all_popular", True) for x in first),
        "until_model_ms": _dist([x["model_after_ms"] for x in first if x["model_after_ms"] is not None]),
        "until_model_ms_by_size": {s: _dist([x["model_after_ms"] for x in first
                                             if x["size"] == s and x["model_after_ms"] is not None]) for s in sizes},
        "never_answered_from_model": [x["tenant"] for x in loads if x["model_after_ms"] is None],
        "reload_first_request_ms": _dist([x["first_ms"] for x in reload]),
        "reload_until_model_ms": _dist([x["model_after_ms"] for x in reload if x["model_after_ms"] is not None]),
        "samples_already_loaded": sum(bool(x["was_loaded"]) for x in loads),
        "evictions_seen": int(evictions),
        "tenants_loaded_at_end": out["loading"]["loads"][-1]["loaded_after"],
        "gauge_model_bytes_zero_or_missing_when_model_answered": sum(
            not x["gauge_model_bytes_when_model"] for x in loads if x["model_after_ms"] is not None),
        "gauge_model_bytes_vs_operator_usage_at_end": {
            tenant: {"gauge": gauges.get(tenant), "usage": u["model_bytes"]}
            for tenant, u in out["loading"]["usage"].items() if u.get("loaded")},
        "memory": memory_summary(loads, out["loading"]["baseline_memory"], out["loading"]["usage"]),
    }


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def _spread(values: list[float]) -> dict[str, float | None]:
    """Median over rounds and the spread (min-max)."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": _median(values), "min": round(min(values), 3), "max": round(max(values), 3)}


def _dist(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "max": None}
    return {"n": len(values), "p50": _median(values), "p90": round(float(np.percentile(values, 90)), 3),
            "max": round(max(values), 3)}


def report(out: dict[str, Any], summary: dict[str, Any]) -> None:
    rows = []
    for size, p50 in summary["loaded_p50_ms"].items():
        p99 = summary["loaded_p99_ms"][size]
        rows.append({"what": f"loaded tenant, {size} items ({len(out['loading']['loaded_rounds'])} rounds)",
                     "p50_ms": p50["median"], "p99_ms": p99["median"],
                     "spread": f"p99 {p99['min']}-{p99['max']}"})
    for label, key in (("first request, not loaded", "first_request_ms"),
                       ("until answered from its model", "until_model_ms"),
                       ("first request after eviction", "reload_first_request_ms"),
                       ("  until its model (reload)", "reload_until_model_ms")):
        d = summary[key]
        rows.append({"what": f"{label} (n={d['n']})", "p50_ms": d["p50"], "p90_ms": d["p90"], "max_ms": d["max"]})
        if key == "first_request_ms":
            r = summary["first_request_p50_ms_by_round"]
            rows[-1]["spread"] = f"round p50 {r['min']}-{r['max']}"
    for size, d in summary["first_request_ms_by_size"].items():
        m = summary["until_model_ms_by_size"][size]
        rows.append({"what": f"  {size} items: first request / until model (n={d['n']})",
                     "p50_ms": d["p50"], "p90_ms": d["p90"], "max_ms": d["max"],
                     "spread": f"model p50 {m['p50']} max {m['max']}"})
    print(table(rows, ["what", "p50_ms", "p90_ms", "p99_ms", "max_ms", "spread"]))
    mem = summary["memory"]
    print(table([{"items": size, **v} for size, v in mem["by_size"].items()],
                ["items", "loads_counted", "rss_delta_per_load_mib_median", "artefact_bytes_median",
                 "operator_usage_model_bytes_median"]))
    print(f"fastinsight_tenant_model_bytes was 0 or missing when the model answered for "
          f"{summary['gauge_model_bytes_zero_or_missing_when_model_answered']} of {len(out['loading']['loads'])} "
          f"loads; first-load samples of a tenant already loaded: {summary['samples_already_loaded']}")
    print(f"RSS {mem['rss_baseline_mib']} MiB before any tenant, {mem['rss_after_k_mib']} MiB with "
          f"{mem['tenants_loaded_before_first_eviction']} loaded: {mem['rss_per_loaded_tenant_mib']} MiB per "
          f"loaded tenant; evictions seen {summary['evictions_seen']}; first answers {summary['first_answers']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 small tenants, 1 round")
    parser.add_argument("--tenants", type=int, help="tenants created (50; quick 6)")
    parser.add_argument("--sizes", help="catalogue sizes (items) the tenants cycle over")
    parser.add_argument("--users-per-item", type=float, default=1.0)
    parser.add_argument("--interactions-per-item", type=float, default=8.0)
    parser.add_argument("--max-loaded", type=int, help="FASTINSIGHT_TENANT_MAX_LOADED (20; quick 4)")
    parser.add_argument("--rounds", type=int, help="rounds of loaded latency and of each neighbour phase")
    parser.add_argument("--requests", type=int, help="sequential requests per loaded measurement")
    parser.add_argument("--seconds", type=float, help="length of each neighbour phase")
    parser.add_argument("--reloads", type=int, help="evicted tenants asked again")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds a tenant may take to load")
    parser.add_argument("--b-rate", type=float, default=100.0, help="tenant B's paced requests/s")
    parser.add_argument("--b-connections", type=int, default=2)
    parser.add_argument("--a-connections", type=int, default=8, help="connections hammering tenant A")
    parser.add_argument("--a-limit", type=float, default=50.0, help="tenant A's requests/s (and burst)")
    parser.add_argument("--import-batch", type=int, default=1000, help="rows per import request of A")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--out", help="write the result here instead of results/tenants.json")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.tenants < 2:
        parser.error("--tenants: at least 2 (tenant A and tenant B)")
    name = f"bench_tenants_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="fi-bench-tenants-"))
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri(), tz_aware=True)
    failed = True
    try:
        out = run(args, name, folder, mongo)
        failed = False
    finally:
        dropped = [db for db in mongo.list_database_names()
                   if db in (name, f"{name}_control") or db.startswith(f"{name}_t_")]
        for db in dropped:
            mongo.drop_database(db)
        mongo.close()
        if failed:
            kept = Path(tempfile.gettempdir()) / f"{name}-server-logs"
            shutil.copytree(folder / "log", kept, dirs_exist_ok=True, ignore_dangling_symlinks=True)
            if (folder / "server.out").exists():
                shutil.copy(folder / "server.out", kept)
            print(f"server logs kept in {kept}", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
        print(f"dropped {len(dropped)} databases of {name}", file=sys.stderr)
    summary = summarise(out, args)
    result = {"benchmark": "tenants", "quick": args.quick, "tenants_count": args.tenants,
              "sizes_items": [int(s) for s in args.sizes.split(",")],
              "users_per_item": args.users_per_item, "interactions_per_item": args.interactions_per_item,
              "model": "als (default parameters), trained in the bench process", "max_loaded": args.max_loaded,
              "rounds": args.rounds, "requests_per_loaded_round": args.requests,
              "server": "1 uvicorn worker; clients (httpx, wrk) in the same 2-core machine; FerretDB (SQLite)",
              "summary": summary, **out}
    print(json.dumps(result, indent=2, default=str))
    report(out, summary)
    import tenants_noisy

    tenants_noisy.report(out["noisy"])
    if out["problems"] or out["server_errors"]:
        print(f"PROBLEMS: {len(out['problems'])}, server errors logged: {len(out['server_errors'])} (see JSON)")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": machine(), **result}, indent=2, default=str) + "\n")
    else:
        write_result("tenants", result)


if __name__ == "__main__":
    main()
