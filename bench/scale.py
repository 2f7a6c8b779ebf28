"""How each cost grows with the data: training stages, artefacts, start-up, serving.

For each size (interactions; users = size / 25, items = size / 100, as in a shop where
a user has ~25 events and an item ~100) a fresh process generates synthetic data
(power-law popularity, users with a favourite category), trains ALS through the product's
pipeline (``services.training.pipeline.train``, evaluation off) and records every
stage's time and peak memory (the version's ``stages``), the artefact size, then starts
one API process on the version and measures its start-up time (until it serves the
version), its memory (RSS and PSS of the worker) and recommendations p50/p99 for users
served from their lists (wrk, 16 connections).

Sizes up to ``--db-max`` go through the database: interactions are inserted (raw
``insert_many``, timed as ``ingest``) and training reads them back (``read``). Larger
sizes hand training the generated columns (``train(columns=...)``): the development
server (FerretDB/SQLite) inserts ~7,600 rows/s, so 20M rows would take 45 minutes just
to load; their ``read`` stage reads the items only, which the results say
(``interactions_from``). Each curve is fitted as ``y = a * n^b`` over the sizes (log-log
least squares); ``b`` near 1 is linear, near 1.1 n log n, >= 1.3 grows faster than its
input and is named in the output.

    .venv/bin/python bench/scale.py                          # 1M, 5M, 20M; db-max 2M
    .venv/bin/python bench/scale.py --sizes 200k,400k --no-write   # a quick check
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import machine, mongo_uri, table, write_result

BENCH = Path(__file__).resolve().parent
ALS = {"factors": 64, "iterations": 10}
N_CAT = 20
TYPES = np.array(["view", "click", "like", "add_to_cart", "purchase"])
TYPE_P = np.array([0.6, 0.2, 0.1, 0.06, 0.04])
STAGES = ["ingest", "read", "matrix", "fit", "artefacts", "candidates", "upload", "check_and_activate"]


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


# ---- data ------------------------------------------------------------------------------
def columns_for(n_rows: int, seed: int = 7) -> tuple[dict[str, np.ndarray], int, int]:
    """Synthetic interactions as the pipeline's column arrays (vectorised)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(1, n_rows // 25), max(N_CAT, n_rows // 100)
    tastes = np.cumsum(rng.dirichlet(np.full(N_CAT, 0.2), size=n_users), axis=1)
    activity = rng.pareto(1.2, n_users) + 1
    user = rng.choice(n_users, size=n_rows, p=activity / activity.sum())
    cat = np.empty(n_rows, dtype=np.int64)
    for start in range(0, n_rows, 2_000_000):  # bounded temporary memory
        stop = min(n_rows, start + 2_000_000)
        draw = rng.random(stop - start)
        cat[start:stop] = np.minimum((tastes[user[start:stop]] < draw[:, None]).sum(axis=1), N_CAT - 1)
    per_cat = n_items // N_CAT
    item = np.floor(per_cat * rng.random(n_rows) ** 3).astype(np.int64) * N_CAT + cat
    now = datetime.now(UTC).timestamp()
    return {
        "users": np.char.add("u", user.astype(str)), "items": np.char.add("i", item.astype(str)),
        "types": rng.choice(TYPES, size=n_rows, p=TYPE_P),
        "values": np.full(n_rows, np.nan), "timestamps": now - rng.uniform(0, 60 * 86400, n_rows),
    }, n_users, n_items


def insert_catalogue(db: Any, n_items: int, n_users: int) -> None:
    now = datetime.now(UTC)
    for start in range(0, n_items, 10_000):
        db["items"].insert_many([
            {"_id": f"i{i}", "item_id": f"i{i}", "title": f"Item {i}", "description": "",
             "categories": [f"cat{i % N_CAT}"], "tags": [], "attributes": {}, "hidden": False,
             "published_at": None, "created_at": now, "updated_at": now}
            for i in range(start, min(n_items, start + 10_000))], ordered=False)
    for start in range(0, n_users, 10_000):
        db["users"].insert_many([
            {"_id": f"u{u}", "user_id": f"u{u}", "attributes": {}, "created_at": now, "updated_at": now}
            for u in range(start, min(n_users, start + 10_000))], ordered=False)


