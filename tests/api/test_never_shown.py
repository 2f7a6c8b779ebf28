"""What a user must never be shown, through HTTP against the real database.

The items a user interacted with (the trained history and the events posted since,
including items the served version has no column for), disliked, hidden or excluded by
the caller form one set per request (``services/serving/exclusions.py``). Each test
here reaches one path that can add an item to an answer: the training-time lists, live
ranking, pinned items, the content fallback for items added after training (by
category, and by the two-tower item tower), the trending fill for users without
history, and session recommendations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.training.pipeline import train
from tests.api.test_recommend import _ids, seed
from tests.conftest import API_KEY

NEW_ITEM = {"item_id": "a-new", "title": "Alpha novelty", "categories": ["alpha"], "tags": ["red"]}


def _recs(client: TestClient, user: str, **params: object) -> list[str]:
    r = client.get(f"/v1/users/{user}/recommendations", params={"k": 12, **params})
    assert r.status_code == 200, r.text
    return _ids(r)


def _event(client: TestClient, user: str, item: str, kind: str) -> None:
    r = client.post("/v1/interactions", json={"user_id": user, "item_id": item, "type": kind})
    assert r.status_code == 201, r.text


@pytest.fixture()
def trained(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        yield client


@pytest.fixture()
def itemknn(trained: TestClient) -> TestClient:
    """With ``a-new``, an alpha item added after training."""
    assert trained.post("/v1/items", json=NEW_ITEM).status_code == 201
    return trained


def test_a_new_item_the_user_bought_or_disliked_is_never_recommended(
    itemknn: TestClient, settings: Settings
) -> None:
    # The content fallback offers the new item to alpha users...
    assert "a-new" in _recs(itemknn, "a2")
    # ...but not to one who bought it, nor to one who disliked it (even with seen items
    # allowed back), nor when the caller excludes it.
    _event(itemknn, "a1", "a-new", "purchase")
    assert "a-new" not in _recs(itemknn, "a1")
    assert "a-new" in _recs(itemknn, "a1", exclude_seen=False)  # the caller asked for seen items
    _event(itemknn, "a3", "a-new", "dislike")
    assert "a-new" not in _recs(itemknn, "a3")
    assert "a-new" not in _recs(itemknn, "a3", exclude_seen=False)
    assert "a-new" not in _recs(itemknn, "a2", exclude=["a-new"])
    # Hidden after its creation: nobody gets it.
    assert itemknn.patch("/v1/items/a-new", json={"hidden": True}).status_code == 200
    assert "a-new" not in _recs(itemknn, "a2")


def test_a_replica_started_after_the_purchase_excludes_it_too(
    itemknn: TestClient, settings: Settings
) -> None:
    _event(itemknn, "a1", "a-new", "purchase")
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as replica:
        assert "a-new" in _recs(replica, "a2")
        assert "a-new" not in _recs(replica, "a1")


def test_live_ranking_and_pinned_items_skip_what_the_user_bought(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    pinned = settings.model_copy(update={"pinned_items": ["b5", "a1"]})
    with TestClient(create_app(pinned), headers={"X-API-Key": API_KEY}) as client:
        first = client.get("/v1/users/a0/recommendations", params={"k": 12}).json()["items"]
        assert first[0] == {"item_id": "b5", "score": first[0]["score"], "reason": "pinned"}
        assert "a1" not in [i["item_id"] for i in first]  # in a0's trained history
        _event(client, "a0", "b5", "purchase")
        assert "b5" not in _recs(client, "a0")
        _event(client, "a2", "b5", "dislike")
        assert "b5" not in _recs(client, "a2", exclude_seen=False)
        assert "b5" not in _recs(client, "a4", exclude=["b5"])


def test_users_without_history_never_get_what_they_disliked_or_excluded(itemknn: TestClient) -> None:
    top = _recs(itemknn, "newcomer")[0]
    assert top in {"a0", "b0"}
    assert top not in _recs(itemknn, "newcomer", exclude=[top])  # trending order, walked
    _event(itemknn, "newcomer", top, "dislike")
    assert top not in _recs(itemknn, "newcomer")  # trending, ranked live
    _event(itemknn, "newcomer", "a-new", "view")
    assert "a-new" not in _recs(itemknn, "newcomer")


def test_lists_skip_caller_exclusions_and_hidden_items(trained: TestClient) -> None:
    """Trained users without events are answered from the training-time lists."""
    assert _recs(trained, "a0", k=1) == ["a3"]
    assert "a3" not in _recs(trained, "a0", exclude=["a3"])
    trained.patch("/v1/items/a3", json={"hidden": True})
    assert "a3" not in _recs(trained, "a0")
    assert "a3" not in _recs(trained, "newcomer", k=12)


def test_session_recommendations_skip_the_session_and_excluded_items(itemknn: TestClient) -> None:
    assert itemknn.post("/v1/items", json={**NEW_ITEM, "item_id": "a-new2"}).status_code == 201

    def session(items: list[str], exclude: list[str]) -> list[str]:
        r = itemknn.post("/v1/recommendations/session", json={"items": items, "k": 12, "exclude": exclude})
        assert r.status_code == 200, r.text
        return _ids(r)

    offered = session(["a1", "a2"], [])
    assert {"a-new", "a-new2"} <= set(offered)
    got = session(["a1", "a2", "a-new"], ["a-new2", "a4"])
    assert not {"a1", "a2", "a-new", "a-new2", "a4"} & set(got)


def test_two_tower_never_recommends_a_new_item_the_user_bought_or_disliked(
    db: Database[dict[str, object]], settings: Settings
) -> None:
    seed(db, settings)
    train(db, settings, "two_tower", {"dim": 8, "epochs": 40, "batch_size": 32, "learning_rate": 0.02,
                                      "validation_fraction": 0.0}, evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        assert client.post("/v1/items", json=NEW_ITEM).status_code == 201
        offered = client.get("/v1/users/a2/recommendations", params={"k": 12}).json()["items"]
        assert [i["reason"] for i in offered if i["item_id"] == "a-new"] == ["new item, matches your taste"]
        _event(client, "a1", "a-new", "purchase")
        assert "a-new" not in _recs(client, "a1")
        _event(client, "a3", "a-new", "dislike")
        assert "a-new" not in _recs(client, "a3", exclude_seen=False)
        session = client.post("/v1/recommendations/session", json={"items": ["a1", "a-new"], "k": 12})
        assert "a-new" not in _ids(session)
