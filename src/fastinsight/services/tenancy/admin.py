"""The operator's tenant management: create, list, change, suspend, delete; keys.

A tenant's data lives in its own database, ``<FASTINSIGHT_MONGODB_DB>_t_<id>``; its files
(model copies, backups, job logs) under ``tenants/<id>`` of the deployment's folders
(:func:`tenant_folders`). Deleting a tenant drops its database, deletes its keys and
its record, and removes those folders on this host. The default tenant is the
deployment's own configuration: it is listed, takes extra keys, and can be neither
changed nor deleted here.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.errors import DuplicateKeyError

from fastinsight.config import Settings
from fastinsight.errors import Conflict, NotFoundError, ValidationFailed
from fastinsight.observability import forget_tenant
from fastinsight.recsys.registry import algorithms
from fastinsight.schemas.tenants import (
    KeyCreated,
    KeyIn,
    KeyOut,
    TenantDeleted,
    TenantIn,
    TenantLimits,
    TenantOut,
    TenantPatch,
    TenantQuotas,
    TenantSettings,
    TenantUsage,
)
from fastinsight.services.tenancy.directory import TenantDirectory, TenantRecord
from fastinsight.services.tenancy.keys import DEFAULT_TENANT, digest, key_id_of, new_key
from fastinsight.services.tenancy.settings import tenant_model_dir
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.schema import INTERACTIONS, ITEMS, USERS
from fastinsight.storage.mongo.tenants import TenantRepository

log = logging.getLogger(__name__)

ProcessUsage = Callable[[str], dict[str, Any]]


def tenant_database(settings: Settings, tenant_id: str) -> str:
    return settings.mongodb_db if tenant_id == DEFAULT_TENANT else f"{settings.mongodb_db}_t_{tenant_id}"


def tenant_folders(settings: Settings, backup_root: Path, tenant_id: str) -> list[Path]:
    """The folders of a tenant's files on this host (none for the default tenant, whose
    files are the deployment's own)."""
    if tenant_id == DEFAULT_TENANT:
        return []
    return [tenant_model_dir(settings, tenant_id), backup_root / "tenants" / tenant_id,
            settings.log_dir / "tenants" / tenant_id]


