"""The allowlist of operations jobs: one typed argument model and one argv builder per kind.

Nothing reaches a command line unless it passed its Pydantic model (unknown keys are
rejected, strings are pattern-checked), and every argv is a list handed to ``subprocess``
without a shell.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, StringConstraints

from fastinsight.config import Settings
from fastinsight.errors import ValidationFailed
from fastinsight.recsys import registry

ArchiveName = Annotated[
    str,
    StringConstraints(pattern=r"^(latest|fastinsight-[A-Za-z0-9_.-]+\.tar\.gz)$", max_length=200),
]
# Not starting with "-": the name is passed to a script as an option's value.
DbName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$")]
Algorithm = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
# JSON types as declared: ``0`` is not ``false`` and ``true`` is not ``1.0``; a number
# may be written as an integer (and an integer as ``5.0``, as JSON Schema allows).
Number = Annotated[float, Field(strict=True)]


class JobArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackupArgs(JobArgs):
    pause_writes: StrictBool = False
    keep: int | None = Field(default=None, ge=1, le=1000)
    keep_days: Number | None = Field(default=None, gt=0, le=3650)


class RestoreArgs(JobArgs):
    archive: ArchiveName = Field(description="File name in the backup directory, or 'latest'.")
    target_db: DbName | None = None
    drop: StrictBool = False
    dry_run: StrictBool = False


class CleanupArgs(JobArgs):
    log_days: Number | None = Field(default=None, gt=0, le=3650)
    model_keep: int | None = Field(default=None, ge=2, le=1000)
    job_days: Number | None = Field(default=None, gt=0, le=3650)
    dry_run: StrictBool = False


class MonitorArgs(JobArgs):
    check: StrictBool = True
    samples: int = Field(default=1, ge=1, le=120)
    interval: Number = Field(default=5.0, ge=0, le=600)
    api: StrictBool = True


class RetrainArgs(JobArgs):
    algorithm: Algorithm | None = Field(default=None, description="Default: the settings' algorithm.")
    params: dict[str, JsonValue] = Field(
        default_factory=dict, max_length=64,
        description="The algorithm's parameters; checked against its params class before the job starts.")
    activate: StrictBool = Field(default=True, description="Switch serving to the new version.")
    evaluate: StrictBool = True


@dataclass(frozen=True)
class Paths:
    """Where the commands live; resolved once per service from settings."""

    scripts_dir: Path
    cli: Path
    backup_dir: Path


ArgvBuilder = Callable[[JobArgs, Paths], list[str]]
ArgsCheck = Callable[[JobArgs, Settings], None]


def _opt(flag: str, value: object | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _backup(args: JobArgs, paths: Paths) -> list[str]:
    assert isinstance(args, BackupArgs)
    argv = [str(paths.scripts_dir / "backup.sh")]
    argv += ["--pause-writes"] if args.pause_writes else []
    return argv + _opt("--keep", args.keep) + _opt("--keep-days", args.keep_days)


def _restore(args: JobArgs, paths: Paths) -> list[str]:
    assert isinstance(args, RestoreArgs)
    archive = "latest" if args.archive == "latest" else str(paths.backup_dir / args.archive)
    argv = [str(paths.scripts_dir / "restore.sh"), archive]
    argv += _opt("--target-db", args.target_db)
    argv += ["--drop"] if args.drop else []
    return argv + (["--dry-run"] if args.dry_run else [])


def _cleanup(args: JobArgs, paths: Paths) -> list[str]:
    assert isinstance(args, CleanupArgs)
    argv = [str(paths.scripts_dir / "cleanup_logs.sh")]
    argv += _opt("--days", args.log_days) + _opt("--model-keep", args.model_keep)
    argv += _opt("--job-days", args.job_days)
    return argv + (["--dry-run"] if args.dry_run else [])


def _monitor(args: JobArgs, paths: Paths) -> list[str]:
    assert isinstance(args, MonitorArgs)
    argv = [str(paths.scripts_dir / "monitor.sh")]
    argv += ["--check"] if args.check else []
    argv += ["--samples", str(args.samples), "--interval", str(args.interval)]
    return argv + ([] if args.api else ["--no-api"])


def _retrain(args: JobArgs, paths: Paths) -> list[str]:
    assert isinstance(args, RetrainArgs)
    return [
        str(paths.cli),
        "train",
        *_opt("--algorithm", args.algorithm),
        *(["--params", json.dumps(args.params, sort_keys=True)] if args.params else []),
        "--activate" if args.activate else "--no-activate",
        "--evaluate" if args.evaluate else "--no-evaluate",
    ]


def _check_retrain(args: JobArgs, settings: Settings) -> None:
    """The parameters must fit the algorithm that will be trained (422 naming the field
    now, not a failed job later)."""
    assert isinstance(args, RetrainArgs)
    try:
        registry.validate_params(args.algorithm or settings.default_algorithm, args.params, strict=True)
    except ValidationFailed as exc:
        details = [{**d, "field": f"args.{d['field']}"} for d in exc.details]
        raise ValidationFailed(f"invalid args for retrain: {exc.message}", details=details) from exc


def _no_check(args: JobArgs, settings: Settings) -> None:
    return None


@dataclass(frozen=True)
class JobKind:
    name: str
    args_model: type[JobArgs]
    argv: ArgvBuilder
    description: str
    # Checks that need more than the argument model (settings, the model registry);
    # raises ValidationFailed naming ``args.<field>``.
    check: ArgsCheck = _no_check


def _no_other_tenant(args: JobArgs, settings: Settings) -> None:
    """The default tenant's admin key restores into any database of its own choosing, but
    not over another tenant's (``<db>_t_<id>``) nor the control database (every tenant and
    key): those belong to the operator."""
    assert isinstance(args, RestoreArgs)
    target = args.target_db
    if target is not None and (target == settings.control_database
                               or target.startswith(f"{settings.mongodb_db}_t_")):
        raise ValidationFailed.field(
            "args.target_db", "another tenant's database or the control database cannot be a "
            "restore target of this key; the operator restores them with the CLI")


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("backup", BackupArgs, _backup, "scripts/backup.sh: verified archive + retention"),
        JobKind("restore", RestoreArgs, _restore, "scripts/restore.sh: restore an archive",
                _no_other_tenant),
        JobKind("cleanup_logs", CleanupArgs, _cleanup, "scripts/cleanup_logs.sh"),
        JobKind("monitor", MonitorArgs, _monitor, "scripts/monitor.sh: host + API sample"),
        JobKind("retrain", RetrainArgs, _retrain, "fastinsight train", _check_retrain),
    )
}


def _own_database_only(args: JobArgs, settings: Settings) -> None:
    assert isinstance(args, RestoreArgs)
    if args.target_db is not None:
        raise ValidationFailed.field(
            "args.target_db", "a tenant restores into its own database only; leave it unset")


# What a tenant other than the default may run: its own backups, restores into its own
# database and retrains. Log clean-up and host monitoring are the deployment's (the
# default tenant's admin key or the operator's CLI).
TENANT_JOB_KINDS: dict[str, JobKind] = {
    "backup": JOB_KINDS["backup"],
    "restore": JobKind("restore", RestoreArgs, _restore, JOB_KINDS["restore"].description,
                       _own_database_only),
    "retrain": JOB_KINDS["retrain"],
}
