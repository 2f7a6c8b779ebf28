"""Helpers of the tenancy tests: an app with an operator key, tenants with keys and data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from tests.conftest import ADMIN_KEY, API_KEY, OPERATOR_KEY
from tests.live import drop_database, drop_tenants

__all__ = ["OPERATOR_KEY", "Tenant", "deployment", "drop_deployment", "key", "new_tenant", "seed",
           "tenancy_settings"]


@dataclass
class Tenant:
    id: str
    api: str
    admin: str
    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    def h(self, admin: bool = False) -> dict[str, str]:
        return {"X-API-Key": self.admin if admin else self.api}


def tenancy_settings(mongo_uri: str, db_name: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri, "mongodb_db": db_name, "api_key": API_KEY, "admin_key": ADMIN_KEY,
        "operator_key": OPERATOR_KEY, "var_dir": tmp / "var", "log_dir": tmp / "log",
        "model_poll_seconds": 0.2, "tenant_poll_seconds": 0.2, "tenant_cache_seconds": 0.2,
        **overrides}
    return Settings(**values, _env_file=None)  # type: ignore[call-arg]


def drop_deployment(mongo_uri: str, db_name: str) -> None:
    """Drop the deployment's own database, its control database and every tenant's."""
    del mongo_uri  # the test server's, as tests.live reads it
    drop_database(db_name)
    drop_tenants(db_name)


@pytest.fixture()
def deployment(mongo_uri: str, db_name: str, tmp_path: Path) -> Iterator[TestClient]:
    """A started app with an operator key; every database of it dropped afterwards."""
    settings = tenancy_settings(mongo_uri, db_name, tmp_path)
    try:
        with TestClient(create_app(settings), headers={"X-API-Key": OPERATOR_KEY}) as client:
            yield client
    finally:
        drop_deployment(mongo_uri, db_name)


def key(client: TestClient, tenant_id: str, scope: str) -> str:
    r = client.post(f"/v1/operator/tenants/{tenant_id}/keys", json={"scope": scope, "name": scope},
                    headers={"X-API-Key": OPERATOR_KEY})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def new_tenant(client: TestClient, tenant_id: str, **spec: Any) -> Tenant:
    r = client.post("/v1/operator/tenants", json={"id": tenant_id, **spec},
                    headers={"X-API-Key": OPERATOR_KEY})
    assert r.status_code == 201, r.text
    return Tenant(tenant_id, key(client, tenant_id, "api"), key(client, tenant_id, "admin"))


def seed(client: TestClient, tenant: Tenant, prefix: str, n_users: int = 12, n_items: int = 10) -> None:
    """Items, users and interactions whose ids and titles all start with ``prefix``."""
    items = [{"item_id": f"{prefix}-item-{i}", "title": f"{prefix} title {i}",
              "categories": [f"{prefix}-cat"]} for i in range(n_items)]
    r = client.post("/v1/items/import", json=items, headers=tenant.h())
    assert r.status_code == 200, r.text
    events = [{"user_id": f"{prefix}-user-{u}", "item_id": f"{prefix}-item-{(u * 3 + k) % n_items}",
               "type": "purchase" if k == 0 else "view", "timestamp": f"2026-11-{10 + k:02d}T10:00:00Z"}
              for u in range(n_users) for k in range(4)]
    r = client.post("/v1/interactions/batch", json={"interactions": events}, headers=tenant.h())
    assert r.status_code == 200 and r.json()["rejected_count"] == 0, r.text
    tenant.users = [f"{prefix}-user-{u}" for u in range(n_users)]
    tenant.items = [f"{prefix}-item-{i}" for i in range(n_items)]
