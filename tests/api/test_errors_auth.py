"""Auth, validation errors, size limits and the single error shape."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/health/live", headers={"X-API-Key": ""}).status_code == 200
    assert client.get("/health/ready", headers={"X-API-Key": ""}).json()["database"] == "ok"


def test_missing_and_wrong_keys(client: TestClient) -> None:
    r = client.get("/v1/users", headers={"X-API-Key": ""})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "X-API-Key" in r.json()["message"]
    r = client.get("/v1/users", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.json()["message"] == "invalid API key"
    assert client.get("/v1/users", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


PUBLIC = {"/health/live", "/health/ready", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc",
          "/openapi.json"}
BEACON = "/v1/beacon"  # sendBeacon cannot set headers: the key is in the body


def test_every_other_route_needs_a_key(client: TestClient) -> None:
    """A sweep over every documented route: none but the public ones answers without a
    valid key, including routes that check the key themselves instead of by dependency."""
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/users/{user_id}/recommendations" in paths
    checked = 0
    for path, operations in paths.items():
        if path in PUBLIC:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            for key in ("", "wrong"):
                if path == BEACON:
                    beacon = {"key": key, "interactions": [{"user_id": "u", "item_id": "i", "type": "click"}]}
                    r = client.post(url, json=beacon, headers={"X-API-Key": ADMIN_KEY})
                else:
                    r = client.request(method.upper(), url, headers={"X-API-Key": key})
                assert r.status_code == 401, (method, path, key, r.status_code)
            checked += 1
    assert checked >= 40


def test_validation_error_names_field(client: TestClient) -> None:
    r = client.post("/v1/users", json={"user_id": "bad\u0001id"})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_failed"
    assert body["details"][0]["field"] == "user_id"
    assert "control" in body["details"][0]["message"]
    r = client.post("/v1/users", json={"user_id": "x" * 129})
    assert r.json()["details"][0]["field"] == "user_id"
    r = client.post("/v1/items", json={"item_id": "i", "colour": "red"})
    assert r.json()["details"][0] == {"field": "colour", "message": "unknown field"}


def test_operator_injection_is_rejected(client: TestClient) -> None:
    r = client.post("/v1/users", json={"user_id": {"$gt": ""}})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "user_id"
    r = client.post("/v1/users", json={"user_id": "u", "attributes": {"$where": "1"}})
    assert r.status_code == 422 and "$" in r.json()["details"][0]["message"]
    r = client.get("/v1/items", params={"category": '{"$ne": null}'})
    assert r.status_code == 200 and r.json()["items"] == []


def test_unparseable_body(client: TestClient) -> None:
    r = client.post("/v1/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["message"]


def test_oversized_body_gets_413(client: TestClient) -> None:
    big = b"[" + b" " * (60 * 1024 * 1024) + b"]"
    r = client.post("/v1/items/import", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"


def test_wrong_content_type_gets_415(client: TestClient) -> None:
    r = client.post("/v1/items/import", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "text/csv" in r.json()["message"]


def test_attribute_size_limit(client: TestClient) -> None:
    r = client.post("/v1/users", json={"user_id": "u", "attributes": {"x": "a" * 20_000}})
    assert r.status_code == 422 and "bytes" in r.json()["details"][0]["message"]


def test_paused_writes_get_503_while_reads_continue(client: TestClient, db: object) -> None:
    import time

    from fastinsight.ops.maintenance import writes_paused

    client.post("/v1/users", json={"user_id": "before"})
    with writes_paused(db, "backup in progress", grace_seconds=0):  # type: ignore[arg-type]
        time.sleep(1.1)  # the gate re-reads the flag at most once a second
        r = client.post("/v1/users", json={"user_id": "during"})
        assert r.status_code == 503 and "Retry-After" in r.headers
        assert client.get("/v1/users/before").status_code == 200
    time.sleep(1.1)
    assert client.post("/v1/users", json={"user_id": "after"}).status_code == 201
