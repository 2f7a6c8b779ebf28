"""Recommendations latency while items are written, against no writes, in one run.

An item write used to make the next recommendation request rebuild the whole catalogue
view (about 85 ms at 100,000 items); now it changes only that item's entries. This
measures what a steady stream of writes costs the recommendations route.

Prepares the same synthetic database as bench/serve.py (or reuses ``--db``), starts the
API (uvicorn, one worker) and visits every measured user once. Then ``--rounds`` rounds,
each of two phases of ``--seconds`` with the order alternating between rounds (the
machine's drift falls on both alike):

- recommendations under wrk at a paced rate (``--rate``, default half the saturated
  throughput of a short probe, so the figures are latency rather than queueing), no
  item writes;
- the same while a writer patches items at ``--writes-per-second`` (default 10): a new
  title, a new category, hidden, visible again, round robin over items of the model.

The result is the p99 of each phase per round and the ratio of the medians (target:
writes within 1.5x of no writes).

Usage: ``python bench/serve_writes.py [--items 100000 --users 200000 --interactions 1000000]
[--rounds 5] [--seconds 10] [--db NAME]``
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import mongo_uri, table, write_result
from serve import KEY, first_visits, load, prepare, server_env, start_server


class ItemWriter:
    """Patches items at a fixed rate on its own thread (one keep-alive connection)."""

    def __init__(self, url: str, n_items: int, per_second: float) -> None:
        self.url, self.n_items, self.interval = url, n_items, 1.0 / per_second
        self.done: list[float] = []  # latency of each write, ms
        self.errors = 0
        self._n = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self, n: int) -> tuple[str, dict[str, Any]]:
        item = (n // 4 * 7919) % self.n_items  # spread over the catalogue
        step = n % 4
        body: dict[str, Any] = ({"title": f"Item {item} r{n}"}, {"categories": [f"cat{(item + 1) % 20}"]},
                                {"hidden": True}, {"hidden": False})[step]
        return f"/v1/items/i{item}", body

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": KEY}, timeout=30) as client:
            due = time.monotonic()
            while not self._stop.is_set():
                path, body = self._body(self._n)
                self._n += 1
                started = time.perf_counter()
                try:
                    ok = client.patch(path, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.done.append((time.perf_counter() - started) * 1000)
                self.errors += not ok
                due += self.interval
                self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> ItemWriter:
        self.done, self.errors = [], 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="item-writer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def rounds(url: str, paths: list[str], writer: ItemWriter, args: argparse.Namespace,
           rate: float) -> list[dict[str, Any]]:
    out = []
    for n in range(args.rounds):
        phases: dict[str, Any] = {}
        for phase in (("none", "writes") if n % 2 == 0 else ("writes", "none")):
            if phase == "none":
                phases[phase] = load(url, paths, args.concurrency, args.seconds, rate=rate)
                continue
            with writer:
                started = time.monotonic()
                phases[phase] = load(url, paths, args.concurrency, args.seconds, rate=rate)
                elapsed = time.monotonic() - started
            phases[phase]["writes"] = len(writer.done)
            phases[phase]["writes_per_s"] = round(len(writer.done) / elapsed, 2)
            phases[phase]["write_errors"] = writer.errors
            phases[phase]["write_p50_ms"] = round(float(np.median(writer.done)), 3) if writer.done else None
        out.append(phases)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (no writes, writes)")
    parser.add_argument("--writes-per-second", type=float, default=10)
    parser.add_argument("--rate", type=float, default=0, help="requests/s (0: half a saturated probe)")
    parser.add_argument("--db", default="", help="reuse (or create and keep) this database")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = parser.parse_args()
    name = args.db or f"bench_serve_writes_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri(), tz_aware=True)
    db = client[name]
    proc = None
    try:
        version, _ = prepare(db, name, args)
        proc, url = start_server(server_env(name), 1, version)
        rng = np.random.default_rng(1)
        users = [f"u{u}" for u in rng.choice(args.users, min(1700, args.users), replace=False)]
        paths = [f"/v1/users/{u}/recommendations?k=10" for u in users]
        first_visits(url, paths)
        rate = args.rate or round(load(url, paths, args.concurrency, min(args.seconds, 5))["req_per_s"] / 2)
        measured = rounds(url, paths, ItemWriter(url, args.items, args.writes_per_second), args, rate)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if not args.db:
            client.drop_database(name)
        client.close()
    rows = [{"round": n + 1, "phase": phase, **r[phase]} for n, r in enumerate(measured)
            for phase in ("none", "writes")]
    p99 = {phase: float(np.median([r[phase]["p99_ms"] for r in measured])) for phase in ("none", "writes")}
    ratio = p99["writes"] / p99["none"] if p99["none"] else float("nan")
    out = {"benchmark": "serve_writes", "items": args.items, "users": args.users,
           "interactions": args.interactions, "concurrency": args.concurrency, "rate_per_s": rate,
           "writes_per_second": args.writes_per_second, "results": rows,
           "recs_p99_ms_median": p99, "p99_writes_vs_none": round(ratio, 3),
           "p99_writes_vs_none_by_round": [round(r["writes"]["p99_ms"] / r["none"]["p99_ms"], 3)
                                           for r in measured if r["none"]["p99_ms"]],
           "target": {"p99_writes_vs_none": 1.5},
           "server": "1 uvicorn worker; wrk and the writer in the same 2-core machine; FerretDB 1.24 (SQLite)"}
    print(json.dumps(out, indent=2))
    print(table(rows, ["round", "phase", "requests", "errors", "req_per_s", "p50_ms", "p99_ms", "max_ms",
                       "writes_per_s", "write_errors", "write_p50_ms"]))
    print(f"recommendations p99 with {args.writes_per_second:g} item writes/s: {p99['writes']:.2f} ms, "
          f"without: {p99['none']:.2f} ms (x{ratio:.2f}, target x1.5)")
    if not args.no_save:
        write_result("serve_writes", out)


if __name__ == "__main__":
    main()
