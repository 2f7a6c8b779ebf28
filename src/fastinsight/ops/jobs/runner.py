"""Operations jobs: run an allowlisted command in a subprocess and record it in MongoDB.

``submit`` validates the arguments, takes the per-kind lock (409 if held), refuses while
a backup pauses writes (503), writes the job record and starts a thread that runs the
command (argument list, no shell, own process group), heartbeats the record with the
output tail, kills the whole group on timeout and writes the final status.
``recover_stale`` marks runs whose owning process died as failed and releases their locks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fastinsight.config import Settings
from fastinsight.errors import Conflict, NotFoundError, Unavailable, ValidationFailed
from fastinsight.observability import JOB_OUTCOMES, JOB_SECONDS, JOBS_RUNNING
from fastinsight.ops.jobs.kinds import JOB_KINDS, JobKind, Paths
from fastinsight.ops.jobs.process import aware, kill_group, kill_orphan, pid_alive, tail_of
from fastinsight.ops.maintenance import reclaim_abandoned_pause
from fastinsight.ops.settings import OpsSettings
from fastinsight.schemas.jobs import JobRecord
from fastinsight.services.writes import ensure_writable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.jobs import JobStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Active:
    thread: threading.Thread
    proc: subprocess.Popen[bytes] | None = None


def default_paths(settings: Settings, ops: OpsSettings) -> Paths:
    """Scripts next to the source tree (or ``$PWD/scripts``), the CLI next to this Python."""
    scripts = ops.scripts_dir
    if scripts is None:
        packaged = Path(__file__).resolve().parents[3] / "scripts"
        scripts = packaged if (packaged / "backup.sh").is_file() else Path.cwd() / "scripts"
    cli = Path(sys.executable).with_name("fastinsight")
    backups = ops.backup_path(settings).resolve()
    return Paths(scripts_dir=scripts.resolve(), cli=cli, backup_dir=backups)


TENANT_SETTINGS = ("interaction_weights", "time_decay_half_life_days", "default_algorithm",
                   "boost_categories", "pinned_items", "max_per_category", "conversion_types",
                   "attribution_window_seconds")


def job_environment(settings: Settings, ops: OpsSettings, paths: Paths) -> dict[str, str]:
    """The child's environment: ours plus the settings this process actually runs with."""
    env = dict(os.environ)
    env.update(
        {
            "FASTINSIGHT_MONGODB_URI": settings.mongodb_uri,
            "FASTINSIGHT_MONGODB_DB": settings.mongodb_db,
            "FASTINSIGHT_VAR_DIR": str(settings.var_dir),
            "FASTINSIGHT_LOG_DIR": str(settings.log_dir),
            "FASTINSIGHT_BACKUP_DIR": str(paths.backup_dir),
            "FASTINSIGHT_BIN": str(paths.cli),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # A tenant's own settings (services.tenancy.settings) reach its jobs the same way.
    for name in TENANT_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            env[f"FASTINSIGHT_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    if settings.model_cache_dir is not None:
        env["FASTINSIGHT_MODEL_CACHE_DIR"] = str(settings.model_cache_dir)
    return env


class JobService:
    def __init__(
        self,
        store: JobStore,
        *,
        settings: Settings,
        ops: OpsSettings,
        paths: Paths | None = None,
        kinds: Mapping[str, JobKind] = JOB_KINDS,
        clock: Clock = utcnow,
        kill_grace: float = 5.0,
        slots: threading.Semaphore | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.ops = ops
        self.paths = paths or default_paths(settings, ops)
        self.kinds = kinds
        self.clock = clock
        self.kill_grace = kill_grace
        # Shared by the job services of every tenant of the process: at most that many
        # commands run at once; the others wait their turn as "queued".
        self.slots = slots
        self.env = job_environment(settings, ops, self.paths)
        self.log_dir = settings.log_dir / "jobs"
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "instance": uuid.uuid4().hex}
        self._active: dict[str, _Active] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()

    # ---- queries ---------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        doc = self.store.get(job_id)
        if doc is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return JobRecord.from_doc(doc)

    def recent(
        self, *, name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[JobRecord]:
        return [JobRecord.from_doc(d) for d in self.store.recent(name=name, status=status, limit=limit)]

    # ---- submit ----------------------------------------------------------------------
    def submit(
        self,
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_seconds: float | None = None,
        requested_by: str = "api",
    ) -> JobRecord:
        kind = self.kinds.get(name)
        if kind is None:
            allowed = ", ".join(sorted(self.kinds))
            raise ValidationFailed.field("name", f"unknown job {name!r}; allowed: {allowed}")
        try:
            parsed = kind.args_model.model_validate(dict(args or {}))
        except ValidationError as exc:
            details = [
                {
                    "field": ".".join(["args", *(str(p) for p in err["loc"])]),
                    "message": "unknown field" if err["type"] == "extra_forbidden" else err["msg"],
                }
                for err in exc.errors()
            ]
            summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
            raise ValidationFailed(f"invalid args for {name}: {summary}", details=details) from exc
        kind.check(parsed, self.settings)
        argv = kind.argv(parsed, self.paths)
        timeout = timeout_seconds or self.ops.job_timeouts.get(name, 3600.0)
        if self._stopping.is_set():
            raise Conflict("the job runner is shutting down")
        job_id = uuid.uuid4().hex
        now = self.clock()
        if not self.store.acquire_lock(name, job_id, self.owner, now):
            lock = self.store.get_lock(name) or {}
            raise Conflict(f"a {name} job is already running (job {lock.get('job_id', '?')})")
        try:
            # Every job writes (its record at least, and retrain/restore/cleanup much more):
            # none starts while a backup pauses writes. Locks are not part of a backup.
            ensure_writable(self.store.db, f"starting a {name} job")
        except Unavailable:
            self.store.release_lock(name, job_id)
            raise
        log_path = self.log_dir / f"{job_id}.log"
        doc: Document = {
            "_id": job_id,
            "name": name,
            "args": parsed.model_dump(mode="json"),
            "argv": argv,
            "status": "running",
            "requested_by": requested_by,
            "created_at": now,
            "started_at": now,
            "heartbeat_at": now,
            "timeout_seconds": float(timeout),
            "owner": self.owner,
            "log_path": str(log_path),
            "output_tail": "",
        }
        try:
            self.store.insert(doc)
        except Exception:
            self.store.release_lock(name, job_id)
            raise
        thread = threading.Thread(
            target=self._run,
            args=(doc,),
            name=f"job-{name}-{job_id[:8]}",
            daemon=True,
        )
        with self._guard:
            self._active[job_id] = _Active(thread=thread)
        JOBS_RUNNING.labels(name=name).inc()
        thread.start()
        log.info("job %s (%s) started by %s: %s", job_id, name, requested_by, argv)
        return JobRecord.from_doc(doc)

    def active_ids(self) -> list[str]:
        with self._guard:
            return list(self._active)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until a job started by this service has finished (for the CLI and tests)."""
        with self._guard:
            active = self._active.get(job_id)
        if active is not None:
            active.thread.join(timeout)
        return self.get(job_id)

    # ---- the runner thread -------------------------------------------------------------
    def _run(self, doc: Document) -> None:
        job_id, name, argv = doc["_id"], doc["name"], doc["argv"]
        timeout, log_path = doc["timeout_seconds"], Path(doc["log_path"])
        started = time.monotonic()
        status, exit_code, error = "failed", None, None
        if not self._take_slot(job_id):
            self._finish(doc, "failed", None, "the job runner shut down before the job started",
                         started, log_path)
            return
        started = time.monotonic()  # the timeout counts from the start, not the queue
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("wb") as out:
                proc = subprocess.Popen(
                    self._niced(argv),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    start_new_session=True,
                    close_fds=True,
                )
                with self._guard:
                    self._active[job_id].proc = proc
                self.store.update(job_id, {"child_pid": proc.pid})
                status, exit_code, error = self._supervise(job_id, proc, timeout, started, log_path)
        except Exception as exc:  # the record must never stay "running"
            log.exception("job %s (%s) could not run", job_id, name)
            error = f"{exc.__class__.__name__}: {exc}"
        try:
            self._finish(doc, status, exit_code, error, started, log_path)
        finally:  # the slot goes to the next job once this one's record is final
            if self.slots is not None:
                self.slots.release()

    def _niced(self, argv: list[str]) -> list[str]:
        """The command under ``nice`` (coreutils) at ``job_niceness``: serving gets the CPU
        first, so one tenant's retrain does not starve the others' answers."""
        nice = shutil.which("nice")
        if self.ops.job_nice <= 0 or nice is None:
            return argv
        return [nice, "-n", str(self.ops.job_nice), *argv]

    def _take_slot(self, job_id: str) -> bool:
        """Wait for one of the process's job slots, heartbeating the record as
        ``queued`` meanwhile; False if the runner stops first."""
        if self.slots is None or self.slots.acquire(blocking=False):
            return True
        self.store.update(job_id, {"status": "queued"})
        while not self.slots.acquire(timeout=2.0):
            if self._stopping.is_set():
                return False
            self.store.update(job_id, {"heartbeat_at": self.clock()})
        now = self.clock()
        self.store.update(job_id, {"status": "running", "started_at": now, "heartbeat_at": now})
        return True

    def _finish(self, doc: Document, status: str, exit_code: int | None, error: str | None,
                started: float, log_path: Path) -> None:
        job_id, name = doc["_id"], doc["name"]
        duration = time.monotonic() - started
        try:
            # The command has exited: free the kind first, so that a client who sees the
            # final status below can always start the next run.
            self.store.release_lock(name, job_id)
            final = {
                "status": status,
                "exit_code": exit_code,
                "error": error,
                "finished_at": self.clock(),
                "duration_seconds": round(duration, 3),
                "output_tail": tail_of(log_path, self.ops.job_output_tail_chars),
            }
            if not self.store.finish(job_id, final) and self.store.get(job_id) is None:
                # A restore with --drop replaced the jobs collection under this run.
                self.store.insert({**doc, **final})
            if status != "succeeded":  # a killed backup may not have lifted its write pause
                reclaim_abandoned_pause(self.store.db)
        except Exception:
            log.exception("job %s (%s): could not record the outcome", job_id, name)
        finally:
            JOB_OUTCOMES.labels(name=name, status=status).inc()
            JOB_SECONDS.labels(name=name).observe(duration)
            JOBS_RUNNING.labels(name=name).dec()
            with self._guard:
                self._active.pop(job_id, None)
        log.info("job %s (%s) %s exit=%s in %.1fs", job_id, name, status, exit_code, duration)

    def _supervise(
        self,
        job_id: str,
        proc: subprocess.Popen[bytes],
        timeout: float,
        started: float,
        log_path: Path,
    ) -> tuple[str, int | None, str | None]:
        deadline = started + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kill_group(proc, self.kill_grace)
                return "timed_out", proc.returncode, f"killed after the {timeout:g}s timeout"
            if self._stopping.is_set():
                kill_group(proc, self.kill_grace)
                return "failed", proc.returncode, "interrupted: the job runner shut down"
            try:
                code = proc.wait(timeout=min(self.ops.job_heartbeat_seconds, remaining))
            except subprocess.TimeoutExpired:
                tail = tail_of(log_path, self.ops.job_output_tail_chars)
                self.store.update(job_id, {"heartbeat_at": self.clock(), "output_tail": tail})
                continue
            if code == 0:
                return "succeeded", code, None
            return "failed", code, f"exited with status {code}"

    # ---- recovery and shutdown -----------------------------------------------------------
    def _owner_dead(
        self, owner: Mapping[str, Any], heartbeat: datetime | None, job_id: str | None = None
    ) -> bool:
        if owner.get("host") == self.owner["host"]:
            if owner.get("instance") == self.owner["instance"]:
                return job_id is not None and job_id not in self.active_ids()
            # Same pid but another instance: this process reuses a dead one's pid
            # (typical for pid 1 in a restarted container).
            return owner.get("pid") == os.getpid() or not pid_alive(int(owner.get("pid", -1)))
        stale = timedelta(seconds=self.ops.job_stale_seconds)
        return heartbeat is None or self.clock() - aware(heartbeat) > stale

    def recover_stale(self) -> list[str]:
        """Mark ``running`` jobs whose owner died as failed; drop orphaned locks; lift a
        write pause whose owner on this host is gone."""
        reclaim_abandoned_pause(self.store.db)
        recovered: list[str] = []
        for doc in self.store.running():
            owner = doc.get("owner") or {}
            if not self._owner_dead(owner, doc.get("heartbeat_at"), doc["_id"]):
                continue
            child = doc.get("child_pid")
            if owner.get("host") == self.owner["host"] and isinstance(child, int):
                kill_orphan(child)
            marked = self.store.finish(
                doc["_id"],
                {
                    "status": "failed",
                    "error": f"owner {owner.get('host')}:{owner.get('pid')} died while running",
                    "finished_at": self.clock(),
                },
            )
            self.store.release_lock(doc["name"], doc["_id"])
            if marked:
                JOB_OUTCOMES.labels(name=doc["name"], status="failed").inc()
                recovered.append(doc["_id"])
                log.warning("job %s (%s) marked failed: owner died", doc["_id"], doc["name"])
        for lock in self.store.all_locks():
            job = self.store.get(lock.get("job_id", ""))
            if job is not None and job.get("status") in ("running", "queued"):
                continue
            if job is None and not self._owner_dead(lock.get("owner") or {}, lock.get("acquired_at")):
                continue  # a submit in flight elsewhere: lock taken, record not yet written
            self.store.release_lock(lock["_id"], lock.get("job_id", ""))
            log.warning("released orphaned %s lock of job %s", lock["_id"], lock.get("job_id"))
        return recovered

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting jobs, kill running ones and wait for their records to be written."""
        self._stopping.set()
        with self._guard:
            threads = [a.thread for a in self._active.values()]
        for thread in threads:
            thread.join(timeout)