def insert_interactions(db: Any, columns: dict[str, np.ndarray]) -> None:
    from fastinsight.storage.mongo.interactions import interaction_document

    batch = []
    for n, (u, i, t, ts) in enumerate(zip(columns["users"].tolist(), columns["items"].tolist(),
                                          columns["types"].tolist(), columns["timestamps"].tolist(),
                                          strict=True)):
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=ts)
        batch.append(interaction_document(u, i, t, None, when, f"s{n}"))
        if len(batch) == 20_000:
            db["interactions"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        db["interactions"].insert_many(batch, ordered=False)


# ---- one size, in its own process ------------------------------------------------------------
def run_size(n_rows: int, db_max: int, db_name: str) -> dict[str, Any]:
    from pymongo import MongoClient

    from fastinsight.config import Settings
    from fastinsight.services.training.pipeline import train
    from fastinsight.services.training.stages import peak_rss_mb
    from fastinsight.storage.mongo import apply_indexes

    client: Any = MongoClient(mongo_uri(), tz_aware=True)
    client.drop_database(db_name)
    db = client[db_name]
    apply_indexes(db)
    t0 = time.perf_counter()
    columns, n_users, n_items = columns_for(n_rows)
    generate_seconds = time.perf_counter() - t0
    insert_catalogue(db, n_items, n_users)
    out: dict[str, Any] = {"interactions": n_rows, "users": n_users, "items": n_items,
                           "generate_seconds": round(generate_seconds, 1),
                           "generate_peak_rss_mb": peak_rss_mb()}
    through_db = n_rows <= db_max
    if through_db:
        t0 = time.perf_counter()
        insert_interactions(db, columns)
        ingest = time.perf_counter() - t0
        out["ingest"] = {"seconds": round(ingest, 1), "rows_per_s": round(n_rows / ingest)}
        columns = {}
    out["interactions_from"] = "database" if through_db else "generated columns (items read from the database)"
    settings = Settings(mongodb_uri=mongo_uri(), mongodb_db=db_name, api_key="scale-key",
                        admin_key="scale-admin", _env_file=None)  # type: ignore[call-arg]
    doc = train(db, settings, "als", ALS, evaluate=False, columns=columns or None)
    out.update({"version": doc["version"], "stages": doc["stages"],
                "artefact_mb": round(doc["artefact_bytes"] / 2**20, 1),
                "train_seconds": doc["duration_seconds"], "candidates": doc.get("candidates")})
    client.close()
    return out


# ---- serving -------------------------------------------------------------------------------
def serve_size(db_name: str, version: str, n_users: int, seconds: float) -> dict[str, Any]:
    import httpx

    from serve import free_port, load, server_env
    from serve_workers import memory

    port = free_port()
    models = Path(tempfile.mkdtemp(prefix="fi-scale-models-"))
    env = {**server_env(db_name), "FASTINSIGHT_MODEL_CACHE_DIR": str(models)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app",
                             "--port", str(port), "--log-level", "warning", "--no-access-log"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).json().get("model_version") == version:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"the API process exited with {proc.returncode}")
            time.sleep(0.25)
        startup = time.perf_counter() - started
        rng = np.random.default_rng(1)
        paths = [f"/v1/users/u{u}/recommendations?k=10" for u in rng.choice(n_users, 2000, replace=False)]
        load(url, paths[:200], 4, 3)  # warm up
        result = load(url, paths, 16, seconds)
        used = memory(proc.pid, models)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(models, ignore_errors=True)
    return {"startup_seconds": round(startup, 1), "rss_mb": used["rss_mib"], "pss_mb": used["pss_mib"],
            "model_files_pss_mb": used["model_files_pss_mib"],
            "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "req_per_s": result["req_per_s"],
            "errors": result.get("errors", 0)}


