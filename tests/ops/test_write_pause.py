"""A "writes-paused" backup is consistent: every writer honours the pause (issue 18, item 7).

While a backup holds the pause flag, each writer is refused: through HTTP with 503 and
``Retry-After``, from the CLI with a clear error, from a service call with
``Unavailable``. What the dump reads (every collection but the runtime locks) does not
change. Writers: model activation (API and any other path), training (CLI, retrain
jobs, ``POST /v1/admin/train``), every other job, insights refresh, segment rebuilds,
CLI imports and clean-up, and the data routes (``tests/api/test_errors_auth.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fastinsight.config import Settings
from fastinsight.errors import Unavailable
from fastinsight.ops.dump import RUNTIME_COLLECTIONS
from fastinsight.ops.maintenance import writes_paused
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.segments import SegmentService
from fastinsight.services.training.pipeline import check_and_activate, train
from fastinsight.storage.mongo.models import ModelVersionRepository
from tests.api.test_recommend import seed
from tests.conftest import services_of
from tests.ops.conftest import CLI, Db, cli_env, fingerprint, populate

ADMIN = {"X-API-Key": "test-admin-key"}
GATE_TTL = 1.1  # the API's gate re-reads the flag at most once a second


def _dumped(db: Db) -> dict[str, tuple[int, str]]:
    """What a backup reads: every collection but the runtime ones."""
    return {k: v for k, v in fingerprint(db).items() if k not in RUNTIME_COLLECTIONS}


def _refused(response: object) -> None:
    assert response.status_code == 503, response.text  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == "5"  # type: ignore[attr-defined]
    assert "paused for maintenance (backup)" in response.json()["message"]  # type: ignore[attr-defined]


def test_while_a_backup_pauses_writes_every_writer_is_refused_and_nothing_changes(
    client: TestClient, db: Db, settings: Settings, tmp_path: Path
) -> None:
    seed(db, settings)
    v1 = train(db, settings, "als", {"factors": 8, "iterations": 5}, evaluate=False)["version"]
    v2 = train(db, settings, "als", {"factors": 8, "iterations": 6}, evaluate=False,
               activate=False)["version"]
    services = services_of(client)
    services.insights.refresh(wait=True)
    repo = ModelVersionRepository(db)

    with writes_paused(db, "backup", grace_seconds=0):
        time.sleep(GATE_TTL)
        before = _dumped(db)

        # Through HTTP: 503 with Retry-After.
        _refused(client.post(f"/v1/admin/models/{v2}/activate", headers=ADMIN))
        _refused(client.post("/v1/admin/train", headers=ADMIN, json={"algorithm": "popularity"}))
        _refused(client.post("/v1/admin/jobs", headers=ADMIN, json={"name": "retrain"}))
        _refused(client.post("/v1/admin/jobs", headers=ADMIN, json={"name": "monitor"}))
        _refused(client.post("/v1/admin/insights/refresh", headers=ADMIN, params={"wait": True}))
        _refused(client.post("/v1/admin/segments/rebuild", headers=ADMIN))
        assert client.get("/v1/admin/models", headers=ADMIN).status_code == 200  # reads go on

        # The same writers called without the API (the CLI, jobs, the scheduler).
        for attempt in (
            lambda: check_and_activate(db, settings, v2, "roll-forward"),
            lambda: services.model_admin.activate(v2),
            lambda: train(db, settings, "popularity", evaluate=False),
            lambda: InsightsService(db).refresh(wait=True),
            lambda: SegmentService(db, InsightsService(db)).rebuild(None, wait=True),
            lambda: services.jobs.submit("retrain", {}),
        ):
            with pytest.raises(Unavailable, match="paused for maintenance"):
                attempt()

        # The command line says why and exits non-zero.
        env = cli_env(settings)
        users = tmp_path / "users.json"
        users.write_text('[{"user_id": "during-backup"}]')
        for argv in (["train", "--algorithm", "popularity", "--no-evaluate"], ["insights", "refresh"],
                     ["import", "users", str(users)], ["cleanup", "--model-keep", "2"]):
            done = subprocess.run([str(CLI), *argv], env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 1, (argv, done.stdout, done.stderr)
            assert "writes are paused for maintenance" in " ".join(done.stderr.split()), done.stderr

        assert _dumped(db) == before
        assert repo.active_version() == v1

    time.sleep(GATE_TTL)
    assert client.post(f"/v1/admin/models/{v2}/activate", headers=ADMIN).status_code == 200
    assert repo.active_version() == v2


def test_a_backup_killed_by_its_timeout_lifts_its_write_pause(client: TestClient, db: Db) -> None:
    """The job's timeout SIGTERMs the backup in the middle of its pause: writes must come
    back (they used to stay paused until the flag was deleted by hand)."""
    from tests.ops.test_jobs import ADMIN, _wait_api

    populate(db, users=3, items=2, interactions=5)
    started = client.post("/v1/admin/jobs", headers=ADMIN, json={
        "name": "backup", "args": {"pause_writes": True}, "timeout_seconds": 1})
    assert started.status_code == 202, started.text
    done = _wait_api(client, started.json()["id"])
    assert done["status"] == "timed_out", done
    assert db["service_state"].find_one({"_id": "maintenance"}) is None
    r = client.post("/v1/users", json={"user_id": "after-the-backup"})
    assert r.status_code == 201, r.text


def test_a_pause_whose_owner_on_this_host_is_gone_is_reclaimed(db: Db) -> None:
    from fastinsight.ops.maintenance import read_flag, reclaim_abandoned_pause
    from fastinsight.storage.mongo.maintenance import set_pause_flag

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    for owner, reclaimed in ((f"{host}:{os.getpid()}", False), (f"elsewhere:{gone.pid}", False),
                             (f"{host}:{gone.pid}", True)):
        set_pause_flag(db, {"reason": "backup", "owner": owner})
        assert reclaim_abandoned_pause(db) is reclaimed, owner
        assert (read_flag(db) is None) is reclaimed
    assert reclaim_abandoned_pause(db) is False  # no flag: nothing to do
