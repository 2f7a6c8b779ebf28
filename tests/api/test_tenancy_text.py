"""The operator API takes only text a MongoDB-compatible server can store and give back:
NUL in a tenant's name (on create and on change), its key names, category and item names
and schedules is a 422 naming the field; other text is taken as before."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.tenants import deployment, new_tenant

__all__ = ["deployment"]

NUL = "shop\u0000a"
PLAIN = "Shop \u00e9\u2603 \u2014 north\twing "  # kept as sent: not stripped, a tab allowed


def _refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["details"][0]["field"] == field, body
    assert "NUL" in body["details"][0]["message"], body


def test_nul_in_a_tenant_name_is_refused_on_create_and_on_change(deployment: TestClient) -> None:
    client = deployment
    _refused(client.post("/v1/operator/tenants", json={"id": "shop", "name": NUL}), "name")
    assert client.get("/v1/operator/tenants/shop").status_code == 404
    new_tenant(client, "shop", name="Shop A")
    _refused(client.patch("/v1/operator/tenants/shop", json={"name": NUL}), "name")
    assert client.get("/v1/operator/tenants/shop").json()["name"] == "Shop A"
    r = client.patch("/v1/operator/tenants/shop", json={"name": PLAIN})
    assert r.status_code == 200 and r.json()["name"] == PLAIN, r.text
    assert client.get("/v1/operator/tenants/shop").json()["name"] == PLAIN
    # the length bound is unchanged
    r = client.patch("/v1/operator/tenants/shop", json={"name": "n" * 201})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "name", r.text
    assert client.patch("/v1/operator/tenants/shop", json={"name": "n" * 200}).status_code == 200
    assert client.patch("/v1/operator/tenants/shop", json={"name": ""}).json()["name"] == ""


def test_nul_in_the_other_text_of_a_tenant_is_refused(deployment: TestClient) -> None:
    client = deployment
    new_tenant(client, "shop")
    cases: dict[str, dict[str, Any]] = {
        "settings.pinned_items.0": {"pinned_items": [NUL]},
        "settings.schedules.backup": {"schedules": {"backup": "0 3 * * *\u0000"}},
    }
    for field, settings in cases.items():
        _refused(client.patch("/v1/operator/tenants/shop", json={"settings": settings}), field)
    r = client.patch("/v1/operator/tenants/shop", json={"settings": {"boost_categories": {NUL: 2.0}}})
    assert r.status_code == 422 and "NUL" in r.json()["details"][0]["message"], r.text
    assert r.json()["details"][0]["field"].startswith("settings.boost_categories"), r.text
    assert client.get("/v1/operator/tenants/shop").json()["settings"]["pinned_items"] is None
    _refused(client.post("/v1/operator/tenants/shop/keys", json={"scope": "api", "name": NUL}), "name")
    # the same fields without NUL are taken
    settings = {"pinned_items": ["item \u00e9"], "schedules": {"backup": "0 3 * * *"},
                "boost_categories": {"caf\u00e9 & bar": 2.0}}
    r = client.patch("/v1/operator/tenants/shop", json={"settings": settings})
    assert r.status_code == 200, r.text
    assert {k: r.json()["settings"][k] for k in settings} == settings
    r = client.post("/v1/operator/tenants/shop/keys", json={"scope": "api", "name": PLAIN})
    assert r.status_code == 201 and r.json()["name"] == PLAIN, r.text
