"""What every tenant of an API process shares, around each tenant's :class:`Services`.

One MongoDB client (one connection pool) serves all tenants. The default tenant's
services are built and started at start-up exactly as before tenancy; other tenants'
are loaded on their first request (:class:`TenantPool`) and unloaded when the process's
bounds are reached. :meth:`Deployment.authorize` turns a key into the request's
principal, applying suspension and the tenant's rate limit.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

from fastinsight.api.composition import Services
from fastinsight.config import Settings
from fastinsight.errors import Forbidden, NotFoundError, RateLimited
from fastinsight.observability import TENANT_REQUESTS, forget_tenant
from fastinsight.ops.jobs.tenant_jobs import tenant_paths
from fastinsight.ops.settings import OpsSettings
from fastinsight.services.serving.background import Ticker
from fastinsight.services.tenancy.admin import TenantAdmin
from fastinsight.services.tenancy.directory import TenantDirectory, TenantRecord
from fastinsight.services.tenancy.keys import DEFAULT_TENANT, Principal, Scope
from fastinsight.services.tenancy.pool import TenantPool
from fastinsight.services.tenancy.ratelimit import RateLimiter
from fastinsight.services.tenancy.settings import settings_for, tenant_model_dir
from fastinsight.storage.mongo import connect
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.tenants import TenantRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deployment:
    settings: Settings
    client: MongoClient[Document]
    default: Services
    directory: TenantDirectory
    pool: TenantPool[Services]
    limiter: RateLimiter
    tenants: TenantAdmin
    job_slots: threading.Semaphore
    directory_poller: Ticker
    counts: Counter[tuple[str, str]]

    @classmethod
    def build(cls, settings: Settings) -> Deployment:
        client = connect(settings)
        ops = OpsSettings()
        slots = threading.BoundedSemaphore(settings.job_max_concurrent)
        default = Services.build(settings, client=client, job_slots=slots)
        repo = TenantRepository(client, settings.control_database)
        directory = TenantDirectory(settings, repo)
        backup_root = ops.backup_path(settings).resolve()
        counts: Counter[tuple[str, str]] = Counter()
        built: dict[str, TenantRecord] = {}

        def build_tenant(tenant_id: str) -> Services:
            record = directory.tenant(tenant_id)
            if record is None:
                raise NotFoundError(f"tenant {tenant_id!r} does not exist")
            built[tenant_id] = record
            tenant_settings = settings_for(settings, record)
            paths = tenant_paths(tenant_settings, ops, backup_root, tenant_id)
            return Services.build(tenant_settings, client=client, tenant=tenant_id,
                                  quotas=record.quotas, paths=paths, job_slots=slots)

        pool: TenantPool[Services] = TenantPool(
            build=build_tenant, start=lambda s: s.start(background=True),
            stop=lambda s, discard: s.stop(discard=discard), model_bytes=lambda s: s.model_bytes(),
            max_loaded=settings.tenant_max_loaded,
            max_bytes=int(settings.tenant_model_memory_mb * 2**20), pinned=DEFAULT_TENANT)

        def process_usage(tenant_id: str) -> dict[str, Any]:
            services = pool.loaded().get(tenant_id)
            return {"loaded": services is not None,
                    "model_bytes": services.model_bytes() if services is not None else 0,
                    "requests": counts[(tenant_id, "ok")],
                    "rate_limited": counts[(tenant_id, "rate_limited")]}

        admin = TenantAdmin(settings, repo, directory, backup_root, process_usage,
                            lambda tenant: pool.unload(tenant, discard=True))
        poller = Ticker("tenant-directory", lambda: settings.tenant_cache_seconds,
                        lambda: _refresh(directory, pool, built), max_backoff=5)
        return cls(settings=settings, client=client, default=default, directory=directory,
                   pool=pool, limiter=RateLimiter(), tenants=admin, job_slots=slots,
                   directory_poller=poller, counts=counts)

    def start(self) -> None:
        self.default.start()
        self.pool.put(DEFAULT_TENANT, self.default)
        try:
            self.directory.refresh()
        except Exception:  # the database may be down at start-up; the poller retries
            log.warning("tenants: could not read the tenant directory yet", exc_info=True)
        self.directory_poller.start()

    def stop(self) -> None:
        self.directory_poller.stop()
        self.pool.stop_all()  # the default tenant's services included
        self.client.close()

    # ---- requests --------------------------------------------------------------------
    def authorize(self, key: str | None) -> Principal:
        """The principal of ``key``: 401 if missing or unknown, 403 if its tenant is
        suspended, 429 (``RateLimited``) past the tenant's rate limit."""
        from fastapi import HTTPException

        if not key:
            raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
        principal = self.directory.authenticate(key)
        if principal is None:
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
        if principal.scope is Scope.OPERATOR:
            return principal
        record = self.directory.tenant(principal.tenant)
        if record is None:
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
        if record.status != "active":
            raise Forbidden(f"tenant {record.id!r} is suspended; ask the operator")
        self._limit(record)
        return principal

    def _limit(self, record: TenantRecord) -> None:
        rate = record.limits.get("requests_per_second")
        if rate is None and record.id != DEFAULT_TENANT:
            rate = self.settings.tenant_rate_limit
        if rate is None:
            self._count(record.id, "ok")
            return
        burst = float(record.limits.get("burst") or max(1.0, rate))
        try:
            self.limiter.take(record.id, float(rate), burst)
        except RateLimited:
            self._count(record.id, "rate_limited")
            raise
        self._count(record.id, "ok")

    def _count(self, tenant: str, outcome: str) -> None:
        self.counts[(tenant, outcome)] += 1
        TENANT_REQUESTS.labels(tenant=tenant, outcome=outcome).inc()


def _refresh(directory: TenantDirectory, pool: TenantPool[Services],
             built: dict[str, TenantRecord]) -> None:
    """The directory poller's step: reread tenants and keys; unload tenants that were
    deleted, suspended or changed since they were loaded (by this process or another),
    so the next request loads them with what is stored now."""
    directory.refresh()
    for tenant in list(pool.loaded()):
        if tenant != DEFAULT_TENANT and directory.tenant(tenant) != built.get(tenant):
            pool.unload(tenant, discard=directory.tenant(tenant) is None)
    for tenant in list(built):
        if directory.tenant(tenant) is None:  # deleted, perhaps through another process
            built.pop(tenant, None)
            _remove_model_copies(directory.settings, tenant)
            forget_tenant(tenant)


def _remove_model_copies(settings: Settings, tenant: str) -> None:
    """This host's copies of a deleted tenant's model files (the deleting process removes
    its own host's; every other host's processes remove theirs here)."""
    folder = tenant_model_dir(settings, tenant)
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        log.info("tenant %s deleted: removed this host's model copies in %s", tenant, folder)
