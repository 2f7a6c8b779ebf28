"""Online simulation: shoppers with hidden tastes use the real server through HTTP.

The demo generator's latent world (each user's taste over categories, each item's
popularity within its category) produces the training data; ALS and popularity are
trained on it; the API runs in a uvicorn process on a fresh database. ALS is trained
with ``--als-params`` (default 16 factors, regularisation 1.0, 20 iterations): on this
sparse synthetic data the defaults (64 factors, 0.05) overfit, with held-out NDCG@10
0.041 against popularity's 0.075; these settings score 0.124 (chosen among four on that
held-out metric, the offline one a shop has, not on the simulation's ground truth). Then simulated
shoppers (drawn by the generator's activity) ask for ``/v1/users/{id}/recommendations``
and click each shown item with a probability given by their true taste for it and its
position; clicks are posted with the answer's ``recommendation_id`` (a share without it,
for the fallback rule). Experiments, all created through the admin API:

- an A/B test, ALS against popularity (the control), on half of the traffic: its report
  is read every ``--look-every`` exposures (peeking, which the report's always-valid test
  allows); the first look that declares ALS better at the 5% level is recorded, and the
  running lift with its interval is plotted;
- ``--aa-tests`` A/A tests (the active ALS version in both arms, each with its own salt)
  on disjoint slices of the other half: the share declared significant at the end, with
  its Clopper-Pearson interval, against the nominal 5%;
- for every experiment, the report's attributed counts against the simulator's own
  record of what it showed and clicked: they must be equal.

Usage: ``python bench/online.py [--users 20000 --items 2000 --interactions 100000]
[--requests 60000] [--aa-tests 40] [--look-every 1000] [--fallback-share 0.2]``
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import RESULTS, mongo_uri, table, write_result
from fastinsight.config import Settings
from fastinsight.services.data.demo import DemoSize, DemoWorld, demo_world, load_synthetic
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.experiments.statistics import share_interval
from fastinsight.services.training.pipeline import train
from serve import free_port

KEY, ADMIN_KEY = "online-key", "online-admin-key"
K = 10


class Shoppers:
    """Clicks by hidden taste and position; keeps the ground truth of what it did."""

    def __init__(self, world: DemoWorld, rng: np.random.Generator, base: float, fallback_share: float) -> None:
        self.world = world
        self.rng = rng
        self.base = base
        self.fallback_share = fallback_share
        self.truth: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)  # (experiment, arm)
        self.users: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.events = 0

    def click_probability(self, user: int, item: int, position: int) -> float:
        """True preference (1 for a uniform choice) with diminishing returns, damped by
        position as in a real list."""
        return min(0.9, self.base * self.world.preference(user, item) ** 0.5 / math.log2(position + 1))

    def react(self, user: int, answer: dict[str, Any]) -> list[dict[str, Any]]:
        key = (answer.get("experiment_id") or "", answer.get("variant") or "")
        truth = self.truth[key]
        truth["exposures"] += 1
        self.users[key].add(answer["user_id"])
        events, clicked = [], False
        for position, entry in enumerate(answer["items"], start=1):
            item = int(entry["item_id"].split("-")[1])
            if self.rng.random() >= self.click_probability(user, item, position):
                continue
            clicked = True
            self.events += 1
            event = {"user_id": answer["user_id"], "item_id": entry["item_id"], "type": "click",
                     "event_id": f"sim-{self.events}"}
            if self.rng.random() < self.fallback_share:
                truth["fallback"] += 1
            else:
                event["recommendation_id"] = answer["recommendation_id"]
                truth["by_id"] += 1
            truth["clicks"] += 1
            events.append(event)
        truth["clicked_exposures"] += clicked
        return events


def prepare(db_name: str, args: argparse.Namespace) -> tuple[DemoWorld, str, str]:
    size = DemoSize(users=args.users, items=args.items, interactions=args.interactions, seed=args.seed)
    settings = Settings(mongodb_uri=mongo_uri(), mongodb_db=db_name, api_key=KEY, admin_key=ADMIN_KEY,
                        _env_file=None)  # type: ignore[call-arg]
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri(), tz_aware=True)
    try:
        db = client[db_name]
        t0 = time.perf_counter()
        load_synthetic(IngestService(db, settings), size)
        print(f"demo data loaded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        popularity = train(db, settings, "popularity", activate=False, evaluate=False)["version"]
        als = train(db, settings, "als", args.als_params, evaluate=False)["version"]
    finally:
        client.close()
    return demo_world(size), str(als), str(popularity)


def create_experiments(http: httpx.Client, aa_tests: int) -> tuple[str, list[str]]:
    admin = {"X-API-Key": ADMIN_KEY}

    def create(body: dict[str, Any]) -> str:
        r = http.post("/v1/admin/experiments", json=body, headers=admin)
        r.raise_for_status()
        return str(r.json()["id"])

    ab = create({"name": "ALS vs popularity", "traffic": [0.0, 0.5], "control": "popularity",
                 "variants": [{"name": "popularity", "algorithm": "popularity", "share": 0.5},
                              {"name": "als", "algorithm": "als", "share": 0.5}]})
    width = 0.5 / aa_tests
    aa = [create({"name": f"A/A {n + 1}", "salt": f"aa-{n}", "traffic": [0.5 + n * width, 0.5 + (n + 1) * width],
                  "variants": [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}]})
          for n in range(aa_tests)]
    for experiment in [ab, *aa]:  # every arm loaded before traffic starts
        while not (http.get(f"/v1/admin/experiments/{experiment}", headers=admin).json().get("serving") or {}).get("ready"):
            time.sleep(0.2)
    return ab, aa


def simulate(http: httpx.Client, shoppers: Shoppers, ab: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--requests`` visits; the A/B report is read every ``--look-every`` of its exposures."""
    world = shoppers.world
    rng = shoppers.rng
    looks: list[dict[str, Any]] = []
    ab_exposures = 0
    visitors = rng.choice(len(world.activity), size=args.requests, p=world.activity)
    for n, user in enumerate(visitors.tolist()):
        answer = http.get(f"/v1/users/user-{user:06d}/recommendations", params={"k": K}).json()
        events = shoppers.react(user, answer)
        if events:
            r = http.post("/v1/interactions/batch", json={"interactions": events})
            r.raise_for_status()
            assert not r.json()["rejected"], r.text
        if answer.get("experiment_id") == ab:
            ab_exposures += 1
            if ab_exposures % args.look_every == 0:
                looks.append(look(http, ab, ab_exposures))
        if (n + 1) % 5000 == 0:
            print(f"{n + 1} visits, A/B exposures {ab_exposures}", file=sys.stderr)
    looks.append(look(http, ab, ab_exposures))
    return looks


