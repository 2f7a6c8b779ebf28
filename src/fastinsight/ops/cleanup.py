"""``fastinsight cleanup``: rotate and expire logs, prune model versions, old job records
and tombstones every serving process has had time to see.

Logs rotate by copy-and-truncate (``name.log`` -> ``name.log.<UTC stamp>.gz``, then the
original is truncated in place), so processes that keep the file open in append mode
carry on writing to it without a restart. Lines written between the copy and the
truncate are lost; that window is milliseconds. The API's own RotatingFileHandler
(20 MiB) normally rotates ``api.log`` first; the 50 MiB default here catches the rest.
"""

from __future__ import annotations

import gzip
import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pymongo.database import Database

from fastinsight.services.training.retention import prune_versions
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.jobs import JobStore
from fastinsight.storage.mongo.models import ModelVersionRepository
from fastinsight.storage.mongo.users import UserRepository

log = logging.getLogger(__name__)

ACTIVE_SUFFIXES = (".log", ".jsonl")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass
class LogReport:
    rotated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0

    @property
    def bytes_freed(self) -> int:
        return self.bytes_before - self.bytes_after


@dataclass
class ModelReport:
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    orphan_files_deleted: int = 0


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _is_active_log(path: Path) -> bool:
    return path.suffix in ACTIVE_SUFFIXES


def rotate_file(path: Path, now: datetime) -> Path:
    """Copy ``path`` to a gzip file beside it and truncate the original."""
    target = path.with_name(f"{path.name}.{now.strftime(_STAMP)}.gz")
    n = 2
    while target.exists():
        target = path.with_name(f"{path.name}.{now.strftime(_STAMP)}-{n}.gz")
        n += 1
    with path.open("rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, length=1024 * 1024)
    with path.open("r+b") as fh:
        fh.truncate(0)
    return target


def clean_logs(
    log_dir: Path,
    *,
    keep_days: float,
    rotate_bytes: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> LogReport:
    """Rotate live logs above ``rotate_bytes``; expire what was not modified for ``keep_days``.

    Live logs are ``*.log`` / ``*.jsonl`` directly in ``log_dir``: a process may hold
    them open, so an expired one is truncated, never unlinked. Everything else (rotated
    ``.gz`` files, per-job logs under ``jobs/``) is deleted once expired.
    """
    now = now or datetime.now(UTC)
    report = LogReport()
    if not log_dir.is_dir():
        return report
    report.bytes_before = _tree_bytes(log_dir)
    freed_if_dry = 0
    cutoff = (now - timedelta(days=keep_days)).timestamp()
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        live = path.parent == log_dir and _is_active_log(path)
        if stat.st_mtime < cutoff and not live:
            report.deleted.append(str(path))
            freed_if_dry += stat.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
        elif live and stat.st_mtime < cutoff and stat.st_size:
            report.deleted.append(f"{path} (truncated)")
            freed_if_dry += stat.st_size
            if not dry_run:
                with path.open("r+b") as fh:
                    fh.truncate(0)
        elif live and stat.st_size >= rotate_bytes:
            report.rotated.append(str(path))
            if not dry_run:
                rotate_file(path, now)
    if dry_run:
        report.bytes_after = report.bytes_before - freed_if_dry
    else:
        report.bytes_after = _tree_bytes(log_dir)
    log.info(
        "logs %s: rotated=%d expired=%d freed=%d bytes",
        log_dir,
        len(report.rotated),
        len(report.deleted),
        report.bytes_freed,
    )
    return report


def prune_model_versions(
    db: Database[Document],
    *,
    keep: int,
    orphan_grace: timedelta = timedelta(days=1),
    now: datetime | None = None,
    dry_run: bool = False,
) -> ModelReport:
    """Keep ``keep`` versions by the one retention rule (:mod:`fastinsight.services.training.retention`:
    the active one, the one to roll back to, then the newest); delete the rest with their files.

    Artefact chunks that belong to no version document (an upload whose version was
    never written) are deleted once older than ``orphan_grace``.
    """
    now = now or datetime.now(UTC)
    plan = prune_versions(db, keep, dry_run=dry_run)
    report = ModelReport(kept=plan.keep, deleted=plan.delete)
    if not dry_run:
        repo = ModelVersionRepository(db)
        known = {str(d["_id"]) for d in repo.list(limit=None)}
        report.orphan_files_deleted = repo.delete_orphan_chunks(known, now - orphan_grace)
    return report


def expire_jobs(
    db: Database[Document], *, keep_days: float, now: datetime | None = None, dry_run: bool = False
) -> int:
    """Delete finished job records older than ``keep_days``; returns how many."""
    now = now or datetime.now(UTC)
    return JobStore(db).delete_finished_before(now - timedelta(days=keep_days), dry_run=dry_run)


@dataclass
class TombstoneReport:
    user_erasures: int = 0
    item_deletions: int = 0
    item_changes: int = 0
    # Erasure tombstones from this moment on are kept (None: all of them are).
    erasures_kept_from: datetime | None = None


def prune_tombstones(
    db: Database[Document], *, grace: timedelta = timedelta(days=1),
    now: datetime | None = None, dry_run: bool = False,
) -> TombstoneReport:
    """Drop the deletion and erasure tombstones (and item change-feed entries) nobody
    needs any more.

    Serving processes poll the tombstones, so each must outlive ``grace`` (longer than a
    poller can fall behind, and than a training run takes). An erasure tombstone also
    stops processes from serving the erased user's row of a version trained before the
    erasure, so it stays while any stored version (the active one or one kept for
    roll-back) has a snapshot older than it; a version without a recorded snapshot
    keeps all of them. Item tombstones only matter to processes already running: a
    process that starts reads the whole catalogue.
    """
    now = now or datetime.now(UTC)
    settled = now - grace
    report = TombstoneReport()
    report.item_deletions = ItemRepository(db).prune_deletions(settled, dry_run=dry_run)
    report.item_changes = ItemRepository(db).prune_changes(settled, dry_run=dry_run)
    kept_from: datetime | None = settled
    for version in ModelVersionRepository(db).list(limit=100_000):
        taken = (version.get("snapshot") or {}).get("taken_at")
        if not isinstance(taken, datetime):
            kept_from = None
            break
        kept_from = min(kept_from, taken) if kept_from is not None else None
    report.erasures_kept_from = kept_from
    if kept_from is not None:
        report.user_erasures = UserRepository(db).prune_erasures(kept_from, dry_run=dry_run)
    log.info("tombstones pruned: %d erasures, %d item deletions, %d item changes%s",
             report.user_erasures, report.item_deletions, report.item_changes,
             " (dry run)" if dry_run else "")
    return report
