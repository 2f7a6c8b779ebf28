"""Users and items through HTTP and the real database."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_user_upsert_get_patch(client: TestClient) -> None:
    r = client.post("/v1/users", json={"user_id": "u1", "attributes": {"plan": "free"}})
    assert r.status_code == 201, r.text
    assert r.json()["attributes"] == {"plan": "free"}
    r = client.post("/v1/users", json={"user_id": "u1", "attributes": {"plan": "pro"}})
    assert r.status_code == 200
    r = client.patch("/v1/users/u1", json={"attributes": {"country": "DE"}})
    assert r.json()["attributes"] == {"plan": "pro", "country": "DE"}
    assert client.get("/v1/users/u1").json()["attributes"]["country"] == "DE"


def test_item_crud_and_hidden_flag(client: TestClient) -> None:
    body = {"item_id": "i1", "title": "Tent", "categories": ["outdoors"], "tags": ["camping"]}
    assert client.post("/v1/items", json=body).status_code == 201
    r = client.patch("/v1/items/i1", json={"hidden": True, "title": "Big tent"})
    assert r.json()["hidden"] is True and r.json()["title"] == "Big tent"
    assert r.json()["categories"] == ["outdoors"]
    assert client.delete("/v1/items/i1").json()["deleted"] is True
    r = client.get("/v1/items/i1")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and "i1" in r.json()["message"]


def test_cursor_pagination_visits_every_user_once(client: TestClient) -> None:
    for n in range(7):
        client.post("/v1/users", json={"user_id": f"user-{n}"})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/users", params=params).json()
        seen += [u["user_id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"user-{n}" for n in range(7)]


def test_items_filtered_by_category(client: TestClient) -> None:
    client.post("/v1/items", json={"item_id": "a", "categories": ["x"]})
    client.post("/v1/items", json={"item_id": "b", "categories": ["y"]})
    page = client.get("/v1/items", params={"category": "y"}).json()
    assert [i["item_id"] for i in page["items"]] == ["b"]


def test_erasure_removes_user_and_interactions(client: TestClient) -> None:
    client.post("/v1/items", json={"item_id": "i1"})
    client.post("/v1/interactions", json={"user_id": "gone", "item_id": "i1", "type": "view"})
    client.post("/v1/interactions", json={"user_id": "stay", "item_id": "i1", "type": "view"})
    r = client.delete("/v1/users/gone")
    assert r.json() == {"deleted": True, "interactions_deleted": 1}
    assert client.get("/v1/users/gone").status_code == 404
    assert client.get("/v1/users/gone/interactions").status_code == 404
    assert len(client.get("/v1/users/stay/interactions").json()) == 1


def test_interactions_newest_first_and_unknown_user_created(client: TestClient) -> None:
    client.post("/v1/items", json={"item_id": "i1"})
    for day in (3, 1, 2):
        r = client.post("/v1/interactions", json={
            "user_id": "new-user", "item_id": "i1", "type": "click",
            "timestamp": f"2026-01-0{day}T00:00:00Z"})
        assert r.status_code == 201, r.text
    assert client.get("/v1/users/new-user").status_code == 200
    rows = client.get("/v1/users/new-user/interactions").json()
    assert [r["timestamp"][:10] for r in rows] == ["2026-01-03", "2026-01-02", "2026-01-01"]


def test_unknown_item_is_rejected_with_field(client: TestClient) -> None:
    r = client.post("/v1/interactions", json={"user_id": "u", "item_id": "nope", "type": "view"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "item_id"
    assert "nope" in r.json()["details"][0]["message"]
