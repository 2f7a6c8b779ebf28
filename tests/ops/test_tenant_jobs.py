"""The scheduler runs every tenant's jobs in the tenant's own database and folders, one
kind per tenant at a time and at most ``job_max_concurrent`` over all tenants."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from fastinsight.config import Settings
from fastinsight.ops.jobs.tenant_jobs import TenantScheduler, tenant_schedules
from fastinsight.schemas.tenants import KeyIn, TenantIn, TenantSettings
from fastinsight.services.tenancy.admin import TenantAdmin
from fastinsight.services.tenancy.directory import TenantDirectory
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.tenants import TenantRepository
from tests.api.tenants import drop_deployment
from tests.ops.conftest import CLI, ops_settings


def test_each_tenant_is_scheduled_in_its_own_database_within_the_global_bound(
    settings: Settings, mongo_uri: str, db_name: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("FASTINSIGHT_BIN", str(CLI))
    settings = settings.model_copy(update={"job_max_concurrent": 1})
    ops = ops_settings(schedules={"backup": "0 3 * * *", "monitor": ""},
                       scripts_dir=Path(__file__).resolve().parents[2] / "scripts")
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        apply_indexes(client[db_name])
        repo = TenantRepository(client, f"{db_name}_control")
        directory = TenantDirectory(settings, repo)
        admin = TenantAdmin(settings, repo, directory, tmp_path / "var" / "backups",
                            lambda _t: {"loaded": False, "model_bytes": 0, "requests": 0,
                                        "rate_limited": 0}, lambda _t: None)
        admin.create(TenantIn(id="own", settings=TenantSettings(schedules={"backup": "*/5 * * * *",
                                                                           "retrain": ""})))
        admin.create(TenantIn(id="inherits"))
        admin.create(TenantIn(id="paused"))
        admin.create_key("own", KeyIn(scope="api"))
        admin.set_status("paused", "suspended")
        for tenant in ("own", "inherits"):
            client[f"{db_name}_t_{tenant}"]["users"].insert_one({"_id": f"{tenant}-u", "user_id": f"{tenant}-u"})

        scheduler = TenantScheduler(settings, ops, directory, client)
        scheduler.refresh()
        crons = {s.name: s.cron for s in scheduler.scheduler.schedules}
        assert crons == {"backup": "0 3 * * *", "own/backup": "*/5 * * * *",
                         "inherits/backup": "0 3 * * *"}  # the suspended tenant: nothing
        assert tenant_schedules(ops, directory.tenant("own")) [0].name == "own/backup"  # type: ignore[arg-type]

        sched = scheduler.scheduler
        sched.next_run = dict.fromkeys(sched.next_run, sched.clock())
        fired = sched.run_pending()
        assert {f.name: f.outcome for f in fired} == dict.fromkeys(crons, "submitted")
        finished = [s.wait(job, timeout=120) for s in scheduler.services.values() for job in s.active_ids()]
        assert [r.status for r in finished] == ["succeeded"] * 3, [r.error for r in finished]
        # One at a time over all tenants (job_max_concurrent = 1): the runs never overlap.
        spans = sorted((r.started_at, r.finished_at) for r in finished)
        assert all(isinstance(a, datetime) and isinstance(b, datetime) for a, b in spans)
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans  # type: ignore[operator]
        # Each tenant's archive is of its own database, in its own folder.
        for tenant in ("own", "inherits"):
            archives = list((tmp_path / "var" / "backups" / "tenants" / tenant).glob("*.tar.gz"))
            assert [a.name.startswith(f"fastinsight-{db_name}_t_{tenant}-") for a in archives] == [True]
            assert client[f"{db_name}_t_{tenant}"]["jobs"].count_documents({"name": "backup"}) == 1
        assert client[db_name]["jobs"].count_documents({"name": "backup"}) == 1
        scheduler.shutdown(timeout=5)
    finally:
        client.close()
        drop_deployment(mongo_uri, db_name)