def look(http: httpx.Client, experiment: str, exposures: int) -> dict[str, Any]:
    report = http.get(f"/v1/experiments/{experiment}/report", params={"fresh": True}).json()
    vs = next(a["vs_control"] for a in report["arms"] if not a["control"])
    return {"exposures": exposures, "lift": vs["lift"], "low": vs["low"], "high": vs["high"],
            "p_value": vs["p_value"], "p_value_fixed_horizon": vs["p_value_fixed_horizon"],
            "decision": report["decision"], "verdict": report["verdict"]}


def compare_with_truth(http: httpx.Client, shoppers: Shoppers, experiment: str) -> dict[str, Any]:
    report = http.get(f"/v1/experiments/{experiment}/report").json()
    rows, equal = [], True
    for arm in report["arms"]:
        truth = shoppers.truth[(experiment, arm["name"])]
        got = {"exposures": arm["exposures"], "users": arm["users"], "clicks": arm["clicks"],
               "clicked_exposures": arm["clicked_exposures"]}
        want = {"exposures": truth["exposures"], "users": len(shoppers.users[(experiment, arm["name"])]),
                "clicks": truth["clicks"], "clicked_exposures": truth["clicked_exposures"]}
        equal &= got == want
        rows.append({"arm": arm["name"], "report": got, "simulator": want})
    rules = {"by_id": sum(shoppers.truth[(experiment, a["name"])]["by_id"] for a in report["arms"]),
             "fallback": sum(shoppers.truth[(experiment, a["name"])]["fallback"] for a in report["arms"]),
             "unmatched_id": 0}
    equal &= rules == report["attribution"]
    return {"experiment": experiment, "equal": equal, "arms": rows, "attribution_report": report["attribution"],
            "attribution_simulator": rules, "report": report}


