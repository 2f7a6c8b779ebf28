"""Every documented route against every key that may not use it: 403 before any input is
read. The schema fuzz (tests/api/test_fuzz.py) fuzzes each key only where it reaches a
handler, so this sweep is what covers the other pairings."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.tenants import deployment, new_tenant
from tests.api.test_errors_auth import BEACON, PUBLIC
from tests.conftest import ADMIN_KEY, API_KEY

__all__ = ["deployment"]  # the fixture, imported for pytest

OPERATOR = "/v1/operator/"


def test_no_key_reaches_a_route_outside_its_scope(deployment: TestClient) -> None:
    client = deployment
    shop = new_tenant(client, "shop")
    tenant_keys = {"shop api": shop.api, "shop admin": shop.admin, "default api": API_KEY,
                   "default admin": ADMIN_KEY}
    paths = client.get("/openapi.json").json()["paths"]
    checked = {"operator route": 0, "tenant route": 0, "admin route": 0}
    for path, operations in paths.items():
        if path in PUBLIC or path == BEACON:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            if path.startswith(OPERATOR):
                refused = tenant_keys  # a tenant's keys never reach the operator's routes
                checked["operator route"] += 1
            else:
                refused = {"operator": None}  # the operator key reads and writes no tenant data
                checked["tenant route"] += 1
                if path.startswith("/v1/admin/"):
                    refused = {**refused, "shop api": shop.api, "default api": API_KEY}
                    checked["admin route"] += 1
            for name, key in refused.items():
                headers = {} if key is None else {"X-API-Key": key}  # None: the client's operator key
                r = client.request(method.upper(), url, headers=headers, json={})
                assert r.status_code == 403, (method, path, name, r.status_code, r.text)
    assert checked["operator route"] >= 8 and checked["tenant route"] >= 40 and checked["admin route"] >= 10
