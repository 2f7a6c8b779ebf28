"""A tenant's settings keyed by category names (``boost_categories``) take any category,
``$gt`` and ``a.b`` included: the control database stores them as pairs."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pymongo.database import Database

from tests.api.tenants import deployment, new_tenant, seed
from tests.api.test_tenancy_isolation import _train, _wait

__all__ = ["deployment"]

BOOSTS = {"$gt": 2.0, "a.b": 3.0, "$where": 0.5, "plain": 1.5}


def test_boost_categories_named_like_operators_are_stored_and_served(
    deployment: TestClient, db: Database[dict[str, object]]
) -> None:
    client = deployment
    shop = new_tenant(client, "shop", settings={"boost_categories": BOOSTS})
    got = client.get("/v1/operator/tenants/shop")
    assert got.status_code == 200 and got.json()["settings"]["boost_categories"] == BOOSTS
    changed = {"$gt": 4.0, "x.y.z": 1.0}
    r = client.patch("/v1/operator/tenants/shop", json={"settings": {"boost_categories": changed}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["boost_categories"] == changed
    listed = client.get("/v1/operator/tenants", params={"usage": False}).json()
    assert {t["id"]: t["settings"].get("boost_categories") for t in listed["tenants"]}["shop"] == changed
    stored = db.client[f"{db.name}_control"]["tenants"].find_one({"_id": "shop"})
    assert stored is not None and {"k": "$gt", "v": 4.0} in stored["settings"]["boost_categories"]
    # Served: the deployment's settings with the tenant's boosts, read back from the pairs.
    seed(client, shop, "s")
    r = client.patch("/v1/items/s-item-9", json={"categories": ["$gt"]}, headers=shop.h())
    assert r.status_code == 200, r.text
    _train(client, "shop")
    body = _wait(client, f"/v1/users/{shop.users[0]}/recommendations", shop.h(),
                 lambda b: "items" in b)
    assert [i["item_id"] for i in body["items"]][:1] == ["s-item-9"], body  # popular x 4
