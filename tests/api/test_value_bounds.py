"""An interaction's ``value`` is bounded at the edge, and values stored before the bound
cannot break training or serving.

A rating of 1e39 used to be stored, then overflow float32 in the models (ALS's solve,
EASE's Gram matrix) and in the live-history merge: every training run failed and the
user's recommendations answered 500.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.recsys.matrix import MAX_RATING_FACTOR, build_matrix
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.interactions import interaction_document
from tests.api.test_recommend import seed
from tests.conftest import API_KEY

Db = Database[dict[str, object]]
JSON = {"Content-Type": "application/json"}


def _rating(value: str, user: str = "a0", item: str = "a1") -> str:
    return f'{{"user_id": "{user}", "item_id": "{item}", "type": "rating", "value": {value}}}'


@pytest.mark.parametrize("value", ["1e13", "-1e13", "1e39", "1.7976931348623157e308"])
def test_values_beyond_1e12_are_refused_everywhere(client: TestClient, db: Db, value: str) -> None:
    assert client.post("/v1/items", json={"item_id": "a1"}).status_code == 201
    single = client.post("/v1/interactions", content=_rating(value).encode(), headers=JSON)
    assert single.status_code == 422, single.text
    assert single.json()["details"][0]["field"] == "value"
    batch = client.post("/v1/interactions/batch", headers=JSON,
                        content=f'{{"interactions": [{_rating(value)}, {_rating("4")}]}}'.encode())
    assert batch.status_code == 200 and batch.json()["inserted"] == 1
    assert [row["row"] for row in batch.json()["rejected"]] == [1]
    beacon = client.post("/v1/beacon", headers={"Content-Type": "text/plain", "X-API-Key": ""},
                         content=f'{{"key": "{API_KEY}", "interactions": [{_rating(value)}]}}'.encode())
    assert beacon.status_code == 200 and beacon.json()["inserted"] == 0
    csv = f"user_id,item_id,type,value\na0,a1,rating,{value}\na0,a1,rating,3\n"
    imported = client.post("/v1/interactions/import", content=csv.encode(),
                           headers={"Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    assert imported.json()["inserted"] == 1 and imported.json()["rejected"][0]["row"] == 1
    stored = [d["value"] for d in db["interactions"].find({}, {"value": 1})]
    assert sorted(stored) == [3.0, 4.0]  # type: ignore[type-var]


def test_the_bound_itself_is_accepted(client: TestClient) -> None:
    assert client.post("/v1/items", json={"item_id": "a1"}).status_code == 201
    for value in ("1e12", "-1e12", "999999999999.5"):
        r = client.post("/v1/interactions", content=_rating(value).encode(), headers=JSON)
        assert r.status_code == 201, (value, r.text)


def test_the_rating_factor_is_clipped_when_the_matrix_is_built() -> None:
    now = datetime.now(UTC)
    records = [("u", "big", "rating", 1e39, now), ("u", "low", "rating", -1e39, now),
               ("u", "ok", "rating", 5.0, now), ("v", "ok", "rating", 2.5, now)]
    m = build_matrix(records, {"rating": 3.0})
    weights = dict(zip(m.item_ids.tolist(), m.matrix.toarray()[0].tolist(), strict=True))
    assert weights == {"big": 3.0 * MAX_RATING_FACTOR, "low": 0.0, "ok": 3.0}
    assert m.negatives.toarray()[0].tolist() == [0.0, 1.0, 0.0]  # "low": a dislike
    assert m.matrix.toarray()[1].tolist() == [0.0, 0.0, 1.5]


@pytest.fixture()
def stored_before_the_bound(db: Db, settings: Settings) -> Iterator[Settings]:
    """The known-answer catalogue, plus absurd ratings written before the bound existed."""
    seed(db, settings)
    now = datetime.now(UTC)
    db["interactions"].insert_many([
        interaction_document("a0", "a3", "rating", 1e39, now, "huge-1"),
        interaction_document("b1", "b5", "rating", 1.7e308, now, "huge-2"),
        interaction_document("b2", "b5", "rating", -1e300, now, "huge-3"),
    ])
    yield settings


@pytest.mark.parametrize("algorithm", ["als", "ease", "edlae", "itemknn"])
def test_models_train_and_serve_over_absurd_stored_ratings(
    db: Db, stored_before_the_bound: Settings, algorithm: str
) -> None:
    settings = stored_before_the_bound
    train(db, settings, algorithm, evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        for user in ("a0", "b1", "b2", "a5"):
            r = client.get(f"/v1/users/{user}/recommendations", params={"k": 4})
            assert r.status_code == 200, r.text
            scores = [i["score"] for i in r.json()["items"]]
            assert scores and all(isinstance(s, float) for s in scores)
        # An absurd rating among the events since training (the live-history merge).
        now = datetime.now(UTC)
        doc = interaction_document("a5", "a5", "rating", 1e39, now, "huge-live")
        db["interactions"].insert_one(dict(doc))
        db["fresh_interactions"].insert_one({**doc, "ingested_at": now})
        deadline = time.monotonic() + 20
        while True:  # until the serving process has read the event, which excludes a5
            r = client.get("/v1/users/a5/recommendations", params={"k": 4})
            assert r.status_code == 200, r.text
            json.dumps(r.json(), allow_nan=False)
            if "a5" not in [i["item_id"] for i in r.json()["items"]]:
                break
            assert time.monotonic() < deadline, "the live event never reached serving"
            time.sleep(0.05)


@pytest.mark.parametrize("weights", [{"view": 1e30}, {"view": float("inf")}, {"view": float("nan")},
                                     {"view": 1.0, "dislike": -1001.0}])
def test_configured_weights_are_bounded_too(weights: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="between -1000 and 1000"):
        Settings(mongodb_uri="mongodb://127.0.0.1:1/", interaction_weights=weights)
    Settings(mongodb_uri="mongodb://127.0.0.1:1/", interaction_weights={"view": 1000, "dislike": -1000})
