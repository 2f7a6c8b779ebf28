"""Serving through the HNSW retrieval index gives the lists exact scoring gives.

The catalogue here is tiny, so ``ann_exact_max_items=0`` forces the graph; the
answers must match a process that scores every item. Both processes leave the
version's candidate pools aside (``live_pools=False``, tested in ``test_live_pools``).
"""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.serving.exclusions import NeverShow, user_history
from fastinsight.services.serving.recommend import Filters
from fastinsight.services.training.pipeline import train
from tests.api.test_recommend import seed
from tests.conftest import API_KEY, services_of

QUERIES: list[dict[str, object]] = [
    {"k": 5}, {"k": 3, "offset": 2}, {"k": 6, "exclude_categories": ["beta"]},
    {"k": 4, "exclude": ["a3", "b4"]}, {"k": 12, "exclude_seen": "false"},
]


def test_retrieval_index_matches_exact_scoring(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    seed(db, settings)
    train(db, settings, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    settings = settings.model_copy(update={"live_pools": False})
    graph = settings.model_copy(update={"ann_exact_max_items": 0})
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as exact, \
            TestClient(create_app(graph), headers={"X-API-Key": API_KEY}) as approx:
        svc = services_of(approx).recommend
        bundle = svc.manager.current
        assert bundle.retrieval is not None and not bundle.retrieval.exact
        history = user_history(bundle, bundle.user_index["a1"], svc.realtime.events("a1"), svc.settings)
        never = NeverShow.for_user(svc._view(bundle), history, exclude_seen=True, exclude=())
        assert svc._retrieve(bundle, history.row, 5, never, Filters()) is not None
        # An event posted to one process reaches the other through its poller.
        assert exact.post("/v1/interactions", json={
            "user_id": "a5", "item_id": "b1", "type": "purchase"}).status_code == 201
        deadline = time.monotonic() + 5
        while not svc.realtime.events("a5") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert svc.realtime.events("a5"), "the event never reached the second process"
        users = [f"{g}{n}" for g in "ab" for n in range(12)]
        for user in users:
            for params in QUERIES:
                want = exact.get(f"/v1/users/{user}/recommendations", params=params)
                got = approx.get(f"/v1/users/{user}/recommendations", params=params)
                assert want.status_code == got.status_code == 200, got.text
                assert [i["item_id"] for i in got.json()["items"]] == \
                    [i["item_id"] for i in want.json()["items"]], (user, params)


def test_business_rules_pin_cap_and_boost(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    seed(db, settings)
    train(db, settings, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    rules = settings.model_copy(update={
        "ann_exact_max_items": 0, "pinned_items": ["b5"], "max_per_category": 2})
    with TestClient(create_app(rules), headers={"X-API-Key": API_KEY}) as client:
        items = client.get("/v1/users/a0/recommendations", params={"k": 6}).json()["items"]
        assert items[0]["item_id"] == "b5" and items[0]["reason"] == "pinned"
        cats = [i["item_id"][0] for i in items]
        assert cats.count("a") <= 2 and cats.count("b") <= 2, cats
        excluded = client.get("/v1/users/a0/recommendations",
                              params={"k": 6, "exclude": ["b5"]}).json()["items"]
        assert "b5" not in [i["item_id"] for i in excluded]
    boost = settings.model_copy(update={"boost_categories": {"beta": 50.0}})
    with TestClient(create_app(boost), headers={"X-API-Key": API_KEY}) as client:
        plain = settings.model_copy()
        first = client.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
        assert first[0]["item_id"].startswith("b"), first
    with TestClient(create_app(plain), headers={"X-API-Key": API_KEY}) as client:
        first = client.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
        assert first[0]["item_id"] == "a3", first
