"""Moving a tenant to another deployment: its record and the hashes of its live keys.

The keys name their tenant (``fi_<id>_...``), so a tenant keeps its id when it moves and
its clients keep their keys. Its data moves separately: a backup archive of its database,
restored into the database the importing deployment gives it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastinsight.errors import Conflict, ValidationFailed
from fastinsight.schemas.tenants import ExportedKey, TenantExport, TenantIn, TenantOut
from fastinsight.services.tenancy.admin import TenantAdmin
from fastinsight.services.tenancy.keys import DEFAULT_TENANT

log = logging.getLogger(__name__)


def export_tenant(admin: TenantAdmin, tenant_id: str) -> TenantExport:
    if tenant_id == DEFAULT_TENANT:
        raise Conflict("the default tenant is the deployment's own configuration; back up "
                       "its database instead")
    tenant = admin.get(tenant_id, usage=False)
    keys = [ExportedKey(digest=str(d["_id"]), key_id=str(d["key_id"]), scope=d["scope"],
                        name=str(d.get("name", "")), created_at=d["created_at"])
            for d in admin.repo.keys_of(tenant_id) if d.get("revoked_at") is None]
    return TenantExport(exported_at=datetime.now(UTC), id=tenant.id, name=tenant.name,
                        status=tenant.status, database=tenant.database, settings=tenant.settings,
                        quotas=tenant.quotas, limits=tenant.limits, keys=keys)


def import_tenant(admin: TenantAdmin, export: TenantExport) -> TenantOut:
    """Create the tenant of ``export`` with its keys; Conflict if it, its database or one of
    its keys exists here already (nothing is written then)."""
    for key in export.keys:
        if key.digest[:16] != key.key_id:
            raise ValidationFailed.field("keys", f"key {key.key_id} does not match its digest")
        if admin.repo.key(key.digest) is not None:
            raise Conflict(f"key {key.key_id} exists already in this deployment")
    created = admin.create(TenantIn(id=export.id, name=export.name, settings=export.settings,
                                    quotas=export.quotas, limits=export.limits))
    for key in export.keys:
        admin.repo.insert_key({"_id": key.digest, "key_id": key.key_id, "tenant": export.id,
                               "scope": key.scope, "name": key.name,
                               "created_at": key.created_at, "revoked_at": None})
    if export.status != created.status:
        created = admin.set_status(export.id, export.status)
    admin.directory.refresh()
    log.info("tenant %s imported with %d keys (database %s)", export.id, len(export.keys),
             created.database)
    return created
