"""Serving inside an experiment, through HTTP: each user's arm answers (its model version
and rules), every answer carries a recommendation id, and the served list is recorded."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastinsight.services.experiments.assignment import assign
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.impressions import ImpressionRepository
from tests.conftest import services_of
from tests.experiments.conftest import Shop, experiment

USERS = [f"a{u}" for u in range(15)] + [f"b{u}" for u in range(15)]


def _impressions(shop: Shop) -> dict[str, dict[str, Any]]:
    services_of(shop.client).impressions.flush()
    stored = ImpressionRepository(shop.db).between(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    return {d["_id"]: d for d in stored}


def test_arms_answer_with_their_version_and_rules(shop: Shop) -> None:
    created = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        variants=[{"name": "knn", "share": 0.4}, {"name": "pop", "algorithm": "popularity", "share": 0.3},
                  {"name": "capped", "share": 0.3, "rules": {"max_per_category": 1}}],
        endpoints=["user", "similar", "session"])).json()
    seen: dict[str, str] = {}
    for user in USERS:
        body = shop.client.get(f"/v1/users/{user}/recommendations", params={"k": 4}).json()
        arm = ["knn", "pop", "capped"][assign(created["id"], [0.4, 0.3, 0.3], user)]
        assert body["variant"] == arm and body["experiment_id"] == created["id"]
        assert body["model_version"] == (shop.popularity if arm == "pop" else shop.knn)
        if arm == "capped":
            assert len({i["item_id"][0] for i in body["items"]}) == len(body["items"])  # one per category
        seen[body["recommendation_id"]] = user
    assert {assign(created["id"], [0.4, 0.3, 0.3], u) for u in USERS} == {0, 1, 2}  # every arm served
    # the same user gets the same arm on every request, and on similar/session too
    again = shop.client.get("/v1/users/a3/recommendations").json()
    similar = shop.client.get("/v1/items/a0/similar", params={"user_id": "a3"}).json()
    session = shop.client.post("/v1/recommendations/session",
                               json={"items": ["a1"], "user_id": "a3", "k": 2}).json()
    assert again["variant"] == similar["variant"] == session["variant"]
    assert session["user_id"] == "a3" and similar["recommendation_id"] != again["recommendation_id"]
    stored = _impressions(shop)
    assert {rid: d["user_id"] for rid, d in stored.items() if d["endpoint"] == "user"} == {
        **seen, again["recommendation_id"]: "a3"}
    doc = stored[again["recommendation_id"]]
    assert doc["items"] == [i["item_id"] for i in again["items"]]
    assert doc["variant"] == again["variant"] and doc["model_version"] == again["model_version"]
    assert stored[session["recommendation_id"]]["endpoint"] == "session"


def test_answers_outside_experiments_are_recorded_without_a_variant(shop: Shop) -> None:
    rec = shop.client.get("/v1/users/a1/recommendations", params={"k": 3, "offset": 1}).json()
    trending = shop.client.get("/v1/items/trending", params={"k": 2, "user_id": "a1"}).json()
    anonymous = shop.client.post("/v1/recommendations/session", json={"items": ["b1"]}).json()
    for body in (rec, trending, anonymous):
        assert len(body["recommendation_id"]) == 32 and body["variant"] is None
    stored = _impressions(shop)
    assert stored[rec["recommendation_id"]]["offset"] == 1
    assert stored[trending["recommendation_id"]]["user_id"] == "a1"
    assert stored[anonymous["recommendation_id"]]["user_id"] is None


def test_displayed_items_reported_by_clients(shop: Shop) -> None:
    rec = shop.client.get("/v1/users/a1/recommendations", params={"k": 4}).json()
    rid, items = rec["recommendation_id"], [i["item_id"] for i in rec["items"]]
    r = shop.client.post("/v1/impressions", json={"impressions": [
        {"recommendation_id": rid, "item_ids": items[:2]},
        {"recommendation_id": rid, "item_ids": items[:1]}]})
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 1}
    again = shop.client.post("/v1/impressions", json={"impressions": [{"recommendation_id": rid, "item_ids": []}]})
    assert again.json() == {"accepted": 0, "duplicates": 1}
    assert shop.db["impression_displays"].find_one({"_id": rid})["items"] == items[:2]
    assert shop.client.post("/v1/impressions", json={"impressions": []}).status_code == 422


def test_experiment_starts_at_its_start_time_without_a_poll(shop: Shop) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1.5)
    created = shop.admin("POST", "/v1/admin/experiments", json=experiment(start_at=start.isoformat())).json()
    assert created["status"] == "scheduled"
    assert shop.client.get("/v1/users/a1/recommendations").json()["variant"] is None
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.05)
    assert shop.client.get("/v1/users/a1/recommendations").json()["variant"] in {"A", "B"}


def test_erasing_a_user_erases_their_impressions(shop: Shop) -> None:
    shop.client.get("/v1/users/a2/recommendations")
    kept = shop.client.get("/v1/users/a3/recommendations").json()["recommendation_id"]
    assert shop.client.delete("/v1/users/a2").status_code == 200
    assert [d["user_id"] for d in _impressions(shop).values()] == ["a3"]
    assert kept in _impressions(shop)


def test_wiring_and_an_algorithm_arm_follows_retraining(shop: Shop) -> None:
    services = services_of(shop.client)
    assert services.experiment_runtime.models_changed in services.models.changed_listeners
    assert services.tracked.user_erased in services.catalog.user_erased_listeners
    assert services.impressions.flush in services.experiments.before_report
    created = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        variants=[{"name": "A", "algorithm": "popularity", "share": 0.5},
                  {"name": "B", "algorithm": "itemknn", "share": 0.5}])).json()
    b_user = next(u for u in USERS if assign(created["id"], [0.5, 0.5], u) == 1)
    assert shop.client.get(f"/v1/users/{b_user}/recommendations").json()["model_version"] == shop.knn
    newer = train(shop.db, shop.settings, "itemknn", evaluate=False)["version"]
    deadline = time.monotonic() + 20
    while shop.client.get(f"/v1/users/{b_user}/recommendations").json()["model_version"] != newer:
        assert time.monotonic() < deadline, "the itemknn arm did not follow the new version"
        time.sleep(0.2)
    status = shop.admin("GET", f"/v1/admin/experiments/{created['id']}").json()["serving"]
    assert status["versions"] == {"A": shop.popularity, "B": newer}


def test_rules_may_boost_categories_named_like_operators_or_paths(shop: Shop) -> None:
    """Category names are user text: ``$gt`` or ``a.b`` are legal on items, so they are
    legal in an arm's rules too (stored as pairs: MongoDB refuses them as field names)."""
    assert shop.client.patch("/v1/items/a5", json={"categories": ["$gt", "a.b"]}).status_code == 200
    boosts = {"$gt": 100.0, "a.b": 1.5, "$where": 2.0, "plain": 3.0}
    r = shop.admin("POST", "/v1/admin/experiments", json=experiment(
        # A fixed salt that puts two of the four users below in each arm (the default,
        # the random experiment id, put all four in one arm one run in eight).
        salt="boost-split-0",
        variants=[{"name": "boost", "share": 0.5, "rules": {"boost_categories": boosts}},
                  {"name": "plain", "share": 0.5}]))
    assert r.status_code == 201, r.text
    created = r.json()
    arms = {a["name"]: a for a in created["variants"]}
    assert arms["boost"]["rules"]["boost_categories"] == boosts
    got = shop.admin("GET", f"/v1/admin/experiments/{created['id']}").json()
    assert {a["name"]: a["rules"] for a in got["variants"]}["boost"]["boost_categories"] == boosts
    listed = shop.admin("GET", "/v1/admin/experiments").json()
    assert listed[0]["variants"][0]["rules"]["boost_categories"] == boosts
    raw = shop.db["experiments"].find_one({"_id": created["id"]})
    assert raw is not None and {"k": "$gt", "v": 100.0} in raw["arms"][0]["rules"]["boost_categories"]
    # a0-like users (they saw a0..a2) get a5 first only in the boosted arm.
    firsts = {}
    for user in ("a0", "a4", "a8", "a12"):
        body = shop.client.get(f"/v1/users/{user}/recommendations", params={"k": 3}).json()
        firsts[body["variant"], user] = body["items"][0]["item_id"]
    assert {first for (arm, _), first in firsts.items() if arm == "boost"} <= {"a5"}
    assert {first for (arm, _), first in firsts.items() if arm == "plain"} <= {"a3"}
    assert {arm for arm, _ in firsts} == {"boost", "plain"}, firsts
    renamed = shop.admin("PATCH", f"/v1/admin/experiments/{created['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    got = shop.admin("GET", f"/v1/admin/experiments/{created['id']}").json()
    assert got["name"] == "renamed" and got["variants"][0]["rules"]["boost_categories"] == boosts
