"""The operator API (``FASTINSIGHT_OPERATOR_KEY``): tenants, their keys and their usage.

The operator key reads no tenant's data; a tenant's own keys cannot reach these routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from fastinsight.api.deps import TenantsDep
from fastinsight.schemas.tenants import (
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

router = APIRouter(prefix="/v1/operator/tenants", tags=["operator"])
TenantId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
KeyId = Annotated[str, Path(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$")]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_tenant(body: TenantIn, tenants: TenantsDep) -> TenantOut:
    """Create a tenant with its own database; 409 if the id is taken. Create its keys next."""
    return tenants.create(body)


@router.get("")
def list_tenants(
    tenants: TenantsDep, usage: Annotated[bool, Query(description="Count rows and storage")] = True,
) -> TenantList:
    """Every tenant (the default one first) with its usage: rows, storage, and what this
    API process holds loaded for it."""
    return TenantList(tenants=tenants.all(usage=usage))


@router.get("/{tenant_id}")
def get_tenant(tenant_id: TenantId, tenants: TenantsDep) -> TenantOut:
    return tenants.get(tenant_id)


@router.patch("/{tenant_id}")
def update_tenant(tenant_id: TenantId, body: TenantPatch, tenants: TenantsDep) -> TenantOut:
    """Change a tenant's name, settings, quotas or limits (each replaced whole); served from
    the next request on (every API process within FASTINSIGHT_TENANT_CACHE_SECONDS)."""
    return tenants.update(tenant_id, body)


@router.post("/{tenant_id}/suspend")
def suspend_tenant(tenant_id: TenantId, tenants: TenantsDep) -> TenantOut:
    """Its keys answer 403 until it is resumed; its data stays."""
    return tenants.set_status(tenant_id, "suspended")


@router.post("/{tenant_id}/resume")
def resume_tenant(tenant_id: TenantId, tenants: TenantsDep) -> TenantOut:
    return tenants.set_status(tenant_id, "active")


@router.delete("/{tenant_id}")
def delete_tenant(tenant_id: TenantId, tenants: TenantsDep) -> TenantDeleted:
    """Erase the tenant: its database (every collection), its keys, and this host's files
    of it (model copies, backups, job logs). Not undoable: back it up first."""
    return tenants.delete(tenant_id)


@router.post("/{tenant_id}/keys", status_code=status.HTTP_201_CREATED)
def create_key(tenant_id: TenantId, body: KeyIn, tenants: TenantsDep) -> KeyCreated:
    """A new key; the answer is the only time the key is shown. Several keys may be live at
    once: create the new one, move clients to it, then revoke the old one."""
    return tenants.create_key(tenant_id, body)


@router.get("/{tenant_id}/keys")
def list_keys(tenant_id: TenantId, tenants: TenantsDep) -> KeyList:
    return KeyList(keys=tenants.keys(tenant_id))


@router.delete("/{tenant_id}/keys/{key_id}")
def revoke_key(tenant_id: TenantId, key_id: KeyId, tenants: TenantsDep) -> KeyOut:
    """Revoke a key: 401 with it from then on (in every API process within
    FASTINSIGHT_TENANT_CACHE_SECONDS)."""
    return tenants.revoke_key(tenant_id, key_id)
