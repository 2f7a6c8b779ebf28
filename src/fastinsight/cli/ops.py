"""Operations commands: backup, restore, monitor, cleanup, deploy, scheduler, jobs.

Each prints a one-line JSON summary on stdout and messages on stderr. Exit codes are
shared with ``scripts/*.sh``: 0 ok, 1 failed, 2 usage, 3 archive invalid or corrupt,
4 restore target not empty, 5 monitor threshold crossed, 6 deploy rolled back.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pymongo.database import Database
from rich.console import Console

from fastinsight.config import Settings, get_settings
from fastinsight.ops.settings import get_ops_settings
from fastinsight.storage.mongo.client import Document

console = Console(stderr=True)

EXIT_FAILED = 1
EXIT_ARCHIVE = 3
EXIT_NOT_EMPTY = 4
EXIT_THRESHOLD = 5
EXIT_ROLLED_BACK = 6


class DumpTool(StrEnum):
    auto = "auto"
    python = "python"
    mongodump = "mongodump"


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")


@contextmanager
def _database(settings: Settings) -> Iterator[Database[Document]]:
    from fastinsight.storage.mongo import connect, get_database

    client = connect(settings)
    try:
        yield get_database(client, settings)
    finally:
        client.close()


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("monitor")(monitor)
    app.command("cleanup")(cleanup)
    app.command("scheduler")(scheduler)
    from fastinsight.cli import ops_runtime

    ops_runtime.register(app)


def backup(
    out: Annotated[Path | None, typer.Option(help="Directory (default: backup_dir)")] = None,
    keep: Annotated[int | None, typer.Option(min=1, help="Keep this many newest archives")] = None,
    keep_days: Annotated[float | None, typer.Option(min=0.001, help="...and all younger")] = None,
    no_retention: Annotated[bool, typer.Option(help="Delete no old archives")] = False,
    pause_writes: Annotated[bool, typer.Option(help="503 API writes while dumping")] = False,
    tool: Annotated[DumpTool, typer.Option(help="mongodump if installed, else Python")] = (DumpTool.auto),
) -> None:
    """Dump the database to a verified, timestamped .tar.gz (mongodump layout) + retention."""
    from fastinsight.ops.archive import ArchiveError
    from fastinsight.ops.dump import apply_retention, dump_database

    settings, ops = get_settings(), get_ops_settings()
    directory = out or ops.backup_path(settings)
    try:
        with _database(settings) as db:
            result = dump_database(
                db,
                directory,
                uri=settings.mongodb_uri,
                tool=tool.value,
                pause_writes=pause_writes,
                compresslevel=ops.backup_compresslevel,
            )
    except ArchiveError as exc:
        raise _fail(exc.message, EXIT_ARCHIVE) from exc
    deleted: list[Path] = []
    if not no_retention:
        deleted = apply_retention(
            directory,
            keep=keep or ops.backup_keep,
            keep_days=keep_days if keep_days is not None else ops.backup_keep_days,
            db_name=settings.mongodb_db,
        )
    console.print(
        f"backup {result.archive} ({result.archive_bytes} bytes, "
        f"{result.manifest.total_documents} documents, {result.seconds:.1f}s), "
        f"{len(deleted)} old archive(s) deleted"
    )
    _emit(
        {
            "archive": str(result.archive),
            "bytes": result.archive_bytes,
            "documents": result.manifest.total_documents,
            "collections": {c.name: c.documents for c in result.manifest.collections},
            "seconds": round(result.seconds, 3),
            "consistency": result.manifest.consistency,
            "retention_deleted": [str(p) for p in deleted],
        }
    )


def restore(
    archive: Annotated[str, typer.Argument(help="Archive path, or 'latest' in backup_dir")],
    target_db: Annotated[str | None, typer.Option(help="Default: the archived database")] = None,
    drop: Annotated[bool, typer.Option(help="Replace the target's collections")] = False,
    dry_run: Annotated[bool, typer.Option(help="Staging load and checks; target untouched")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    recount: Annotated[bool, typer.Option(help="Count every collection afterwards")] = False,
) -> None:
    """Verify an archive, then restore it (refuses a non-empty target without --drop)."""
    from fastinsight.ops.archive import ArchiveError
    from fastinsight.ops.dump import list_archives
    from fastinsight.ops.restore import TargetNotEmpty, restore_archive
    from fastinsight.storage.mongo import connect

    settings, ops = get_settings(), get_ops_settings()
    if archive == "latest":
        found = list_archives(ops.backup_path(settings), settings.mongodb_db)
        if not found:
            raise _fail(f"no archive of {settings.mongodb_db} in {ops.backup_path(settings)}", EXIT_ARCHIVE)
        path = found[0]
    else:
        path = Path(archive)
    client = connect(settings)
    try:
        result = restore_archive(
            client,
            path,
            target_db=target_db,
            drop=drop,
            dry_run=dry_run,
            batch_size=batch_size,
            recount=recount,
        )
    except ArchiveError as exc:
        raise _fail(exc.message, EXIT_ARCHIVE) from exc
    except TargetNotEmpty as exc:
        raise _fail(exc.message, EXIT_NOT_EMPTY) from exc
    finally:
        client.close()
    verb = "would restore" if dry_run else "restored"
    console.print(
        f"{verb} {result.documents} documents from {path} into {result.target_db} in {result.seconds:.1f}s"
    )
    _emit(
        {
            "archive": str(path),
            "source_db": result.source_db,
            "target_db": result.target_db,
            "dry_run": dry_run,
            "documents": result.inserted,
            "indexes": result.indexes,
            "seconds": round(result.seconds, 3),
            "phases": {k: round(v, 3) for k, v in result.phases.items()},
        }
    )


def monitor(
    url: Annotated[str | None, typer.Option(help="API base URL (default: monitor_url)")] = None,
    no_api: Annotated[bool, typer.Option(help="Host metrics only")] = False,
    log: Annotated[Path | None, typer.Option(help="JSON-lines log (default: monitor_log)")] = None,
    check: Annotated[bool, typer.Option(help="Exit 5 if any threshold is crossed")] = False,
    samples: Annotated[int, typer.Option(min=1)] = 1,
    interval: Annotated[float, typer.Option(min=0)] = 10.0,
    disk_path: Annotated[Path, typer.Option(help="Filesystem to watch")] = Path("."),
    max_cpu_pct: Annotated[float | None, typer.Option()] = None,
    max_mem_pct: Annotated[float | None, typer.Option()] = None,
    max_disk_pct: Annotated[float | None, typer.Option()] = None,
    max_load_per_cpu: Annotated[float | None, typer.Option()] = None,
) -> None:
    """Sample CPU, memory, disk, load and the API; append one JSON line per sample."""
    from fastinsight.ops.monitor import Thresholds, run_monitor

    settings, ops = get_settings(), get_ops_settings()
    limits = Thresholds(
        max_cpu_pct=ops.monitor_max_cpu_pct if max_cpu_pct is None else max_cpu_pct,
        max_mem_pct=ops.monitor_max_mem_pct if max_mem_pct is None else max_mem_pct,
        max_disk_pct=ops.monitor_max_disk_pct if max_disk_pct is None else max_disk_pct,
        max_load_per_cpu=(ops.monitor_max_load_per_cpu if max_load_per_cpu is None else max_load_per_cpu),
    )
    taken = run_monitor(
        api_url=None if no_api else (url or ops.monitor_url),
        log_path=log or ops.monitor_log_path(settings),
        limits=limits,
        disk_path=disk_path,
        samples=samples,
        interval=interval,
    )
    warnings = [w for s in taken for w in s.warnings]
    for sample in taken:
        sys.stdout.write(sample.to_json() + "\n")
    for warning in warnings:
        console.print(f"WARNING: {warning}")
    if check and warnings:
        raise typer.Exit(EXIT_THRESHOLD)


def cleanup(
    days: Annotated[float | None, typer.Option(min=0.001, help="Expire logs older than this")] = None,
    model_keep: Annotated[int | None, typer.Option(
        min=2, help="Model versions kept, the active one included (default: model_keep_versions)")] = None,
    job_days: Annotated[float | None, typer.Option(min=0.001, help="Expire job records")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Default: log_dir")] = None,
    dry_run: Annotated[bool, typer.Option(help="Report only")] = False,
    skip_db: Annotated[bool, typer.Option(help="Logs only; leave models and jobs")] = False,
) -> None:
    """Rotate/compress/expire logs, prune old model versions (+ files), job records and tombstones."""
    from fastinsight.ops.cleanup import clean_logs, expire_jobs, prune_model_versions, prune_tombstones

    settings, ops = get_settings(), get_ops_settings()
    logs = clean_logs(
        log_dir or settings.log_dir,
        keep_days=days or ops.log_keep_days,
        rotate_bytes=ops.log_rotate_bytes,
        dry_run=dry_run,
    )
    payload: dict[str, Any] = {
        "dry_run": dry_run,
        "logs_rotated": logs.rotated,
        "logs_expired": logs.deleted,
        "bytes_freed": logs.bytes_freed,
    }
    if not skip_db:
        with _database(settings) as db:
            if not dry_run:
                from fastinsight.errors import Unavailable
                from fastinsight.services.writes import ensure_writable

                try:
                    ensure_writable(db, "pruning model versions, jobs and tombstones")
                except Unavailable as exc:
                    raise _fail(exc.message, 1) from exc
            models = prune_model_versions(db, keep=model_keep or settings.model_keep_versions,
                                          dry_run=dry_run)
            payload["jobs_expired"] = expire_jobs(
                db, keep_days=job_days or ops.job_keep_days, dry_run=dry_run
            )
            # After the version prune: erasure tombstones are kept for the versions left.
            tombstones = prune_tombstones(db, dry_run=dry_run)
            payload["tombstones_pruned"] = {"user_erasures": tombstones.user_erasures,
                                            "item_deletions": tombstones.item_deletions,
                                            "item_changes": tombstones.item_changes}
        payload.update(
            models_deleted=models.deleted,
            models_kept=models.kept,
            orphan_files_deleted=models.orphan_files_deleted,
        )
    console.print(
        f"cleanup{' (dry run)' if dry_run else ''}: freed {logs.bytes_freed} bytes of "
        f"logs, {len(payload.get('models_deleted', []))} model version(s), "
        f"{payload.get('jobs_expired', 0)} job record(s)"
    )
    _emit(payload)


def scheduler(
    once: Annotated[bool, typer.Option(help="Run every scheduled job now, wait, exit")] = False,
) -> None:
    """Run jobs on their cron schedules (UTC) until SIGTERM/SIGINT: the deployment's, and
    each tenant's (its own schedules, else the deployment's backup and retrain ones)."""
    from fastinsight.ops.jobs.tenant_jobs import TenantScheduler
    from fastinsight.services.tenancy.directory import TenantDirectory
    from fastinsight.storage.mongo import connect
    from fastinsight.storage.mongo.tenants import TenantRepository

    settings, ops = get_settings(), get_ops_settings()
    client = connect(settings)
    try:
        repo = TenantRepository(client, settings.control_database)
        service = TenantScheduler(settings, ops, TenantDirectory(settings, repo), client)
        service.refresh()
        sched = service.scheduler
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if once:
            sched.next_run = dict.fromkeys(sched.next_run, sched.clock())
            fired = sched.run_pending()
            finished = [s.wait(job_id) for s in service.services.values() for job_id in s.active_ids()]
            _emit(
                {
                    "fired": [{"name": f.name, "outcome": f.outcome} for f in fired],
                    "jobs": {r.name: r.status for r in finished},
                }
            )
            if any(r.status != "succeeded" for r in finished):
                raise typer.Exit(EXIT_FAILED)
        else:
            service.run_forever(stop)
        service.shutdown(timeout=ops.job_heartbeat_seconds * 2)
    finally:
        client.close()
