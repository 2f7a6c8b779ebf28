"""Tenant keys (rotation, scopes), suspension, rate limits, quotas and the answer a tenant
gets while its model loads: through HTTP and the real database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pymongo import MongoClient

from fastinsight.api.app import create_app
from fastinsight.api.composition import Services
from fastinsight.services.training.pipeline import train
from tests.api.tenants import (
    OPERATOR_KEY,
    deployment,
    key,
    new_tenant,
    seed,
    tenancy_settings,
)
from tests.conftest import ADMIN_KEY, API_KEY

__all__ = ["deployment"]  # the fixture, imported for pytest


def test_keys_rotate_without_downtime_and_revoked_keys_stop_everywhere(
    deployment: TestClient, mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    client = deployment
    shop = new_tenant(client, "shop")
    old, new = shop.api, key(client, "shop", "api")
    # A second API process of the same deployment (another worker or replica).
    other_app = create_app(tenancy_settings(mongo_uri, db_name, tmp_path / "other"))
    with TestClient(other_app) as other:
        for c in (client, other):
            for k in (old, new):
                assert c.get("/v1/users", headers={"X-API-Key": k}).status_code == 200
        keys = client.get("/v1/operator/tenants/shop/keys").json()["keys"]
        old_id = next(k["key_id"] for k in keys if k["key_id"] == keys[0]["key_id"])
        assert client.delete(f"/v1/operator/tenants/shop/keys/{old_id}").status_code == 200
        assert client.get("/v1/users", headers={"X-API-Key": old}).status_code == 401
        deadline = time.monotonic() + 30  # the other process within tenant_cache_seconds
        while other.get("/v1/users", headers={"X-API-Key": old}).status_code != 401:
            assert time.monotonic() < deadline, "the other process still takes the revoked key"
            time.sleep(0.1)
        for c in (client, other):
            assert c.get("/v1/users", headers={"X-API-Key": new}).status_code == 200
    assert client.delete(f"/v1/operator/tenants/shop/keys/{old_id}").status_code == 404
    stored = client.get("/v1/operator/tenants/shop/keys").json()["keys"]
    assert all("key" not in k for k in stored)  # listed by id, never shown again


def test_each_scope_reaches_only_its_routes(deployment: TestClient) -> None:
    client = deployment
    shop = new_tenant(client, "shop")
    seed(client, shop, "shop")
    tracking = {"X-API-Key": key(client, "shop", "tracking")}
    event = {"user_id": "visitor-1", "item_id": shop.items[0], "type": "view"}
    assert client.post("/v1/interactions", json=event, headers=tracking).status_code == 201
    beacon = client.post("/v1/beacon", content=f'{{"key": "{tracking["X-API-Key"]}", '
                         f'"interactions": [{{"user_id": "visitor-1", "item_id": "{shop.items[1]}", '
                         '"type": "view"}]}', headers={"Content-Type": "text/plain"})
    assert beacon.status_code == 200, beacon.text
    assert client.get("/v1/items/trending", headers=tracking).status_code in (200, 503)
    for method, path in (("GET", f"/v1/users/{shop.users[0]}"), ("GET", "/v1/users"),
                         ("GET", f"/v1/users/{shop.users[0]}/interactions"),
                         ("POST", "/v1/items/import"), ("GET", "/v1/insights/overview"),
                         ("GET", "/v1/admin/models"), ("DELETE", f"/v1/items/{shop.items[0]}")):
        r = client.request(method, path, headers=tracking)
        assert r.status_code == 403, (method, path, r.text)
    # The api key is refused on admin routes; the operator reads no tenant's data; a
    # tenant's keys never reach the operator routes.
    assert client.get("/v1/admin/models", headers=shop.h()).status_code == 403
    assert client.get("/v1/admin/models", headers=shop.h(admin=True)).status_code == 200
    assert client.get("/v1/users", headers={"X-API-Key": OPERATOR_KEY}).status_code == 403
    for k in (shop.api, shop.admin, API_KEY, ADMIN_KEY):
        assert client.get("/v1/operator/tenants", headers={"X-API-Key": k}).status_code == 403
    assert client.get("/v1/operator/tenants", headers={"X-API-Key": "nope"}).status_code == 401


def test_a_suspended_tenant_is_refused_until_resumed(deployment: TestClient) -> None:
    client = deployment
    shop = new_tenant(client, "shop")
    assert client.post("/v1/operator/tenants/shop/suspend").json()["status"] == "suspended"
    r = client.get("/v1/users", headers=shop.h())
    assert r.status_code == 403 and "suspended" in r.json()["message"]
    assert client.post("/v1/operator/tenants/shop/resume").status_code == 200
    assert client.get("/v1/users", headers=shop.h()).status_code == 200


def test_rate_limits_are_per_tenant_with_retry_after(deployment: TestClient) -> None:
    client = deployment
    # One token per 100 s: after the burst of 3 the bucket cannot refill during the test.
    slow = new_tenant(client, "slow", limits={"requests_per_second": 0.01, "burst": 3})
    fast = new_tenant(client, "fast")
    codes = [client.get("/v1/users", headers=slow.h()).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    refused = client.get("/v1/users", headers=slow.h())
    assert refused.json()["error"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    assert all(client.get("/v1/users", headers=fast.h()).status_code == 200 for _ in range(10))
    assert client.get("/v1/users").status_code == 403  # the operator: never limited, no data
    usage = client.get("/v1/operator/tenants/slow").json()["usage"]
    assert usage["requests"] == 3 and usage["rate_limited"] == 3


def test_row_quotas_refuse_whole_writes_and_count_stored_rows_once(deployment: TestClient) -> None:
    client = deployment
    shop = new_tenant(client, "shop", quotas={"items": 3, "users": 4})
    items = [{"item_id": f"i{n}", "title": f"item {n}"} for n in range(3)]
    assert client.post("/v1/items/import", json=items, headers=shop.h()).status_code == 200
    assert client.post("/v1/items/import", json=items, headers=shop.h()).status_code == 200  # stored: free
    refused = client.post("/v1/items", json={"item_id": "i3", "title": "one too many"}, headers=shop.h())
    assert refused.status_code == 403 and refused.json()["error"] == "quota_exceeded", refused.text
    assert client.get("/v1/items/i3", headers=shop.h()).status_code == 404
    events = [{"user_id": f"u{n}", "item_id": "i0", "type": "view",
               "timestamp": "2026-11-20T10:00:00Z"} for n in range(5)]
    r = client.post("/v1/interactions/batch", json={"interactions": events}, headers=shop.h())
    assert r.status_code == 403 and r.json()["error"] == "quota_exceeded"
    assert client.get("/v1/users", headers=shop.h()).json()["items"] == []  # nothing of it written
    r = client.post("/v1/interactions/batch", json={"interactions": events[:4]}, headers=shop.h())
    assert r.status_code == 200 and r.json()["inserted"] == 4
    assert client.patch("/v1/operator/tenants/shop", json={"quotas": {"items": 10}}).status_code == 200
    assert client.post("/v1/items", json={"item_id": "i3", "title": "room now"},
                       headers=shop.h()).status_code == 201


def _services(client: TestClient, tenant_id: str) -> Services:
    pool = client.app.state.deployment.pool  # type: ignore[attr-defined]
    services = pool.loaded()[tenant_id]
    assert isinstance(services, Services)
    return services


def test_a_tenant_answers_from_popular_items_while_its_model_loads(
    deployment: TestClient, mongo_uri: str, db_name: str
) -> None:
    client = deployment
    shop = new_tenant(client, "shop")
    seed(client, shop, "shop", n_users=20, n_items=12)
    services = _services(client, "shop")
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        doc = train(mongo[f"{db_name}_t_shop"], services.settings, "popularity", evaluate=False)
    finally:
        mongo.close()
    assert len(doc["fallback"]["items"]) == 12
    # Unload, then load again: the first answer comes while the files load, or after.
    client.app.state.deployment.pool.unload("shop")  # type: ignore[attr-defined]
    user = shop.users[0]
    first = client.get(f"/v1/users/{user}/recommendations", headers=shop.h())
    assert first.status_code == 200, first.text
    # Hold the loaded tenant in its loading state to check what that answer is.
    services = _services(client, "shop")
    deadline = time.monotonic() + 30
    while services.models.current is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    loaded = services.models.current
    hidden = doc["fallback"]["items"][0]
    if hidden in shop.items and hidden not in _seen(client, shop.h(), user):
        assert client.patch(f"/v1/items/{hidden}", json={"hidden": True}, headers=shop.h()).status_code == 200
    try:
        services.models.current, services.models.fallback = None, doc["fallback"]
        r = client.get(f"/v1/users/{user}/recommendations?k=20", headers=shop.h())
        assert r.status_code == 200, r.text
        shown = [i["item_id"] for i in r.json()["items"]]
        assert {i["reason"] for i in r.json()["items"]} == {"popular"}
        assert not set(shown) & _seen(client, shop.h(), user)  # bought and viewed: never again
        assert hidden not in shown
        assert shown == [i for i in doc["fallback"]["items"] if i in shown]  # popularity order
        assert client.get("/v1/users/nobody/recommendations", headers=shop.h()).status_code == 404
    finally:
        services.models.current, services.models.fallback = loaded, None


def _seen(client: TestClient, headers: dict[str, str], user: str) -> set[str]:
    r = client.get(f"/v1/users/{user}/interactions?limit=500", headers=headers)
    return {e["item_id"] for e in r.json()}
