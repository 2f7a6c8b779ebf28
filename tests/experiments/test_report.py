"""Reports against counts and statistics computed by hand from rows inserted directly."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from fastinsight.storage.mongo.interactions import interaction_document
from tests.experiments.conftest import Shop, experiment
from tests.experiments.test_statistics import mixture_lambda


def _impression(rid: str, user: str, arm: str, ts: datetime, exp_id: str, version: str = "v1") -> dict[str, Any]:
    return {"_id": rid, "user_id": user, "endpoint": "user", "items": ["i1", "i2", "i3"], "offset": 0,
            "model_version": version, "experiment_id": exp_id, "variant": arm, "ts": ts}


def _by_hand(clicked: np.ndarray, shown: np.ndarray) -> tuple[float, float]:
    r = clicked.sum() / shown.sum()
    n = len(shown)
    var = (np.var(clicked, ddof=1) - 2 * r * np.cov(clicked, shown)[0, 1] + r * r * np.var(shown, ddof=1)) \
        / (n * shown.mean() ** 2)
    return float(r), float(var)


def test_report_matches_hand_computed_counts(shop: Shop) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)
    exp = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        start_at=start.isoformat(), min_detectable_lift=0.2)).json()
    impressions, events = [], []
    per_user: dict[str, dict[str, list[float]]] = {"A": {"x": [], "y": [], "v": []},
                                                   "B": {"x": [], "y": [], "v": []}}
    for arm, every in (("A", 4), ("B", 2)):
        for n in range(40):
            user = f"u{arm}{n}"
            shows = 1 + n % 3
            for s in range(shows):
                ts = start + timedelta(minutes=5 + n + 30 * s)
                impressions.append(_impression(f"{user}-{s}", user, arm, ts, exp["id"]))
            clicked = n % every == 0
            value = 0.0
            if clicked:  # two clicks on the first list, one purchase on the last for some
                first = start + timedelta(minutes=6 + n)
                events.append(interaction_document(user, "i1", "click", None, first, None, f"{user}-0"))
                events.append(interaction_document(user, "i2", "view", None, first + timedelta(seconds=1),
                                                   None, f"{user}-0"))
                if shows > 1 and n % 3 == 2:
                    value = 7.5
                    events.append(interaction_document(user, "i3", "purchase", value,
                                                       start + timedelta(minutes=6 + n + 30), None, None))
            per_user[arm]["x"].append(shows)
            per_user[arm]["y"].append((1 if clicked else 0) + (1 if value else 0))
            per_user[arm]["v"].append(value)
    # a list the client reports as not displayed at all: no exposure, no credit
    impressions.append(_impression("hidden-list", "uA0", "A", start + timedelta(minutes=1), exp["id"]))
    shop.db["impression_displays"].insert_one({"_id": "hidden-list", "items": [], "received_at": datetime.now(UTC)})
    events.append(interaction_document("uA0", "i1", "click", None, start + timedelta(minutes=2), None,
                                       "hidden-list"))
    # lists of no experiment and events of other users are not counted
    impressions.append(_impression("other", "stranger", "A", start + timedelta(minutes=3), "exp-other"))
    events.append(interaction_document("stranger", "i1", "click", None, start + timedelta(minutes=4), None,
                                       None))
    shop.db["impressions"].insert_many(impressions)
    shop.db["interactions"].insert_many(events)

    report = shop.client.get(f"/v1/experiments/{exp['id']}/report").json()
    arms = {a["name"]: a for a in report["arms"]}
    for name in ("A", "B"):
        x, y, v = (np.asarray(per_user[name][k], dtype=float) for k in ("x", "y", "v"))
        arm = arms[name]
        assert arm["exposures"] == x.sum() and arm["users"] == 40
        assert arm["clicked_exposures"] == y.sum()
        clickers = int((y > 0).sum())
        assert arm["clicks"] == 2 * clickers + int((v > 0).sum())
        assert arm["conversions"] == int((v > 0).sum()) and arm["value"] == v.sum()
        r, var = _by_hand(y, x)
        assert math.isclose(arm["ctr"]["value"], r)
        n_eff = r * (1 - r) / var
        z = stats.norm.ppf(0.975)
        centre = (r + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
        assert math.isclose((arm["ctr"]["low"] + arm["ctr"]["high"]) / 2, centre, rel_tol=1e-9)
        assert math.isclose(arm["conversion_rate"]["value"], (v > 0).mean())
        assert math.isclose(arm["value_per_user"]["value"], v.mean())
        assert arm["model_versions"] == {"v1": x.sum()}
    # B against A on the log ratio, mSPRT mixing scales 1, 3, 9, 27 x log(1.2)
    (ra, va), (rb, vb) = (_by_hand(np.asarray(per_user[a]["y"], float), np.asarray(per_user[a]["x"], float))
                          for a in ("A", "B"))
    theta, var = math.log(rb / ra), vb / rb**2 + va / ra**2
    p = min(1.0, 1 / mixture_lambda(theta, var, math.log(1.2)))
    vs = arms["B"]["vs_control"]
    assert arms["A"]["vs_control"] is None and arms["A"]["control"] is True
    assert math.isclose(vs["lift"], rb / ra - 1) and math.isclose(vs["p_value"], p)
    # The fixed-horizon p-value: a permutation test over users (80 here), checked against
    # an independent run of 20,000 reassignments (the report's 2,000 have an error ~0.003).
    ys = np.concatenate([np.asarray(per_user[a]["y"], float) for a in ("A", "B")])
    xs = np.concatenate([np.asarray(per_user[a]["x"], float) for a in ("A", "B")])
    gap = abs(ys[40:].sum() / xs[40:].sum() - ys[:40].sum() / xs[:40].sum())
    rng = np.random.default_rng(5)
    orders = np.argsort(rng.random((20_000, 80)), axis=1)
    b, a = orders[:, 40:], orders[:, :40]
    gaps = np.abs(ys[b].sum(1) / xs[b].sum(1) - ys[a].sum(1) / xs[a].sum(1))
    assert abs(vs["p_value_fixed_horizon"] - np.mean(gaps >= gap - 1e-12)) < 0.015
    assert vs["significant"] == (p < 0.05)
    assert report["decision"] == ("better" if p < 0.05 else "no_difference_yet")
    assert report["srm"] == {"p_value": 1.0, "mismatch": False, "users": {"A": 40, "B": 40},
                             "expected_shares": {"A": 0.5, "B": 0.5}}
    assert report["attribution"]["by_id"] == sum(2 * int((np.asarray(per_user[a]["y"]) > 0).sum())
                                                 for a in ("A", "B"))
    assert report["attribution"]["fallback"] == sum(int((np.asarray(per_user[a]["v"]) > 0).sum())
                                                    for a in ("A", "B"))
    assert report["attribution"]["unmatched_id"] == 1  # the click on the list nobody saw
    assert "mSPRT" in report["method"] and report["verdict"]
    history = report["history"]
    assert 1 < len(history) <= 20 and history[-1]["exposures"] == sum(a["exposures"] for a in arms.values())
    assert [h["exposures"] for h in history] == sorted(h["exposures"] for h in history)


def test_not_enough_data_and_sample_ratio_mismatch(shop: Shop) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    exp = shop.admin("POST", "/v1/admin/experiments", json=experiment(start_at=start.isoformat())).json()
    path = f"/v1/experiments/{exp['id']}/report"
    empty = shop.client.get(path).json()
    assert empty["decision"] == "not_enough_data" and "Not enough data yet" in empty["verdict"]
    docs = [_impression(f"r{n}", f"u{n}", "A" if n < 300 else "B", start + timedelta(seconds=n), exp["id"])
            for n in range(400)]
    shop.db["impressions"].insert_many(docs)
    report = shop.client.get(path).json()
    assert report["srm"]["mismatch"] is True and report["decision"] == "sample_ratio_mismatch"
    assert "Sample ratio mismatch" in report["verdict"]


def test_online_click_through_by_version_and_day(shop: Shop) -> None:
    now = datetime.now(UTC)
    today, yesterday = now - timedelta(minutes=5), now - timedelta(days=1)
    docs = [_impression("t1", "u1", "A", today, "x", "v2"), _impression("t2", "u2", "A", today, "x", "v2"),
            _impression("y1", "u1", "A", yesterday, "x", "v1")]
    shop.db["impressions"].insert_many(docs)
    shop.db["interactions"].insert_many([
        interaction_document("u1", "i2", "click", None, today + timedelta(seconds=5), None, "t1"),
        interaction_document("u1", "i3", "purchase", 3.0, yesterday + timedelta(seconds=5), None, None)])
    rows = shop.client.get("/v1/insights/online", params={"days": 3}).json()["rows"]
    got = {(r["day"], r["model_version"]): (r["exposures"], r["clicked_exposures"], r["conversions"])
           for r in rows}
    assert got[(today.strftime("%Y-%m-%d"), "v2")] == (2, 1, 0)
    assert got[(yesterday.strftime("%Y-%m-%d"), "v1")] == (1, 1, 1)
    assert shop.client.get("/v1/insights/online", params={"days": 0}).status_code == 422


def test_one_pass_for_several_experiments_gives_each_its_own_report(shop: Shop) -> None:
    from fastinsight.services.experiments.definition import Experiment
    from fastinsight.services.experiments.report import build_reports
    from fastinsight.storage.mongo.impressions import ImpressionRepository

    start = datetime.now(UTC) - timedelta(hours=5)
    short = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        start_at=start.isoformat(), traffic=[0, 0.5], attribution_window_seconds=3600)).json()
    long = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        start_at=start.isoformat(), traffic=[0.5, 1])).json()
    for exp in (short, long):
        shown = start + timedelta(minutes=10)
        shop.db["impressions"].insert_one(_impression(f"{exp['id']}-1", f"user-{exp['id']}", "A", shown, exp["id"]))
        shop.db["interactions"].insert_one(interaction_document(  # two hours later
            f"user-{exp['id']}", "i1", "click", None, shown + timedelta(hours=2), None, f"{exp['id']}-1"))
    both = shop.client.get(f"/v1/experiments/{short['id']}/report").json()
    assert both["attribution"]["by_id"] == 0 and both["attribution"]["unmatched_id"] == 1  # outside 1 h
    other = shop.client.get(f"/v1/experiments/{long['id']}/report").json()
    assert other["attribution"]["by_id"] == 1
    weights = frozenset({"click", "view", "purchase"})
    repo = ImpressionRepository(shop.db)
    for exp in (short, long):
        alone = build_reports([Experiment.from_doc(shop.db["experiments"].find_one({"_id": exp["id"]}))], repo,
                              creditable=weights, conversion_types=frozenset({"purchase"}))[exp["id"]]
        together = build_reports([Experiment.from_doc(d) for d in shop.db["experiments"].find({})], repo,
                                 creditable=weights, conversion_types=frozenset({"purchase"}))[exp["id"]]
        assert alone.model_dump(exclude={"computed_at", "end"}) == together.model_dump(exclude={"computed_at", "end"})


def test_reports_are_cached_unless_fresh_is_asked(shop: Shop) -> None:
    from fastinsight.services.experiments.service import ExperimentService

    start = datetime.now(UTC) - timedelta(hours=1)
    exp = shop.admin("POST", "/v1/admin/experiments", json=experiment(start_at=start.isoformat())).json()
    svc = ExperimentService(shop.db, shop.settings.model_copy(update={"report_cache_seconds": 600}))
    assert sum(a.exposures for a in svc.report(exp["id"]).arms) == 0
    shop.db["impressions"].insert_one(_impression("r1", "u1", "A", start + timedelta(minutes=1), exp["id"]))
    assert sum(a.exposures for a in svc.report(exp["id"]).arms) == 0  # cached
    assert sum(a.exposures for a in svc.report(exp["id"], fresh=True).arms) == 1
    assert shop.client.get(f"/v1/experiments/{exp['id']}/report", params={"fresh": True}).json()["arms"][0][
        "exposures"] == 1
