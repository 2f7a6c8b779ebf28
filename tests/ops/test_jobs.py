"""Job runner: allowlist and argument validation, admin scope, per-kind lock, timeout, recovery."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from fastinsight.config import Settings
from fastinsight.errors import Conflict, ValidationFailed
from fastinsight.ops.jobs.kinds import JobArgs, JobKind, Paths
from fastinsight.ops.jobs.process import pid_alive
from fastinsight.ops.jobs.runner import JobService
from fastinsight.storage.mongo.jobs import JobStore
from tests.ops.conftest import Db, ops_settings, populate

ADMIN = {"X-API-Key": "test-admin-key"}

# Prints its own pid and a grandchild's pid, then sleeps: the timeout must kill both.
# A sleeper that finishes on its own stops its grandchild, so no test leaves one behind.
SLEEPER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(f"pid={__import__('os').getpid()} grandchild={child.pid} nice={__import__('os').nice(0)}", flush=True)
time.sleep(float(sys.argv[1]))
child.kill()
child.wait()
print("done", flush=True)
"""


class SleepArgs(JobArgs):
    seconds: float = Field(ge=0, le=60)


def _sleep_argv(args: JobArgs, paths: Paths) -> list[str]:
    assert isinstance(args, SleepArgs)
    return [sys.executable, "-c", SLEEPER, str(args.seconds)]


def _service(db: Db, settings: Settings, **ops: Any) -> JobService:
    kinds = {"sleep": JobKind("sleep", SleepArgs, _sleep_argv, "test sleeper")}
    paths = Paths(scripts_dir=Path("/nonexistent"), cli=Path(sys.executable), backup_dir=Path())
    return JobService(
        JobStore(db),
        settings=settings,
        ops=ops_settings(job_heartbeat_seconds=0.2, **ops),
        paths=paths,
        kinds=kinds,
        kill_grace=1.0,
    )


