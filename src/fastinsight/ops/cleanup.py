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
import os
import shutil
import stat
from collections.abc import Iterator
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
    # Symbolic links and anything else that is not a regular file: never followed, never touched.
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
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


def _log_files(root: Path) -> Iterator[tuple[Path, os.stat_result | None]]:
    """Every entry under ``root`` that is not a directory, with its ``lstat`` (``None``
    when it is not a regular file). Symbolic links to directories are not entered."""
    for folder, dirs, names in os.walk(root, followlinks=False):
        linked_dirs = [d for d in dirs if (Path(folder) / d).is_symlink()]
        for name in sorted(names + linked_dirs):
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            yield path, info if stat.S_ISREG(info.st_mode) else None


def _tree_bytes(root: Path) -> int:
    return sum(info.st_size for _, info in _log_files(root) if info is not None)


def _is_active_log(path: Path) -> bool:
    return path.suffix in ACTIVE_SUFFIXES


def _open_regular(path: Path, flags: int) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (it may have been swapped in
    since the directory was listed) and anything but a regular file."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def _truncate(path: Path) -> None:
    fd = _open_regular(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def rotate_file(path: Path, now: datetime) -> Path:
    """Copy ``path`` to a new gzip file beside it and truncate the original.

    Neither the log nor the ``.gz`` name is followed if it is a symbolic link; the
    truncate applies to the very file that was copied (one descriptor for both).
    """
    n = 1
    while True:
        suffix = "" if n == 1 else f"-{n}"
        target = path.with_name(f"{path.name}.{now.strftime(_STAMP)}{suffix}.gz")
        try:
            out_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            break
        except FileExistsError:
            n += 1
    try:
        src_fd = _open_regular(path, os.O_RDWR)
    except OSError:
        os.close(out_fd)
        target.unlink(missing_ok=True)
        raise
    with os.fdopen(src_fd, "r+b") as src:
        with os.fdopen(out_fd, "wb") as raw, gzip.GzipFile(
            filename=target.name, mode="wb", fileobj=raw, compresslevel=6
        ) as dst:
            shutil.copyfileobj(src, dst, length=1024 * 1024)
        src.truncate(0)
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
    ``.gz`` files, per-job logs under ``jobs/``) is deleted once expired. Only regular
    files are touched: a symbolic link (say ``api.log -> /etc/passwd``) is never
    followed, truncated or counted, and is reported in ``skipped``. A file that cannot
    be handled is logged and reported in ``failed``; the others are still cleaned.
    """
    now = now or datetime.now(UTC)
    report = LogReport()
    if not log_dir.is_dir():
        return report
    report.bytes_before = _tree_bytes(log_dir)
    freed_if_dry = 0
    cutoff = (now - timedelta(days=keep_days)).timestamp()
    for path, info in sorted(_log_files(log_dir), key=lambda entry: entry[0]):
        if info is None:
            report.skipped.append(str(path))
            if len(report.skipped) <= 5:
                log.warning("logs: %s is not a regular file (a symbolic link?); left alone", path)
            continue
        live = path.parent == log_dir and _is_active_log(path)
        try:
            if info.st_mtime < cutoff and not live:
                report.deleted.append(str(path))
                freed_if_dry += info.st_size
                if not dry_run:
                    path.unlink(missing_ok=True)
            elif live and info.st_mtime < cutoff and info.st_size:
                report.deleted.append(f"{path} (truncated)")
                freed_if_dry += info.st_size
                if not dry_run:
                    _truncate(path)
            elif live and info.st_size >= rotate_bytes:
                report.rotated.append(str(path))
                if not dry_run:
                    rotate_file(path, now)
        except OSError:
            report.failed.append(str(path))
            # Tracebacks for the first few; a directory of broken files must not flood the log.
            log.warning("logs: could not clean %s", path, exc_info=len(report.failed) <= 5)
    if dry_run:
        report.bytes_after = report.bytes_before - freed_if_dry
    else:
        report.bytes_after = _tree_bytes(log_dir)
    log.info(
        "logs %s: rotated=%d expired=%d skipped=%d failed=%d freed=%d bytes",
        log_dir,
        len(report.rotated),
        len(report.deleted),
        len(report.skipped),
        len(report.failed),
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
