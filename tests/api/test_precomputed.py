"""Serving from the training-time candidate lists gives the live answer, without scoring.

Two processes on one database: one serves from the lists, the other has them dropped
and scores every request live. Every answer (ids, scores, reasons) must be the same;
the first must not fold users in or search the item index to give it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.serving.bundle import ModelBundle
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.models import ModelVersionRepository
from tests.api.test_recommend import seed
from tests.api.test_retrieval import QUERIES
from tests.conftest import API_KEY, services_of

USERS = [f"{g}{n}" for g in "ab" for n in range(12)] + ["newcomer"]


def _same(got: list[dict[str, object]], want: list[dict[str, object]]) -> bool:
    """Same items and reasons in the same order; scores equal up to float32 rounding (a
    batch and a single product may sum in a different order)."""
    return [(i["item_id"], i["reason"]) for i in got] == [(i["item_id"], i["reason"]) for i in want] \
        and all(abs(float(a["score"]) - float(b["score"])) < 1e-5  # type: ignore[arg-type]
                for a, b in zip(got, want, strict=True))


def _no_live_scoring(*_: object, **__: object) -> None:
    raise AssertionError("a listed answer must not score live")


def test_listed_answers_equal_live_answers(
    db: Database[dict[str, object]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db, settings)
    doc = train(db, settings, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    assert doc["candidates"]["users"] == 24 and doc["candidates"]["size"] == 12  # capped: 12 items
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as listed, \
            TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as live:
        svc = services_of(listed).recommend
        assert svc.manager.current.candidates is not None
        services_of(live).recommend.manager.current.candidates = None

        with monkeypatch.context() as patch:
            patch.setattr(svc, "_retrieve", _no_live_scoring)
            patch.setattr(svc.manager.current.model, "query_vector", _no_live_scoring)
            patch.setattr(svc.manager.current.model, "score_history", _no_live_scoring)
            for user in USERS:
                for params in ({"k": 5}, {"k": 3, "offset": 2}, {"k": 4, "exclude": ["a3", "b4"]}):
                    got = listed.get(f"/v1/users/{user}/recommendations", params=params)
                    assert got.status_code == 200, got.text
            top = listed.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
            assert top[0]["item_id"] == "a3" and top[0]["reason"].startswith("similar to Alpha")

        for user in USERS:
            for params in QUERIES:
                want = live.get(f"/v1/users/{user}/recommendations", params=params)
                got = listed.get(f"/v1/users/{user}/recommendations", params=params)
                assert want.status_code == got.status_code == 200, got.text
                assert _same(got.json()["items"], want.json()["items"]), (user, params)

        # A posted event makes the user's history differ from the training row: the
        # lists no longer apply, and the answer changes at once.
        assert listed.post("/v1/interactions", json={
            "user_id": "a0", "item_id": "a3", "type": "purchase"}).status_code == 201
        after = listed.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
        assert "a3" not in [i["item_id"] for i in after]
        live_svc = services_of(live).recommend
        deadline = time.monotonic() + 5
        while not live_svc.realtime.events("a0") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _same(live.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"], after)


def test_items_added_after_training_keep_the_lists_as_candidates(
    db: Database[dict[str, object]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new item may enter by content, so the walk is skipped; the live path then takes
    the lists as its candidates instead of searching the index, with the same answers."""
    seed(db, settings)
    train(db, settings, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as listed, \
            TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as live:
        live_svc = services_of(live).recommend
        live_svc.manager.current.candidates = None
        assert listed.post("/v1/items", json={"item_id": "a-new", "title": "Alpha new",
                                              "categories": ["alpha"]}).status_code == 201
        live_svc.manager.refresh_changed_items()  # the other process reads the change feed
        svc = services_of(listed).recommend
        assert svc._view(svc.manager.current).cold
        monkeypatch.setattr(svc, "_retrieve", _no_live_scoring)
        seen_new = False
        for user in USERS:
            for params in ({"k": 5}, {"k": 12}, {"k": 4, "exclude": ["a3"]}):
                got = listed.get(f"/v1/users/{user}/recommendations", params=params).json()["items"]
                want = live.get(f"/v1/users/{user}/recommendations", params=params).json()["items"]
                assert _same(got, want), (user, params)
                seen_new |= "a-new" in [i["item_id"] for i in got]
        assert seen_new  # the new item did reach some lists, by its category


def test_lists_are_sanity_checked_before_activation(
    db: Database[dict[str, object]], settings: Settings, tmp_path: Path
) -> None:
    seed(db, settings)
    doc = train(db, settings, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    bundle = ModelBundle.load(ModelVersionRepository(db), doc["version"], tmp_path, build_index=False)
    assert bundle.candidates is not None and bundle.sanity_problem() is None
    with pytest.raises(ValueError, match="read-only"):  # served arrays are never written
        bundle.candidates.ids[3, 0] = len(bundle.item_ids)
    ids = np.array(bundle.candidates.ids)
    ids[3, 0] = len(bundle.item_ids)
    bundle.candidates.ids = ids
    assert bundle.sanity_problem() == "candidate lists name items outside the catalogue"


def test_lists_can_be_turned_off(db: Database[dict[str, object]], settings: Settings) -> None:
    seed(db, settings)
    off = settings.model_copy(update={"candidate_cache_size": 0})
    doc = train(db, off, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    assert doc["candidates"] is None
    with TestClient(create_app(off), headers={"X-API-Key": API_KEY}) as client:
        assert services_of(client).recommend.manager.current.candidates is None
        items = client.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
        assert items[0]["item_id"] == "a3"


def test_query_is_validated_and_documented(db: Database[dict[str, object]], settings: Settings) -> None:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        path = "/v1/users/a0/recommendations"
        for params, field in (({"exclude_seen": "maybe"}, "query.exclude_seen"),
                              ({"offset": "-1"}, "query.offset"), ({"k": "ten"}, "query.k"),
                              ({"exclude": [f"x{n}" for n in range(501)]}, "query.exclude")):
            r = client.get(path, params=params)
            assert r.status_code == 422, r.text
            assert r.json()["details"][0]["field"] == field and r.json()["request_id"]
        long_id = client.get(f"/v1/users/{'u' * 129}/recommendations")
        assert long_id.status_code == 422 and long_id.json()["details"][0]["field"] == "user_id"
        assert client.get("/v1/users/nobody/recommendations").status_code == 404
        assert client.get(path, headers={"X-API-Key": ""}).status_code == 401
        assert client.get(path, params={"unknown": "1"}).status_code == 200
        ids = [i["item_id"] for i in client.get(
            path, params={"k": 12, "exclude_seen": "false", "exclude_categories": ["beta"]}).json()["items"]]
        assert ids and all(i.startswith("a") for i in ids) and "a0" in ids
        operation = client.get("/openapi.json").json()["paths"]["/v1/users/{user_id}/recommendations"]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert set(params) == {"user_id", "k", "offset", "exclude_seen", "categories",
                               "exclude_categories", "exclude"}
        assert params["k"]["in"] == "query" and params["k"]["schema"]["maximum"] == 500
        assert params["user_id"]["in"] == "path" and params["user_id"]["required"]
        assert params["exclude"]["schema"]["type"] == "array"
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/RecommendationsOut")
        assert operation["security"]


def test_category_cap_is_applied_while_walking_the_list(
    db: Database[dict[str, object]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db, settings)
    capped = settings.model_copy(update={"max_per_category": 1})
    train(db, capped, "als", {"factors": 8, "iterations": 15}, evaluate=False)
    with TestClient(create_app(capped), headers={"X-API-Key": API_KEY}) as listed, \
            TestClient(create_app(capped), headers={"X-API-Key": API_KEY}) as live:
        services_of(live).recommend.manager.current.candidates = None
        svc = services_of(listed).recommend
        with monkeypatch.context() as patch:
            patch.setattr(svc, "_retrieve", _no_live_scoring)
            patch.setattr(svc.manager.current.model, "query_vector", _no_live_scoring)
            got = listed.get("/v1/users/a0/recommendations", params={"k": 2}).json()["items"]
        assert [i["item_id"][0] for i in got] == ["a", "b"]  # one per category, best first
        assert _same(got, live.get("/v1/users/a0/recommendations", params={"k": 2}).json()["items"])
        # Three places cannot be filled with one item per category: both give two.
        three = listed.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"]
        assert _same(three, live.get("/v1/users/a0/recommendations", params={"k": 3}).json()["items"])
        assert len(three) == 2
