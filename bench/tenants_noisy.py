"""bench/tenants.py, noisy neighbour: tenant B's latency while tenant A misbehaves.

Tenant A gets a rate limit (``--a-limit`` requests/s, the same burst) through the
operator API. B is driven by wrk at a paced rate (``--b-rate`` over ``--b-connections``
connections) for ``--seconds`` in each phase:

- ``quiet``: B alone;
- ``requests``: A hammered at the same time by wrk (``--a-connections`` connections,
  closed loop, far above its limit: mostly 429);
- ``import``: A posts ``--import-batch`` interactions per request, one after another;
- ``retrain``: A runs retrain jobs (through the job API, one after another; the phase
  ends when the running job has finished, so none reaches the next phase).

Phases rotate between rounds. A's admitted and refused requests come from the
server's ``fastinsight_tenant_requests_total``; its raw request count from wrk.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

import httpx
import numpy as np

from _common import table
from serve import load
from tenants_server import Server, Tenant, gauge

PHASES = ("quiet", "requests", "import", "retrain")
COUNTER = "fastinsight_tenant_requests_total"


class Neighbour:
    """Tenant A's activity in one phase, on its own thread, while B is measured."""

    def __init__(self, server: Server, a: Tenant, phase: str, args: argparse.Namespace) -> None:
        self.server, self.a, self.phase, self.args = server, a, phase, args
        self.stats: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tenant-a-{phase}", daemon=True)

    def __enter__(self) -> Neighbour:
        self._before = self._counts()
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        after = self._counts()
        self.stats["a_admitted"] = int(after[0] - self._before[0])
        self.stats["a_rate_limited"] = int(after[1] - self._before[1])
        self.stats["a_seconds"] = round(time.monotonic() - self._started, 2)

    def _counts(self) -> tuple[float, float]:
        samples = self.server.metrics()
        return (gauge(samples, COUNTER, tenant=self.a.id, outcome="ok") or 0.0,
                gauge(samples, COUNTER, tenant=self.a.id, outcome="rate_limited") or 0.0)

    def _run(self) -> None:
        if self.phase == "requests":
            paths = [self.a.path(n) for n in range(len(self.a.users))]
            run = load(self.server.url, paths, self.args.a_connections, self.args.seconds + 1,
                       threads=1, key=self.a.key)
            self.stats.update({"a_requests": run["requests"], "a_req_per_s": run["req_per_s"],
                               "a_non_2xx_or_errors": run["errors"]})
        elif self.phase == "import":
            self._import()
        elif self.phase == "retrain":
            self._retrain()

    def _import(self) -> None:
        rng = np.random.default_rng(5)
        rows = requests = refused = 0
        with httpx.Client(base_url=self.server.url, headers=self.a.headers, timeout=120) as client:
            while not self._stop.is_set():
                users = rng.integers(len(self.a.users), size=self.args.import_batch)
                items = rng.integers(self.a.size, size=self.args.import_batch)
                body = {"interactions": [{"user_id": self.a.users[u], "item_id": f"item-{i:06d}", "type": "view"}
                                         for u, i in zip(users, items, strict=True)]}
                response = client.post("/v1/interactions/batch", json=body)
                requests += 1
                if response.status_code == 429:
                    refused += 1
                    continue
                self.server.checked(response, f"tenant {self.a.id}: POST /v1/interactions/batch")
                rows += int(response.json().get("inserted", 0))
        self.stats.update({"a_import_requests": requests, "a_import_429": refused, "a_rows_imported": rows})

    def _retrain(self) -> None:
        jobs: list[dict[str, Any]] = []
        headers = {"X-API-Key": self.a.admin_key}
        with httpx.Client(base_url=self.server.url, headers=headers, timeout=60) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                job = self.server.checked(client.post("/v1/admin/jobs", json={"name": "retrain"}),
                                          f"tenant {self.a.id}: POST /v1/admin/jobs").json()
                deadline = started + self.args.deadline * 5
                while job["status"] in ("queued", "running") and time.monotonic() < deadline:
                    time.sleep(0.5)
                    response = client.get(f"/v1/admin/jobs/{job['id']}")
                    if response.status_code != 429:
                        job = self.server.checked(response, f"tenant {self.a.id}: GET job").json()
                jobs.append({"status": job["status"], "seconds": round(time.monotonic() - started, 1)})
                if job["status"] != "succeeded":
                    self.server.problem(f"tenant {self.a.id}: retrain job {job['id']} ended {job['status']}",
                                        error=job.get("error"), output_tail=str(job.get("output_tail"))[-3000:])
                    break
        self.stats.update({"a_retrain_jobs": len(jobs),
                           "a_retrain_succeeded": sum(j["status"] == "succeeded" for j in jobs),
                           "a_retrain_seconds": [j["seconds"] for j in jobs]})


