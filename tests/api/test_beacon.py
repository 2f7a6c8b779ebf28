"""``POST /v1/beacon`` (events from a page being left: the key in a text/plain JSON body,
the admin key refused) and the opt-in CORS answers for shop pages on other origins."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from tests.conftest import ADMIN_KEY, API_KEY

Db = Database[dict[str, object]]


def _beacon(client: TestClient, body: Any, content_type: str = "text/plain;charset=UTF-8") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/beacon", content=raw, headers={"Content-Type": content_type, "X-API-Key": ""})


def test_a_beacon_records_its_events_with_the_key_in_the_body(client: TestClient, db: Db) -> None:
    assert client.post("/v1/items", json={"item_id": "i1"}).status_code == 201
    events = [{"user_id": "u1", "item_id": "i1", "type": "click", "event_id": "e1", "recommendation_id": "r1"},
              {"user_id": "u1", "item_id": "nope", "type": "click"}]
    r = _beacon(client, {"key": API_KEY, "interactions": events})
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 1 and r.json()["rejected"][0]["row"] == 2
    stored = db["interactions"].find_one({"event_id": "e1"})
    assert stored is not None and stored["recommendation_id"] == "r1"
    again = _beacon(client, {"key": API_KEY, "interactions": events[:1]}, "application/json")
    assert again.json()["duplicates"] == 1  # the same event_id is stored once


def test_a_beacon_refuses_the_admin_key_and_unknown_keys(client: TestClient, db: Db) -> None:
    event = [{"user_id": "u1", "item_id": "i1", "type": "click"}]
    admin = _beacon(client, {"key": ADMIN_KEY, "interactions": event})
    assert admin.status_code == 403 and "browser" in admin.json()["message"]
    assert _beacon(client, {"key": "guess", "interactions": event}).status_code == 401
    missing = _beacon(client, {"interactions": event})
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "key"
    assert _beacon(client, b"{not json").status_code == 422
    assert _beacon(client, {"key": API_KEY, "interactions": event}, "text/csv").status_code == 415
    assert db["interactions"].count_documents({}) == 0


def test_cors_is_off_unless_origins_are_configured(client: TestClient, settings: Settings, db: Db) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key,content-type"}
    off = client.options("/v1/interactions/batch", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    shop = settings.model_copy(update={"cors_origins": ["https://shop.example"]})
    with TestClient(create_app(shop), headers={"X-API-Key": API_KEY}) as on:
        ok = on.options("/v1/interactions/batch", headers=preflight)
        assert ok.status_code == 200, ok.text
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
        assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()
        other = on.options("/v1/interactions/batch", headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        got = on.get("/v1/items", headers={"Origin": "https://shop.example"})
        assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "https://shop.example"