def plot(looks: list[dict[str, Any]], first: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["exposures"] for p in looks]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.fill_between(x, [p["low"] * 100 for p in looks], [p["high"] * 100 for p in looks], alpha=0.25,
                    label="always-valid 95% interval")
    ax.plot(x, [p["lift"] * 100 for p in looks], label="lift of ALS over popularity")
    ax.axhline(0, color="black", linewidth=0.8)
    if first is not None:
        ax.axvline(first["exposures"], color="green", linestyle="--",
                   label=f"first declared better ({first['exposures']:,} exposures)")
    ax.set_xlabel("A/B exposures (lists served)")
    ax.set_ylabel("click-through lift, %")
    ax.set_title("ALS vs popularity: the report at each look")
    ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _params(text: str) -> dict[str, float]:
    return {k: float(v) if "." in v else int(v) for k, v in (p.split("=") for p in text.split(",") if p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60_000, help="simulated visits in all")
    parser.add_argument("--aa-tests", type=int, default=40)
    parser.add_argument("--look-every", type=int, default=1000, help="A/B exposures between report reads")
    parser.add_argument("--fallback-share", type=float, default=0.2, help="clicks posted without the id")
    parser.add_argument("--click-base", type=float, default=0.005,
                        help="click probability at preference 1 (a uniform choice), position 1")
    parser.add_argument("--als-params", type=_params, default=_params("factors=16,regularization=1.0,iterations=20"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    name = f"bench_online_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri(), tz_aware=True)
    proc = None
    try:
        world, als, popularity = prepare(name, args)
        port = free_port()
        env = {**os.environ, "FASTINSIGHT_MONGODB_URI": mongo_uri(), "FASTINSIGHT_MONGODB_DB": name,
               "FASTINSIGHT_API_KEY": KEY, "FASTINSIGHT_ADMIN_KEY": ADMIN_KEY, "FASTINSIGHT_REPORT_CACHE_SECONDS": "3600",
               "FASTINSIGHT_LOG_DIR": "/tmp/fastinsight-bench-log", "FASTINSIGHT_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fastinsight.api.asgi:app", "--port", str(port),
                                 "--log-level", "warning", "--no-access-log"], env=env)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=120) as http:
            for _ in range(600):
                try:
                    if http.get("/health/ready").json().get("model_version") == als:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            ab, aa = create_experiments(http, args.aa_tests)
            shoppers = Shoppers(world, np.random.default_rng(args.seed + 100), args.click_base, args.fallback_share)
            started = time.perf_counter()
            looks = simulate(http, shoppers, ab, args)
            seconds = time.perf_counter() - started
            # One fresh pass reports every experiment (the A/A ones lie within the A/B's
            # time range); the A/A reports are then read from that pass.
            http.get(f"/v1/experiments/{ab}/report", params={"fresh": True}).raise_for_status()
            checks = [compare_with_truth(http, shoppers, e) for e in [ab, *aa]]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        client.drop_database(name)
        client.close()
    first = next((p for p in looks if p["decision"] == "better"), None)
    ab_report = checks[0]["report"]
    aa_reports = [c["report"] for c in checks[1:]]
    significant = sum(r["decision"] in {"better", "worse"} for r in aa_reports)
    fixed = sum(next(a["vs_control"] for a in r["arms"] if not a["control"])["p_value_fixed_horizon"] < 0.05
                for r in aa_reports)
    low, high = share_interval(significant, len(aa_reports))
    aa_rows = [{"test": r["name"], "users": sum(a["users"] for a in r["arms"]),
                "exposures": sum(a["exposures"] for a in r["arms"]), "decision": r["decision"],
                "p_value": next(a["vs_control"] for a in r["arms"] if not a["control"])["p_value"]}
               for r in aa_reports]
    out = {
        "benchmark": "online", "users": args.users, "items": args.items, "interactions": args.interactions,
        "requests": args.requests, "seconds": round(seconds, 1), "versions": {"als": als, "popularity": popularity},
        "click_model": f"min(0.9, {args.click_base} * preference^0.5 / log2(position + 1)), k={K}",
        "als_params": args.als_params,
        "ab": {"final": {k: v for k, v in looks[-1].items() if k != "verdict"}, "verdict": ab_report["verdict"],
               "arms": [{k: a[k] for k in ("name", "exposures", "users", "clicks", "clicked_exposures", "ctr")}
                        for a in ab_report["arms"]],
               "first_declared_better_at_exposures": first["exposures"] if first else None,
               "looks": looks},
        "aa": {"tests": len(aa_reports), "declared_significant": significant,
               "share": significant / len(aa_reports), "share_interval_95": [low, high], "nominal": 0.05,
               "fixed_horizon_read_once_significant": fixed, "tests_detail": aa_rows},
        "attribution_equals_ground_truth": all(c["equal"] for c in checks),
        "attribution": [{k: v for k, v in c.items() if k != "report"} for c in checks],
    }
    plot(looks, first, RESULTS / "plots" / "online_running_lift.png")
    write_result("online", out)
    print(table([{k: v for k, v in p.items() if k != "verdict"} for p in looks],
                ["exposures", "lift", "low", "high", "p_value", "decision"]))
    print(f"A/B: {ab_report['verdict']}")
    print(f"A/B first declared better after {first['exposures'] if first else 'never'} exposures")
    print(f"A/A: {significant}/{len(aa_reports)} declared significant ({significant / len(aa_reports):.1%}, "
          f"95% interval {low:.1%}-{high:.1%}; nominal 5%); fixed-horizon read once: {fixed}")
    print(f"attribution equals the simulator's ground truth: {out['attribution_equals_ground_truth']}")


if __name__ == "__main__":
    main()
