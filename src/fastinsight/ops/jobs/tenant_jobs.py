"""Jobs per tenant: each tenant's paths, allowed kinds and schedules, for the API's job
services and for ``fastinsight scheduler``.

A tenant other than the default keeps its backups under ``<backup dir>/tenants/<id>``,
may run ``TENANT_JOB_KINDS`` only, and is scheduled by its own ``settings.schedules``
or, when it has none, by the deployment's schedules of those kinds. The scheduler runs
one :class:`Scheduler` over every active tenant (schedule names ``<tenant>/<job>``),
rebuilt when tenants come and go; one job of a kind runs per tenant at a time (its
lock), and ``job_max_concurrent`` over all tenants (the shared slots).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from fastinsight.config import Settings
from fastinsight.ops.jobs.kinds import JOB_KINDS, TENANT_JOB_KINDS, Paths
from fastinsight.ops.jobs.runner import JobService, default_paths
from fastinsight.ops.jobs.scheduler import Schedule, Scheduler, parse_schedules
from fastinsight.ops.settings import OpsSettings
from fastinsight.services.tenancy.directory import TenantDirectory, TenantRecord
from fastinsight.services.tenancy.keys import DEFAULT_TENANT
from fastinsight.services.tenancy.settings import settings_for
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.jobs import JobStore

log = logging.getLogger(__name__)


def tenant_paths(tenant_settings: Settings, ops: OpsSettings, backup_root: Path, tenant: str) -> Paths:
    paths = default_paths(tenant_settings, ops)
    if tenant == DEFAULT_TENANT:
        return paths
    return dataclasses.replace(paths, backup_dir=backup_root / "tenants" / tenant)


def tenant_job_service(base: Settings, ops: OpsSettings, record: TenantRecord,
                       client: MongoClient[Document], slots: threading.Semaphore) -> JobService:
    settings = settings_for(base, record)
    return JobService(
        JobStore(client[record.database]), settings=settings, ops=ops,
        paths=tenant_paths(settings, ops, ops.backup_path(base).resolve(), record.id),
        kinds=JOB_KINDS if record.id == DEFAULT_TENANT else TENANT_JOB_KINDS, slots=slots)


def tenant_schedules(ops: OpsSettings, record: TenantRecord) -> list[Schedule]:
    """The tenant's schedules, named ``<tenant>/<job>`` (the default tenant's ``<job>``, as
    before tenancy)."""
    if record.id == DEFAULT_TENANT:
        return parse_schedules(ops.schedules)
    own = record.settings.get("schedules")
    config = dict(own) if own is not None else {
        name: cron for name, cron in ops.schedules.items() if name in TENANT_JOB_KINDS}
    return [Schedule(f"{record.id}/{s.name}", s.cron, s.args) for s in parse_schedules(config)]


class TenantScheduler:
    """Every active tenant's schedules in one loop; tenants reread every ``refresh_seconds``."""

    def __init__(self, base: Settings, ops: OpsSettings, directory: TenantDirectory,
                 client: MongoClient[Document], refresh_seconds: float = 60.0) -> None:
        self.base, self.ops, self.directory, self.client = base, ops, directory, client
        self.refresh_seconds = refresh_seconds
        self.slots = threading.BoundedSemaphore(base.job_max_concurrent)
        self.services: dict[str, JobService] = {}
        self._records: dict[str, TenantRecord] = {}
        self.scheduler = Scheduler([], self.submit)
        self._refreshed = float("-inf")

    def refresh(self) -> None:
        """Reread the tenants; keep the next run of every schedule that still exists."""
        self.directory.refresh()
        active = [r for r in self.directory.tenants() if r.status == "active"]
        for record in active:
            if self._records.get(record.id) != record:
                self.services[record.id] = tenant_job_service(self.base, self.ops, record,
                                                              self.client, self.slots)
                self.services[record.id].recover_stale()
                self._records[record.id] = record
        for gone in set(self.services) - {r.id for r in active}:
            self.services.pop(gone).shutdown(timeout=1.0)
            self._records.pop(gone, None)
        schedules = [s for record in active for s in tenant_schedules(self.ops, record)]
        previous = self.scheduler.next_run
        self.scheduler = Scheduler(schedules, self.submit)
        for name, when in previous.items():
            if name in self.scheduler.next_run:
                self.scheduler.next_run[name] = when
        self._refreshed = time.monotonic()
        log.info("scheduler: %d tenants, %d schedules", len(active), len(schedules))

    def submit(self, name: str, args: dict[str, Any]) -> object:
        tenant, job = name.split("/", 1) if "/" in name else (DEFAULT_TENANT, name)
        return self.services[tenant].submit(job, args, requested_by="scheduler")

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if time.monotonic() - self._refreshed >= self.refresh_seconds:
                try:
                    self.refresh()
                except Exception:  # the database may be down: keep the last schedules
                    log.exception("scheduler: could not reread the tenants")
            self.scheduler.run_pending()
            wait = min(self.scheduler.seconds_until_next(), self.refresh_seconds)
            stop.wait(wait + 0.01)

    def shutdown(self, timeout: float) -> None:
        for service in self.services.values():
            service.shutdown(timeout=timeout)