# ---- curves --------------------------------------------------------------------------------
def growth(sizes: list[int], values: list[float]) -> dict[str, Any] | None:
    """Exponent b of y = a * n^b (log-log least squares) and a plain-words shape."""
    pairs = [(n, v) for n, v in zip(sizes, values, strict=True) if v and v > 0]
    if len(pairs) < 2:
        return None
    x = np.log([p[0] for p in pairs])
    y = np.log([p[1] for p in pairs])
    b, _ = np.polyfit(x, y, 1)
    shape = "sub-linear" if b < 0.85 else "linear" if b < 1.08 else "n log n" if b < 1.3 else "super-linear"
    return {"exponent": round(float(b), 2), "shape": shape, "points": len(pairs)}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["interactions"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for stage in STAGES:
        # ``read`` beyond the database sizes reads the items only: not plotted.
        ys = [stage_value(r, stage, "seconds") if measured(r, stage) else None for r in rows]
        if any(ys):
            left.plot(sizes, [y or np.nan for y in ys], marker="o", label=stage)
        ms = [stage_value(r, stage, "peak_rss_mb") if measured(r, stage) else None for r in rows]
        if any(ms):
            right.plot(sizes, [m or np.nan for m in ms], marker="o", label=stage)
    right.plot(sizes, [r.get("serving", {}).get("pss_mb") or np.nan for r in rows], marker="s",
               linestyle="--", label="API worker PSS")
    for axis, title in ((left, "seconds per stage"), (right, "peak memory per stage (MiB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("interactions")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def measured(row: dict[str, Any], stage: str) -> bool:
    """Reading interactions is measured only where they came from the database."""
    return stage not in ("ingest", "read") or row["interactions_from"] == "database"


def stage_value(row: dict[str, Any], stage: str, field: str) -> float | None:
    source = row.get("ingest", {}) if stage == "ingest" else row["stages"].get(stage, {})
    value = source.get(field)
    return float(value) if value is not None else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,5M,20M")
    parser.add_argument("--db-max", default="2M", help="largest size loaded through the database")
    parser.add_argument("--seconds", type=float, default=15.0, help="serving load per size")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from results/scale.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode: one size
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    db_max = parse_size(args.db_max)
    if args.plot_only:
        plot(json.loads((BENCH / "results" / "scale.json").read_text())["rows"],
             BENCH / "results" / "plots" / "scale.png")
        return 0
    if args.one is not None:
        print(json.dumps(run_size(args.one, db_max, args.db)))
        return 0

    rows: list[dict[str, Any]] = []
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        db_name = f"scale_{size}"
        print(f"size {size:,}: training ...", file=sys.stderr)
        with tempfile.TemporaryFile() as sink:
            done = subprocess.run([sys.executable, __file__, "--one", str(size), "--db", db_name,
                                   "--db-max", args.db_max], stdout=subprocess.PIPE, stderr=sink, check=False)
            if done.returncode != 0:
                sink.seek(0)
                raise SystemExit(f"size {size}: failed\n{sink.read().decode(errors='replace')[-4000:]}")
        row = json.loads(done.stdout.decode().strip().splitlines()[-1])
        print(f"size {size:,}: serving ...", file=sys.stderr)
        row["serving"] = serve_size(db_name, row["version"], row["users"], args.seconds)
        rows.append(row)
        if not args.keep:
            from pymongo import MongoClient

            MongoClient(mongo_uri()).drop_database(db_name)
        print(json.dumps(row), file=sys.stderr)

    sizes = [r["interactions"] for r in rows]
    curves: dict[str, Any] = {}
    for stage in STAGES:
        kept = [r for r in rows if measured(r, stage)]
        for field in ("seconds", "peak_rss_mb"):
            values = [stage_value(r, stage, field) for r in kept]
            fitted = growth([r["interactions"] for r, v in zip(kept, values, strict=True) if v is not None],
                            [v for v in values if v is not None])
            if fitted:
                curves[f"{stage}.{field}"] = fitted
    for key, get in (("artefact_mb", lambda r: r["artefact_mb"]),
                     ("startup_seconds", lambda r: r["serving"]["startup_seconds"]),
                     ("serving_pss_mb", lambda r: r["serving"].get("pss_mb")),
                     ("serving_p99_ms", lambda r: r["serving"]["p99_ms"])):
        fitted = growth(sizes, [get(r) for r in rows])
        if fitted:
            curves[key] = fitted
    faster = sorted(k for k, c in curves.items() if c["shape"] == "super-linear")
    result = {"benchmark": "scale", "sizes": sizes, "als": ALS, "db_max": db_max, "rows": rows,
              "curves": curves, "faster_than_input": faster}
    flat = [{"interactions": f"{r['interactions']:,}", "users": f"{r['users']:,}", "items": f"{r['items']:,}",
             **{s: stage_value(r, s, "seconds") for s in STAGES},
             "artefact_mb": r["artefact_mb"], "startup_s": r["serving"]["startup_seconds"],
             "pss_mb": r["serving"].get("pss_mb"), "p50_ms": r["serving"]["p50_ms"],
             "p99_ms": r["serving"]["p99_ms"]} for r in rows]
    print(table(flat, list(flat[0])))
    if curves:  # a curve needs two sizes
        print(table([{"curve": k, **c} for k, c in curves.items()], ["curve", "exponent", "shape", "points"]))
    print(f"grows faster than its input: {', '.join(faster) or 'nothing'}")
    if not args.no_write:
        print(f"wrote {write_result('scale', result)}")
        plot(rows, BENCH / "results" / "plots" / "scale.png")
    else:
        print(json.dumps({"machine": machine(), **result})[:2000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
