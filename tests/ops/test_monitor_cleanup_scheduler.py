"""Monitor thresholds, log/model/job clean-up and the scheduler with an injected clock."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fastinsight.config import Settings
from fastinsight.errors import Conflict
from fastinsight.ops.cleanup import clean_logs, expire_jobs, prune_model_versions, prune_tombstones
from fastinsight.ops.jobs.scheduler import Schedule, Scheduler, parse_schedules
from fastinsight.ops.monitor import Thresholds, run_monitor, summarize_metrics
from fastinsight.storage.mongo.models import CHUNKS, ModelVersionRepository
from tests.ops.conftest import SCRIPTS, Db, cli_env

METRICS = """# HELP fastinsight_http_requests_total HTTP requests.
# TYPE fastinsight_http_requests_total counter
fastinsight_http_requests_total{method="GET",route="/x",status="200"} 7.0
fastinsight_http_requests_total{method="GET",route="/x",status="503"} 2.0
# HELP fastinsight_job_outcomes_total Jobs.
# TYPE fastinsight_job_outcomes_total counter
fastinsight_job_outcomes_total{name="backup",status="failed"} 1.0
"""


@pytest.fixture()
def fake_api() -> Iterator[tuple[str, dict[str, int]]]:
    """A loopback HTTP server whose /health/ready status the test controls."""
    state = {"ready": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = METRICS.encode() if self.path == "/metrics" else b'{"status":"ok"}'
            status = state["ready"] if self.path == "/health/ready" else 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


# ---- monitor ----------------------------------------------------------------------------
def test_monitor_samples_host_and_api_and_flags_thresholds(
    fake_api: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    url, state = fake_api
    log = tmp_path / "monitor.jsonl"
    generous = Thresholds(max_cpu_pct=100, max_mem_pct=100, max_disk_pct=100, max_load_per_cpu=1000)
    [ok] = run_monitor(api_url=url, log_path=log, limits=generous, cpu_interval=0.2)
    assert ok.warnings == []
    assert ok.api is not None and ok.api.ready and ok.api.status == 200
    assert ok.api.metrics == {"http_requests_total": 9.0, "http_5xx_total": 2.0, "job_outcomes_total": 1.0}
    assert 0 <= ok.cpu_pct <= 100 and 0 < ok.mem_pct < 100 and ok.mem_total_bytes > 0

    state["ready"] = 503
    tight = generous.model_copy(update={"max_disk_pct": 0.0})
    [bad] = run_monitor(api_url=url, log_path=log, limits=tight, cpu_interval=0.2)
    assert any(w.startswith("disk ") for w in bad.warnings)
    assert any("not ready (HTTP 503)" in w for w in bad.warnings)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["warnings"] == [] and len(lines[1]["warnings"]) == 2


def test_monitor_script_check_mode_exit_codes(settings: Settings, tmp_path: Path) -> None:
    env = cli_env(settings)
    log = tmp_path / "m.jsonl"
    base = [str(SCRIPTS / "monitor.sh"), "--no-api", "--log", str(log), "--check"]
    crossed = subprocess.run(
        [*base, "--max-disk-pct", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert crossed.returncode == 5, crossed.stderr
    assert "WARNING: disk" in crossed.stderr
    [line] = log.read_text().splitlines()
    assert any(w.startswith("disk ") for w in json.loads(line)["warnings"])
    usage = subprocess.run(
        [str(SCRIPTS / "monitor.sh"), "--samples", "0"], env=env, capture_output=True, text=True, timeout=10
    )
    assert usage.returncode == 2 and "positive integer" in usage.stderr


def test_metrics_summary_ignores_unrelated_families() -> None:
    assert summarize_metrics("# TYPE other_total counter\nother_total 5\n") == {}


# ---- clean-up ---------------------------------------------------------------------------
def _touch(path: Path, size: int, age_days: float, now: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = (now - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))


def test_clean_logs_rotates_expires_and_reports_bytes_freed(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _touch(tmp_path / "api.log", 5000, 0, now)  # live, big: rotated
    _touch(tmp_path / "monitor.jsonl", 100, 0, now)  # live, small: untouched
    _touch(tmp_path / "idle.log", 300, 30, now)  # live but expired: truncated
    _touch(tmp_path / "api.log.2.gz", 700, 30, now)  # rotated, expired: deleted
    _touch(tmp_path / "jobs" / "abc.log", 400, 30, now)  # finished job log: deleted
    _touch(tmp_path / "jobs" / "new.log", 50, 1, now)  # recent: kept

    dry = clean_logs(tmp_path, keep_days=14, rotate_bytes=1024, now=now, dry_run=True)
    assert dry.bytes_freed == 300 + 700 + 400 and (tmp_path / "api.log.2.gz").exists()

    report = clean_logs(tmp_path, keep_days=14, rotate_bytes=1024, now=now)
    assert report.rotated == [str(tmp_path / "api.log")]
    assert sorted(Path(p.split(" ")[0]).name for p in report.deleted) == [
        "abc.log",
        "api.log.2.gz",
        "idle.log",
    ]
    assert (tmp_path / "api.log").stat().st_size == 0
    assert (tmp_path / "idle.log").exists() and (tmp_path / "idle.log").stat().st_size == 0
    [rotated] = tmp_path.glob("api.log.*.gz")
    assert gzip.decompress(rotated.read_bytes()) == b"x" * 5000
    assert report.bytes_freed == 5000 + 300 + 700 + 400 - rotated.stat().st_size
    assert (tmp_path / "monitor.jsonl").stat().st_size == 100
    assert (tmp_path / "jobs" / "new.log").exists()


def test_prune_model_versions_keeps_active_and_newest(db: Db, tmp_path: Path) -> None:
    repo = ModelVersionRepository(db)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(5):
        art = tmp_path / f"v{i}"
        art.mkdir()
        (art / "arrays.npz").write_bytes(bytes([i]) * 1000)
        repo.save({"version": f"v{i}", "created_at": base + timedelta(days=i)}, art)
    repo.activate("v0")  # an old version is serving (e.g. after a roll-back)
    ghost = tmp_path / "ghost"
    ghost.mkdir()
    (ghost / "arrays.npz").write_bytes(b"orphan")
    repo.save({"version": "ghost", "created_at": base}, ghost)
    db.model_versions.delete_one({"_id": "ghost"})  # an interrupted save: chunks, no document
    db[CHUNKS].update_many({"version": "ghost"}, {"$set": {"uploaded_at": base}})

    report = prune_model_versions(db, keep=2, now=base + timedelta(days=30))

    # keep=2 counts the active version: it and the newest other stay.
    assert report.kept == ["v0", "v4"]
    assert sorted(report.deleted) == ["v1", "v2", "v3"]
    assert report.orphan_files_deleted == 1
    assert sorted(str(d["_id"]) for d in db.model_versions.find({})) == ["v0", "v4"]
    versions = sorted({c["version"] for c in db[CHUNKS].find({}, {"version": 1})})
    assert versions == ["v0", "v4"]
    assert db[CHUNKS].count_documents({}) == 2


def test_prune_tombstones_keeps_what_serving_processes_still_need(db: Db) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    now = base + timedelta(days=30)
    for name, taken in (("v_old", base + timedelta(days=1)), ("v_new", base + timedelta(days=10))):
        db.model_versions.insert_one({"_id": name, "created_at": taken, "snapshot": {"taken_at": taken}})
    db.user_erasures.insert_many([
        {"_id": "before_every_version", "erased_at": base},
        {"_id": "inside_v_old", "erased_at": base + timedelta(days=5)},  # v_old holds the row
        {"_id": "recent", "erased_at": now - timedelta(hours=1)},
    ])
    db.item_deletions.insert_many([
        {"_id": "old_item", "deleted_at": now - timedelta(days=3)},
        {"_id": "new_item", "deleted_at": now - timedelta(hours=1)},
    ])

    db.item_changes.insert_many([{"at": now - timedelta(days=3), "item_ids": ["a"]},
                                 {"at": now - timedelta(hours=1), "item_ids": ["b"]}])

    dry = prune_tombstones(db, now=now, dry_run=True)
    assert (dry.user_erasures, dry.item_deletions, dry.item_changes) == (1, 1, 1)
    assert db.item_changes.count_documents({}) == 2
    assert db.user_erasures.count_documents({}) == 3 and db.item_deletions.count_documents({}) == 2

    report = prune_tombstones(db, now=now)
    assert (report.user_erasures, report.item_deletions) == (1, 1)
    assert report.erasures_kept_from == base + timedelta(days=1)
    assert sorted(d["_id"] for d in db.user_erasures.find({})) == ["inside_v_old", "recent"]
    assert [d["_id"] for d in db.item_deletions.find({})] == ["new_item"]
    assert report.item_changes == 1 and [d["item_ids"] for d in db.item_changes.find({})] == [["b"]]

    # Once v_old is gone (pruned), only the grace period holds the erasure back.
    db.model_versions.delete_one({"_id": "v_old"})
    assert prune_tombstones(db, now=now).user_erasures == 1
    assert [d["_id"] for d in db.user_erasures.find({})] == ["recent"]

    # A version without a recorded snapshot could hold anyone's row: keep every erasure.
    db.model_versions.insert_one({"_id": "legacy", "created_at": base})
    assert prune_tombstones(db, now=now + timedelta(days=5)).user_erasures == 0
    assert db.user_erasures.count_documents({}) == 1


def test_expire_jobs_deletes_only_old_finished_records(db: Db) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    db.jobs.insert_many(
        [
            {"_id": "a", "status": "succeeded", "finished_at": old},
            {"_id": "b", "status": "timed_out", "finished_at": old},
            {"_id": "c", "status": "failed", "finished_at": recent},
            {"_id": "d", "status": "running", "created_at": old},
        ]
    )
    assert expire_jobs(db, keep_days=30, now=now, dry_run=True) == 2
    assert expire_jobs(db, keep_days=30, now=now) == 2
    assert sorted(d["_id"] for d in db.jobs.find({})) == ["c", "d"]


# ---- scheduler --------------------------------------------------------------------------
class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_scheduler_fires_on_cron_times_and_skips_busy_jobs() -> None:
    clock = Clock(datetime(2024, 3, 1, 2, 59, 30, tzinfo=UTC))
    submitted: list[tuple[str, dict[str, Any]]] = []
    busy = {"retrain"}

    def submit(name: str, args: dict[str, Any]) -> None:
        if name in busy:
            raise Conflict(f"a {name} job is already running")
        submitted.append((name, args))

    schedules = [
        Schedule("backup", "0 3 * * *", {"pause_writes": True}),
        Schedule("retrain", "15 * * * *"),
        Schedule("cleanup_logs", "30 4 * * *"),
    ]
    sched = Scheduler(schedules, submit, clock=clock)
    assert sched.run_pending() == []
    assert sched.seconds_until_next() == 30.0

    clock.now = datetime(2024, 3, 1, 3, 0, 0, tzinfo=UTC)
    fired = sched.run_pending()
    assert [(f.name, f.outcome) for f in fired] == [("backup", "submitted")]
    assert submitted == [("backup", {"pause_writes": True})]
    assert sched.next_run["backup"] == datetime(2024, 3, 2, 3, 0, tzinfo=UTC)

    clock.now = datetime(2024, 3, 1, 3, 15, 0, tzinfo=UTC)
    [retrain] = sched.run_pending()
    assert retrain.outcome.startswith("skipped: a retrain job is already running")

    # Down for two days: every overdue schedule fires once, then re-arms from now.
    clock.now = datetime(2024, 3, 3, 12, 0, 0, tzinfo=UTC)
    busy.clear()
    names = sorted(f.name for f in sched.run_pending())
    assert names == ["backup", "cleanup_logs", "retrain"]
    assert sched.next_run["backup"] == datetime(2024, 3, 4, 3, 0, tzinfo=UTC)
    assert sched.next_run["retrain"] == datetime(2024, 3, 3, 12, 15, tzinfo=UTC)
    assert sched.run_pending() == []


def test_schedule_parsing() -> None:
    parsed = parse_schedules(
        {"backup": "0 3 * * *", "monitor": "", "retrain": "15 * * * *"}, {"backup": {"keep": 3}}
    )
    assert [(s.name, s.args) for s in parsed] == [("backup", {"keep": 3}), ("retrain", {})]
    with pytest.raises(ValueError, match="invalid cron"):
        Schedule("backup", "every night")