def _wait_api(client: TestClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/admin/jobs/{job_id}", headers=ADMIN).json()
        if body["status"] != "running":
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


# ---- API ------------------------------------------------------------------------------
def test_api_rejects_unknown_names_bad_args_and_non_admin_keys(client: TestClient) -> None:
    unknown = client.post("/v1/admin/jobs", json={"name": "rm_rf", "args": {}}, headers=ADMIN)
    assert unknown.status_code == 422
    assert unknown.json()["details"][0]["field"] == "name"
    assert "allowed: backup, cleanup_logs, monitor, restore, retrain" in unknown.json()["message"]

    bad = client.post("/v1/admin/jobs", json={"name": "backup", "args": {"keep": "lots"}}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "args.keep"
    extra = client.post(
        "/v1/admin/jobs", json={"name": "backup", "args": {"cmd": "; rm -rf /"}}, headers=ADMIN
    )
    assert extra.status_code == 422
    assert extra.json()["details"] == [{"field": "args.cmd", "message": "unknown field"}]
    sneaky = client.post(
        "/v1/admin/jobs",
        json={"name": "restore", "args": {"archive": "../../etc/passwd"}},
        headers=ADMIN,
    )
    assert sneaky.status_code == 422 and sneaky.json()["details"][0]["field"] == "args.archive"

    assert client.post("/v1/admin/jobs", json={"name": "backup"}).status_code == 403
    assert client.get("/v1/admin/jobs").status_code == 403
    assert client.get("/v1/admin/jobs", headers={"X-API-Key": ""}).status_code == 401
    assert client.get("/v1/admin/jobs/abc123", headers=ADMIN).status_code == 404


def test_api_backup_job_runs_the_script_and_a_second_one_gets_409(
    client: TestClient, db: Db, settings: Settings
) -> None:
    populate(db, users=3, items=2, interactions=5)
    # pause_writes holds the dump for a 2 s grace period, so the first job is surely running.
    first = client.post(
        "/v1/admin/jobs", json={"name": "backup", "args": {"pause_writes": True}}, headers=ADMIN
    )
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "running"
    second = client.post("/v1/admin/jobs", json={"name": "backup"}, headers=ADMIN)
    assert second.status_code == 409
    assert first.json()["id"] in second.json()["message"]

    done = _wait_api(client, first.json()["id"])
    assert done["status"] == "succeeded", done["output_tail"]
    assert done["exit_code"] == 0 and done["duration_seconds"] > 0
    archives = list((settings.var_dir / "backups").glob(f"fastinsight-{db.name}-*.tar.gz"))
    assert len(archives) == 1 and str(archives[0]) in done["output_tail"]
    listed = client.get("/v1/admin/jobs", params={"name": "backup"}, headers=ADMIN).json()
    assert [j["id"] for j in listed["items"]] == [first.json()["id"]]
    assert db.job_locks.find_one({"_id": "backup"}) is None  # released: the next may start


def test_api_job_exceeding_its_timeout_is_killed_and_marked(client: TestClient, db: Db) -> None:
    started = client.post(
        "/v1/admin/jobs",
        json={"name": "monitor", "args": {"samples": 100, "interval": 1, "api": False}, "timeout_seconds": 2},
        headers=ADMIN,
    )
    assert started.status_code == 202, started.text
    done = _wait_api(client, started.json()["id"], timeout=30)
    assert done["status"] == "timed_out"
    assert done["exit_code"] is not None and done["exit_code"] < 0  # killed by a signal
    assert "timeout" in done["error"]
    assert 2 <= done["duration_seconds"] < 15
    child = db.jobs.find_one({"_id": done["id"]})
    assert child is not None and not pid_alive(int(child["child_pid"]))


# ---- service ----------------------------------------------------------------------------
def test_timeout_kills_the_whole_process_group(db: Db, settings: Settings) -> None:
    service = _service(db, settings)
    record = service.submit("sleep", {"seconds": 30}, timeout_seconds=1.0)
    done = service.wait(record.id, timeout=20)
    assert done.status == "timed_out" and done.exit_code == -15
    pids = dict(part.split("=") for part in done.output_tail.split()[:2])
    assert not pid_alive(int(pids["pid"]))
    deadline = time.monotonic() + 5
    while pid_alive(int(pids["grandchild"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(int(pids["grandchild"]))
    assert db.job_locks.find_one({"_id": "sleep"}) is None


def test_success_failure_and_validation(db: Db, settings: Settings) -> None:
    service = _service(db, settings)
    ok = service.wait(service.submit("sleep", {"seconds": 0}).id, timeout=20)
    assert ok.status == "succeeded" and ok.exit_code == 0 and "done" in ok.output_tail
    assert "nice=10" in ok.output_tail  # job commands yield the CPU to serving (ops.job_nice)
    with pytest.raises(ValidationFailed) as err:
        service.submit("sleep", {"seconds": -1})
    assert err.value.details[0]["field"] == "args.seconds"
    with pytest.raises(ValidationFailed):
        service.submit("backup", {})  # not in this service's allowlist


def test_second_submit_of_a_running_kind_conflicts(db: Db, settings: Settings) -> None:
    service = _service(db, settings)
    first = service.submit("sleep", {"seconds": 1.0})
    with pytest.raises(Conflict, match=first.id):
        _service(db, settings).submit("sleep", {"seconds": 0})  # another process, same db
    assert service.wait(first.id, timeout=20).status == "succeeded"
    assert service.wait(service.submit("sleep", {"seconds": 0}).id, 20).status == "succeeded"


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_recover_marks_jobs_of_dead_owners_failed_and_frees_the_lock(db: Db, settings: Settings) -> None:
    now = datetime.now(UTC)
    host = socket.gethostname()

    def running(job_id: str, owner: dict[str, Any], heartbeat: datetime) -> None:
        db.jobs.insert_one(
            {
                "_id": job_id,
                "name": job_id,
                "args": {},
                "status": "running",
                "requested_by": "api",
                "created_at": now,
                "started_at": now,
                "heartbeat_at": heartbeat,
                "timeout_seconds": 60.0,
                "owner": owner,
            }
        )
        db.job_locks.insert_one({"_id": job_id, "job_id": job_id, "owner": owner, "acquired_at": now})

    running("dead_local", {"host": host, "pid": _dead_pid(), "instance": "old"}, now)
    running("reused_pid", {"host": host, "pid": os.getpid(), "instance": "previous-run"}, now)
    running("remote_stale", {"host": "elsewhere", "pid": 1, "instance": "x"}, now - timedelta(minutes=10))
    running("remote_fresh", {"host": "elsewhere", "pid": 1, "instance": "y"}, now)

    recovered = _service(db, settings, job_stale_seconds=60).recover_stale()

    assert sorted(recovered) == ["dead_local", "remote_stale", "reused_pid"]
    for job_id in recovered:
        doc = db.jobs.find_one({"_id": job_id})
        assert doc is not None and doc["status"] == "failed" and "died" in doc["error"]
        assert db.job_locks.find_one({"_id": job_id}) is None
    fresh = db.jobs.find_one({"_id": "remote_fresh"})
    assert fresh is not None and fresh["status"] == "running"
    assert db.job_locks.find_one({"_id": "remote_fresh"}) is not None


def test_record_dropped_by_a_restore_is_written_back(db: Db, settings: Settings) -> None:
    service = _service(db, settings)
    record = service.submit("sleep", {"seconds": 0.5})
    db.jobs.delete_many({})  # what a restore with --drop does to the running job's record
    done = service.wait(record.id, timeout=20)
    assert done.status == "succeeded" and done.name == "sleep" and "done" in done.output_tail


def test_write_gate_dependency_answers_503_while_writes_are_paused(client: TestClient, db: Db) -> None:
    from fastapi import Depends

    from fastinsight.api.deps import require_writable
    from fastinsight.api.security import require_api_key
    from fastinsight.ops.maintenance import FLAG_ID, STATE_COLLECTION

    def write() -> dict[str, bool]:
        return {"written": True}

    client.app.add_api_route(
        "/_test_write",
        write,
        methods=["POST"],  # type: ignore[attr-defined]
        dependencies=[Depends(require_api_key), Depends(require_writable)],  # the key names the tenant
    )
    assert client.post("/_test_write").json() == {"written": True}
    db[STATE_COLLECTION].insert_one({"_id": FLAG_ID, "read_only": True, "reason": "backup"})
    time.sleep(1.1)  # the gate re-reads the flag at most once a second
    paused = client.post("/_test_write")
    assert paused.status_code == 503 and paused.headers["Retry-After"] == "5"
    assert "paused for maintenance (backup)" in paused.json()["message"]


@pytest.mark.parametrize(("target", "refused"), [
    ("--drop", "pattern"), ("-x", "pattern"), ("{db}_t_shop", "another tenant"),
    ("{db}_control", "another tenant"),
])
def test_api_restore_targets_that_are_not_the_keys_to_take(
    client: TestClient, settings: Settings, target: str, refused: str
) -> None:
    """A target starting with "-" would be an option to the script; another tenant's
    database and the control database belong to the operator, not to this admin key."""
    name = target.format(db=settings.mongodb_db)
    r = client.post("/v1/admin/jobs", headers=ADMIN, json={
        "name": "restore", "args": {"archive": "latest", "target_db": name, "drop": True}})
    assert r.status_code == 422, r.text
    detail = r.json()["details"][0]
    assert detail["field"] == "args.target_db"
    assert refused in detail["message"] or (refused == "pattern" and "match" in detail["message"])
    assert client.get("/v1/admin/jobs", params={"name": "restore"}, headers=ADMIN).json()["items"] == []
