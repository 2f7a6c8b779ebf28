"""Erased users and deleted items leave every answer, through HTTP on a trained model.

An erased user's trained row stays in the model version until the next training run;
like recommendations, audiences and segment member lists must not list them, and an id
created again starts cold there too (docs/operations.md). A deleted item is no query
source: its similar items and its audience are a 404, as for an item that never existed,
and a session naming it is answered from its other items.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.training.pipeline import train
from tests.api.test_recommend import seed
from tests.conftest import ADMIN_KEY, API_KEY

ADMIN = {"X-API-Key": ADMIN_KEY}


def serve_with_insights(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    """ALS trained on what ``db`` holds, served, with insights refreshed and two segments."""
    train(db, settings, "als", evaluate=False)
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        assert client.post("/v1/admin/insights/refresh", params={"wait": True}, headers=ADMIN).status_code == 200
        r = client.post("/v1/admin/segments/rebuild", params={"k": 2}, headers=ADMIN)
        assert r.status_code == 200, r.text
        yield client


@pytest.fixture()
def trained(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    seed(db, settings)
    yield from serve_with_insights(db, settings)


def _audience(client: TestClient, path: str) -> list[str]:
    r = client.get(path, params={"k": 50, "exclude_seen": False})
    assert r.status_code == 200, r.text
    return [u["user_id"] for u in r.json()["users"]]


def _members(client: TestClient) -> list[str]:
    members: list[str] = []
    for segment in client.get("/v1/segments").json()["segments"]:
        r = client.get(f"/v1/segments/{segment['segment_id']}/users", params={"format": "csv"})
        assert r.status_code == 200, r.text
        members += [line.split(",")[0] for line in r.text.splitlines()[1:]]
    return members


def test_an_erased_user_leaves_audiences_and_segments_even_when_created_again(
    trained: TestClient,
) -> None:
    client = trained
    for path in ("/v1/items/a3/audience", "/v1/categories/alpha/audience"):
        assert "a1" in _audience(client, path)
    assert "a1" in _members(client)
    assert client.delete("/v1/users/a1").status_code == 200
    for path in ("/v1/items/a3/audience", "/v1/categories/alpha/audience"):
        listed = _audience(client, path)
        assert "a1" not in listed and "a2" in listed
    assert "a1" not in _members(client) and "a2" in _members(client)
    page = client.get("/v1/segments").json()["segments"]
    erased = [client.get(f"/v1/segments/{s['segment_id']}/users").json()["erased"] for s in page]
    assert sorted(erased) == [0, 1]
    # The same id created again starts cold: no audience from the old trained row.
    assert client.post("/v1/users", json={"user_id": "a1"}).status_code in {200, 201}
    assert "a1" not in _audience(client, "/v1/items/a3/audience")
    assert "a1" not in _members(client)
    # A rebuild after the erasure leaves them out of the members and the sizes.
    rebuilt = client.post("/v1/admin/segments/rebuild", params={"k": 2}, headers=ADMIN).json()
    assert rebuilt["users"] == 24 - 1 + 0 and sum(s["size"] for s in rebuilt["segments"]) == 23
    assert "a1" not in _members(client)


def test_a_deleted_item_is_no_query_source(trained: TestClient) -> None:
    client = trained
    assert client.get("/v1/items/a3/similar").status_code == 200
    assert client.get("/v1/items/a3/audience").status_code == 200
    before = client.post("/v1/recommendations/session", json={"items": ["a3", "b1"], "k": 5}).json()
    assert any("Alpha a3" in i["reason"] for i in before["items"])
    assert client.delete("/v1/items/a3").status_code == 200
    for path in ("/v1/items/a3/similar", "/v1/items/a3/audience", "/v1/items/never/similar",
                 "/v1/items/never/audience"):
        r = client.get(path)
        assert r.status_code == 404 and "does not exist" in r.json()["message"], (path, r.text)
    after = client.post("/v1/recommendations/session", json={"items": ["a3", "b1"], "k": 5}).json()
    assert after["items"] and not any(re.search(r"\ba3\b", i["reason"]) for i in after["items"])
    assert all(i["item_id"] != "a3" for i in after["items"])
    only_deleted = client.post("/v1/recommendations/session", json={"items": ["a3"], "k": 5})
    assert only_deleted.status_code == 200
    assert only_deleted.json() ["items"] == client.post(
        "/v1/recommendations/session", json={"items": ["never"], "k": 5}).json()["items"]