def run(server: Server, a: Tenant, b: Tenant, args: argparse.Namespace) -> dict[str, Any]:
    limit = {"requests_per_second": args.a_limit, "burst": int(args.a_limit)}
    server.operator_call("PATCH", f"/{a.id}", {"limits": limit})
    server.until_model(a, args.deadline, interval=0.1)  # the change unloaded A
    server.until_model(b, args.deadline)
    b_paths = [b.path(n) for n in range(len(b.users))]
    rounds = []
    for n in range(args.rounds):
        phases: dict[str, Any] = {}
        for phase in PHASES[n % len(PHASES):] + PHASES[: n % len(PHASES)]:
            with Neighbour(server, a, phase, args) as neighbour:
                measured = load(server.url, b_paths, args.b_connections, args.seconds, threads=1,
                                rate=args.b_rate, key=b.key)
            phases[phase] = {"b": measured, **neighbour.stats}
            print(f"round {n + 1} {phase}: B p99 {measured['p99_ms']} ms; A {neighbour.stats}", file=sys.stderr)
            if measured["errors"]:
                server.problem(f"tenant {b.id}: {measured['errors']} errors in phase {phase}")
        rounds.append(phases)
    quiet = [r["quiet"]["b"]["p99_ms"] for r in rounds]
    summary: dict[str, Any] = {"b_p99_ms": {}, "b_p99_vs_quiet": {}}
    for phase in PHASES:
        p99 = [r[phase]["b"]["p99_ms"] for r in rounds]
        summary["b_p99_ms"][phase] = _spread(p99)
        if phase != "quiet":
            summary["b_p99_vs_quiet"][phase] = _spread([x / q for x, q in zip(p99, quiet, strict=True) if q])
    summary["a_requests_phase"] = {
        "a_req_per_s": _spread([r["requests"].get("a_req_per_s", 0.0) for r in rounds]),
        "a_admitted_total": sum(r["requests"]["a_admitted"] for r in rounds),
        "a_rate_limited_total": sum(r["requests"]["a_rate_limited"] for r in rounds),
        "a_admitted_per_s": _spread([r["requests"]["a_admitted"] / r["requests"]["a_seconds"] for r in rounds])}
    return {"a": {"id": a.id, "items": a.size, "limit": limit}, "b": {"id": b.id, "items": b.size},
            "b_rate_per_s": args.b_rate, "b_connections": args.b_connections,
            "a_connections": args.a_connections, "seconds_per_phase": args.seconds,
            "rounds": rounds, "summary": summary, "target": {"b_p99_noisy_vs_quiet": 1.5}}


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(float(np.median(values)), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def report(noisy: dict[str, Any]) -> None:
    rows = []
    for n, phases in enumerate(noisy["rounds"]):
        for phase, r in phases.items():
            rows.append({"round": n + 1, "phase": phase, "b_requests": r["b"]["requests"],
                         "b_errors": r["b"]["errors"], "b_p50_ms": r["b"]["p50_ms"], "b_p99_ms": r["b"]["p99_ms"],
                         "b_max_ms": r["b"]["max_ms"], "a_req_per_s": r.get("a_req_per_s"),
                         "a_admitted": r["a_admitted"], "a_429": r["a_rate_limited"],
                         "a_rows": r.get("a_rows_imported"), "a_retrains": r.get("a_retrain_succeeded")})
    print(table(rows, ["round", "phase", "b_requests", "b_errors", "b_p50_ms", "b_p99_ms", "b_max_ms",
                       "a_req_per_s", "a_admitted", "a_429", "a_rows", "a_retrains"]))
    s = noisy["summary"]
    ratios = ", ".join(f"{phase} x{v['median']} ({v['min']}-{v['max']})" for phase, v in s["b_p99_vs_quiet"].items())
    print(f"tenant B p99 quiet {s['b_p99_ms']['quiet']['median']} ms; against quiet: {ratios} (target x1.5); "
          f"A hammered: {s['a_requests_phase']['a_admitted_total']} admitted, "
          f"{s['a_requests_phase']['a_rate_limited_total']} refused (429)")
