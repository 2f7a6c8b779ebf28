"""A tenant's effective settings: the deployment's, with the tenant's own on top."""

from __future__ import annotations

from pathlib import Path

from fastinsight.config import Settings
from fastinsight.services.tenancy.directory import TenantRecord
from fastinsight.services.tenancy.keys import DEFAULT_TENANT

NOT_SERVING = frozenset({"schedules"})  # read by the scheduler (ops.jobs.tenant_jobs)


def tenant_model_dir(base: Settings, tenant_id: str) -> Path:
    """Where this host keeps copies of another tenant's model files."""
    return (base.model_cache_dir or base.var_dir / "models") / "tenants" / tenant_id


def settings_for(base: Settings, record: TenantRecord) -> Settings:
    """The default tenant runs on ``base`` unchanged. Another tenant gets its database, its
    own folders for model copies and job logs, its settings (validated when they were
    set, see ``schemas.tenants.TenantSettings``) and the slower tenant poll interval."""
    if record.id == DEFAULT_TENANT:
        return base
    poll = base.tenant_poll_seconds
    own = {name: value for name, value in record.settings.items() if name not in NOT_SERVING}
    update = {
        **own,
        "mongodb_db": record.database,
        "model_cache_dir": tenant_model_dir(base, record.id),
        "log_dir": base.log_dir / "tenants" / record.id,
        "model_poll_seconds": max(base.model_poll_seconds, poll),
        "realtime_poll_seconds": max(base.realtime_poll_seconds, poll),
        "experiment_poll_seconds": max(base.experiment_poll_seconds, poll),
    }
    return base.model_copy(update=update)