class TenantAdmin:
    def __init__(self, settings: Settings, repo: TenantRepository, directory: TenantDirectory,
                 backup_root: Path, process_usage: ProcessUsage,
                 unload: Callable[[str], object]) -> None:
        self.settings = settings
        self.repo = repo
        self.directory = directory
        self.backup_root = backup_root
        self.process_usage = process_usage
        self.unload = unload

    # ---- tenants ---------------------------------------------------------------------
    def create(self, spec: TenantIn) -> TenantOut:
        if spec.id == DEFAULT_TENANT:
            raise Conflict("'default' is the deployment's own tenant; choose another id")
        database = tenant_database(self.settings, spec.id)
        if len(database) > 63:
            raise ValidationFailed.field("id", f"makes the database name {database!r} longer than 63")
        if database in self.repo.database_names():
            raise Conflict(f"database {database!r} exists already; delete it or choose another id")
        self._usable(spec.settings)
        doc: Document = {
            "_id": spec.id, "name": spec.name, "status": "active", "database": database,
            "created_at": datetime.now(UTC),
            "settings": spec.settings.model_dump(exclude_none=True),
            "quotas": spec.quotas.model_dump(exclude_none=True),
            "limits": spec.limits.model_dump(exclude_none=True),
        }
        try:
            self.repo.insert(doc)
        except DuplicateKeyError:
            raise Conflict(f"tenant {spec.id!r} exists already") from None
        apply_indexes(self.repo.client[database])  # its schema from the start
        self.directory.refresh()
        log.info("tenant %s created (database %s)", spec.id, database)
        return self._out(doc)

    def all(self, usage: bool = True) -> list[TenantOut]:
        docs = [self._default_doc(), *self.repo.all()]
        return [self._out(d, usage=usage) for d in docs]

    def get(self, tenant_id: str, usage: bool = True) -> TenantOut:
        return self._out(self._doc(tenant_id), usage=usage)

    def update(self, tenant_id: str, patch: TenantPatch) -> TenantOut:
        self._changeable(tenant_id)
        if patch.settings is not None:
            self._usable(patch.settings)
        fields = {name: (value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value)
                  for name in ("name", "settings", "quotas", "limits")
                  if (value := getattr(patch, name)) is not None}
        doc = self.repo.update(tenant_id, fields) if fields else self._doc(tenant_id)
        self._reload(tenant_id)
        return self._out(doc or self._doc(tenant_id))

    def _usable(self, settings: TenantSettings) -> None:
        """422 for settings the tenant could not run with: an algorithm no training knows,
        conversion types that are not among its interaction types (none could be stored)."""
        if settings.default_algorithm is not None and settings.default_algorithm not in algorithms():
            raise ValidationFailed.field(
                "settings.default_algorithm",
                f"unknown algorithm {settings.default_algorithm!r}; one of: {', '.join(algorithms())}")
        types = set(settings.interaction_weights or self.settings.interaction_weights)
        unknown = sorted(set(settings.conversion_types or ()) - types)
        if unknown:
            raise ValidationFailed.field(
                "settings.conversion_types",
                f"{', '.join(unknown)} not among the interaction types ({', '.join(sorted(types))})")

    def set_status(self, tenant_id: str, status: str) -> TenantOut:
        self._changeable(tenant_id)
        doc = self.repo.update(tenant_id, {"status": status})
        self._reload(tenant_id)
        log.info("tenant %s %s", tenant_id, status)
        return self._out(doc or self._doc(tenant_id))

    def delete(self, tenant_id: str) -> TenantDeleted:
        """Erase the tenant: its database, keys, record and this host's files of it."""
        self._changeable(tenant_id)
        record = TenantRecord.from_doc(self._doc(tenant_id))
        # Refuse new requests first (keys gone), then stop serving, then erase.
        self.repo.delete(tenant_id)
        self.directory.refresh()
        self.unload(tenant_id)
        forget_tenant(tenant_id)
        self.repo.client.drop_database(record.database)
        # Other API processes stop serving it within tenant_cache_seconds; a write one of
        # them had in flight could create the database again: drop it once more after.
        grace = 2 * self.settings.tenant_cache_seconds + self.settings.impression_flush_seconds + 1
        timer = threading.Timer(grace, self._drop_again, args=(tenant_id, record.database))
        timer.daemon = True
        timer.start()
        removed = 0
        for folder in tenant_folders(self.settings, self.backup_root, tenant_id):
            if folder.exists():
                # os.walk skips what vanishes under it: this process's directory poller
                # may be removing the tenant's model copies at the same moment.
                removed += sum(len(files) for _, _, files in os.walk(folder))
                shutil.rmtree(folder, ignore_errors=True)
        log.info("tenant %s deleted: database %s dropped, %d files removed", tenant_id,
                 record.database, removed)
        return TenantDeleted(id=tenant_id, deleted=True, databases_dropped=[record.database],
                             files_removed=removed)

    def _drop_again(self, tenant_id: str, database: str) -> None:
        try:
            if self.repo.get(tenant_id) is not None:
                # Created again meanwhile: the database is the new tenant's now.
                log.info("not dropping %s again: tenant %s was created again", database, tenant_id)
                return
            if database in self.repo.database_names():
                self.repo.client.drop_database(database)
                log.warning("dropped %s again: a process wrote to it after the tenant was deleted",
                            database)
        except Exception:  # the client may be closed by a shutdown meanwhile
            log.warning("could not check %s after deleting its tenant", database, exc_info=True)

    # ---- keys ------------------------------------------------------------------------
    def create_key(self, tenant_id: str, spec: KeyIn) -> KeyCreated:
        self._doc(tenant_id)
        key = new_key(tenant_id)
        doc: Document = {"_id": digest(key), "key_id": key_id_of(key), "tenant": tenant_id,
                         "scope": spec.scope, "name": spec.name, "created_at": datetime.now(UTC),
                         "revoked_at": None}
        self.repo.insert_key(doc)
        self.directory.refresh()
        return KeyCreated(key=key, **_key_fields(doc))

    def keys(self, tenant_id: str) -> list[KeyOut]:
        self._doc(tenant_id)
        return [KeyOut(**_key_fields(d)) for d in self.repo.keys_of(tenant_id)]

    def revoke_key(self, tenant_id: str, key_id: str) -> KeyOut:
        self._doc(tenant_id)
        if not self.repo.revoke_key(tenant_id, key_id, datetime.now(UTC)):
            raise NotFoundError(f"tenant {tenant_id!r} has no live key {key_id!r}")
        self.directory.refresh()
        doc = next(d for d in self.repo.keys_of(tenant_id) if d["key_id"] == key_id)
        return KeyOut(**_key_fields(doc))

    # ---- helpers ---------------------------------------------------------------------
    def _default_doc(self) -> Document:
        return {"_id": DEFAULT_TENANT, "name": "the deployment's own tenant (FASTINSIGHT_ settings)",
                "status": "active", "database": self.settings.mongodb_db, "created_at": None}

    def _doc(self, tenant_id: str) -> Document:
        if tenant_id == DEFAULT_TENANT:
            return self._default_doc()
        doc = self.repo.get(tenant_id)
        if doc is None:
            raise NotFoundError(f"tenant {tenant_id!r} does not exist")
        return doc

    def _changeable(self, tenant_id: str) -> None:
        if tenant_id == DEFAULT_TENANT:
            raise Conflict("the default tenant is configured through the FASTINSIGHT_ settings "
                           "of the deployment, not here")
        self._doc(tenant_id)

    def _reload(self, tenant_id: str) -> None:
        """New settings, quotas or status: serve them from the next request on."""
        self.directory.refresh()
        self.unload(tenant_id)

    def _out(self, doc: Document, usage: bool = False) -> TenantOut:
        tenant_id = str(doc["_id"])
        return TenantOut(
            id=tenant_id, name=str(doc.get("name", "")), status=doc.get("status", "active"),
            database=str(doc["database"]), created_at=doc.get("created_at"),
            settings=TenantSettings(**(doc.get("settings") or {})),
            quotas=TenantQuotas(**(doc.get("quotas") or {})),
            limits=TenantLimits(**(doc.get("limits") or {})),
            usage=self.usage(tenant_id, str(doc["database"])) if usage else None)

    def usage(self, tenant_id: str, database: str) -> TenantUsage:
        db = self.repo.client[database]
        counts = {name: int(db[name].estimated_document_count()) for name in (USERS, ITEMS, INTERACTIONS)}
        try:
            size: int | None = int(db.command("dbStats").get("dataSize", 0))
        except Exception:  # a server without dbStats: usage without the size
            size = None
        process = self.process_usage(tenant_id)
        return TenantUsage(users=counts[USERS], items=counts[ITEMS], interactions=counts[INTERACTIONS],
                           storage_bytes=size, **process)


def _key_fields(doc: Document) -> dict[str, Any]:
    return {"key_id": doc["key_id"], "tenant": doc["tenant"], "scope": doc["scope"],
            "name": doc.get("name", ""), "created_at": doc["created_at"],
            "revoked_at": doc.get("revoked_at")}
