"""Tenants and their keys: the operator API. Use a client whose ``api_key`` is the
deployment's operator key (``FASTINSIGHT_OPERATOR_KEY``); it reads no tenant's data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastinsight_client._call import Call, Route, model
from fastinsight_client.models import (
    KeyCreated,
    KeyIn,
    KeyList,
    KeyOut,
    TenantDeleted,
    TenantIn,
    TenantList,
    TenantOut,
    TenantPatch,
)

CREATE = Route("POST", "/v1/operator/tenants", model(TenantOut), body="TenantIn", idempotent=False)
LIST = Route("GET", "/v1/operator/tenants", model(TenantList), query=("usage",))
GET = Route("GET", "/v1/operator/tenants/{tenant_id}", model(TenantOut))
UPDATE = Route("PATCH", "/v1/operator/tenants/{tenant_id}", model(TenantOut), body="TenantPatch")
SUSPEND = Route("POST", "/v1/operator/tenants/{tenant_id}/suspend", model(TenantOut))
RESUME = Route("POST", "/v1/operator/tenants/{tenant_id}/resume", model(TenantOut))
DELETE = Route("DELETE", "/v1/operator/tenants/{tenant_id}", model(TenantDeleted))
CREATE_KEY = Route("POST", "/v1/operator/tenants/{tenant_id}/keys", model(KeyCreated), body="KeyIn",
                   idempotent=False)
LIST_KEYS = Route("GET", "/v1/operator/tenants/{tenant_id}/keys", model(KeyList))
REVOKE_KEY = Route("DELETE", "/v1/operator/tenants/{tenant_id}/keys/{key_id}", model(KeyOut))


def create_tenant(tenant: TenantIn | Mapping[str, Any]) -> Call[TenantOut]:
    """A tenant with its own database; create its keys next."""
    return CREATE.call(json_body=tenant)


def list_tenants(usage: bool | None = None) -> Call[TenantList]:
    """Every tenant with its usage (rows, storage, what this API process holds for it)."""
    return LIST.call(query={"usage": usage})


def get_tenant(tenant_id: str) -> Call[TenantOut]:
    return GET.call({"tenant_id": tenant_id})


def update_tenant(tenant_id: str, patch: TenantPatch | Mapping[str, Any]) -> Call[TenantOut]:
    """Replace the tenant's name, settings, quotas or limits (each given whole)."""
    return UPDATE.call({"tenant_id": tenant_id}, json_body=patch)


def suspend_tenant(tenant_id: str) -> Call[TenantOut]:
    """Its keys answer 403 until it is resumed; its data stays."""
    return SUSPEND.call({"tenant_id": tenant_id})


def resume_tenant(tenant_id: str) -> Call[TenantOut]:
    return RESUME.call({"tenant_id": tenant_id})


def delete_tenant(tenant_id: str) -> Call[TenantDeleted]:
    """Erase the tenant: its database, keys and files. Not undoable."""
    return DELETE.call({"tenant_id": tenant_id})


def create_key(tenant_id: str, key: KeyIn | Mapping[str, Any]) -> Call[KeyCreated]:
    """A new key of the tenant (scope tracking, api or admin), shown in this answer only."""
    return CREATE_KEY.call({"tenant_id": tenant_id}, json_body=key)


def list_keys(tenant_id: str) -> Call[KeyList]:
    return LIST_KEYS.call({"tenant_id": tenant_id})


def revoke_key(tenant_id: str, key_id: str) -> Call[KeyOut]:
    """The key answers 401 from then on (every API process within a few seconds)."""
    return REVOKE_KEY.call({"tenant_id": tenant_id, "key_id": key_id})
