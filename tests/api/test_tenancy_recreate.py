"""A tenant deleted and created again keeps the new tenant's data: the delayed second drop
of the deleted tenant's database (for writes other processes had in flight) must not take
the new one's (it used to, a few seconds after the re-creation)."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from tests.api.tenants import deployment, new_tenant

__all__ = ["deployment"]


def _timers_done(deadline: float) -> None:
    while any(isinstance(t, threading.Timer) and t.is_alive() for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the delayed drop never ran"
        time.sleep(0.1)


def test_re_creating_a_deleted_tenant_keeps_its_new_data(deployment: TestClient) -> None:
    client = deployment
    new_tenant(client, "shop")
    assert client.delete("/v1/operator/tenants/shop").status_code == 200
    again = new_tenant(client, "shop")
    assert client.post("/v1/items", json={"item_id": "precious"}, headers=again.h()).status_code == 201
    _timers_done(time.monotonic() + 60)
    r = client.get("/v1/items/precious", headers=again.h())
    assert r.status_code == 200, r.text


def test_a_deleted_tenant_written_to_after_its_deletion_is_dropped_again(deployment: TestClient) -> None:
    client = deployment
    new_tenant(client, "gone")
    database = client.get("/v1/operator/tenants/gone").json()["database"]
    assert client.delete("/v1/operator/tenants/gone").status_code == 200
    mongo = client.app.state.deployment.tenants.repo.client  # type: ignore[attr-defined]
    mongo[database]["items"].insert_one({"_id": "stray"})  # a write another process had in flight
    _timers_done(time.monotonic() + 60)
    assert database not in mongo.list_database_names()


def test_settings_a_tenant_could_not_run_with_are_refused(deployment: TestClient) -> None:
    client = deployment
    for settings, field in (({"default_algorithm": "nope"}, "settings.default_algorithm"),
                            ({"interaction_weights": {"view": 1}, "conversion_types": ["purchase"]},
                             "settings.conversion_types"),
                            ({"conversion_types": ["teleport"]}, "settings.conversion_types")):
        r = client.post("/v1/operator/tenants", json={"id": "shop", "settings": settings})
        assert r.status_code == 422 and r.json()["details"][0]["field"] == field, r.text
    new_tenant(client, "shop", settings={"default_algorithm": "popularity",
                                         "interaction_weights": {"view": 1, "buy": 5},
                                         "conversion_types": ["buy"]})
    r = client.patch("/v1/operator/tenants/shop", json={"settings": {"default_algorithm": "nope"}})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "settings.default_algorithm"
    assert client.get("/v1/operator/tenants/shop").json()["settings"]["default_algorithm"] == "popularity"


def test_a_deleted_tenant_leaves_the_metrics(deployment: TestClient) -> None:
    client = deployment
    shop = new_tenant(client, "shop")
    assert client.get("/v1/users", headers=shop.h()).status_code == 200
    assert 'tenant="shop"' in client.get("/metrics").text
    assert client.delete("/v1/operator/tenants/shop").status_code == 200
    assert 'tenant="shop"' not in client.get("/metrics").text
