"""Operations settings (prefix ``FASTINSIGHT_``), kept apart from the core ``Settings``.

Same environment and ``.env`` file as :mod:`fastinsight.config`; the fields live here
until they are merged into the main settings class.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fastinsight.config import Settings

log = logging.getLogger(__name__)

DEFAULT_SCHEDULES: dict[str, str] = {
    "backup": "0 3 * * *",
    "retrain": "15 * * * *",
    "cleanup_logs": "30 4 * * *",
    "monitor": "*/5 * * * *",
}

DEFAULT_JOB_TIMEOUTS: dict[str, float] = {
    "backup": 3600.0,
    "restore": 3600.0,
    "cleanup_logs": 600.0,
    "monitor": 120.0,
    "retrain": 7200.0,
}


class OpsSettings(BaseSettings):
    """Backup, restore, monitoring, deploy, clean-up, jobs and scheduler configuration."""

    model_config = SettingsConfigDict(env_prefix="FASTINSIGHT_", env_file=".env", extra="ignore", frozen=True)

    backup_dir: Path | None = None
    backup_keep: int = Field(default=7, ge=1)
    backup_keep_days: float | None = Field(default=14.0, gt=0)
    backup_compresslevel: int = Field(default=6, ge=0, le=9)

    log_keep_days: float = Field(default=14.0, gt=0)
    log_rotate_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    job_keep_days: float = Field(default=30.0, gt=0)

    job_timeouts: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_JOB_TIMEOUTS))
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_stale_seconds: float = Field(default=60.0, gt=0)
    job_output_tail_chars: int = Field(default=4000, ge=100)
    job_nice: int = Field(
        default=10, ge=0, le=19, description="niceness of job commands (retrains, backups): "
        "the CPU goes to serving first, so one tenant's retrain does not starve others' answers")
    schedules: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SCHEDULES))

    monitor_url: str = "http://127.0.0.1:8000"
    monitor_log: Path | None = None
    monitor_max_cpu_pct: float = Field(default=95.0, ge=0)
    monitor_max_mem_pct: float = Field(default=90.0, ge=0)
    monitor_max_disk_pct: float = Field(default=90.0, ge=0)
    monitor_max_load_per_cpu: float = Field(default=4.0, ge=0)

    scripts_dir: Path | None = None
    run_dir: Path | None = None
    deploy_backend_ports: tuple[int, int] = (8001, 8002)
    deploy_ready_timeout: float = Field(default=60.0, gt=0)
    deploy_drain_timeout: float = Field(default=30.0, gt=0)

    def backup_path(self, settings: Settings) -> Path:
        """``backup_dir``, default ``<var_dir>/backups``."""
        return self.backup_dir or settings.var_dir / "backups"

    def monitor_log_path(self, settings: Settings) -> Path:
        """``monitor_log``, default ``<log_dir>/monitor.jsonl``."""
        return self.monitor_log or settings.log_dir / "monitor.jsonl"

    def run_path(self, settings: Settings) -> Path:
        """``run_dir`` (pid and state files), default ``<var_dir>/run``."""
        return self.run_dir or settings.var_dir / "run"


@lru_cache(maxsize=1)
def get_ops_settings() -> OpsSettings:
    return OpsSettings()


# Read by scripts/, the test suite and the benchmarks, not by the settings classes.
OTHER_VARIABLES = frozenset({
    "FASTINSIGHT_LOG_LEVEL", "FASTINSIGHT_BIN", "FASTINSIGHT_URL", "FASTINSIGHT_DB_ADDR",
    "FASTINSIGHT_DB_DATA", "FASTINSIGHT_PROXY_STATE", "FASTINSIGHT_MONITOR_URL",
    "FASTINSIGHT_DEMO_MOVIELENS", "FASTINSIGHT_SCRIPTS_DIR", "FASTINSIGHT_BACKUP_DIR",
    "FASTINSIGHT_PUBLISH", "FASTINSIGHT_LOG_KEEP_DAYS", "FASTINSIGHT_DEPLOY_BACKEND_PORTS",
    "FASTINSIGHT_BACKUP_KEEP", "FASTINSIGHT_TEST_MONGODB_URI", "FASTINSIGHT_TEST_CHROMIUM",
    "FASTINSIGHT_BENCH_MONGODB_URI",
})
OTHER_PREFIXES = ("FASTINSIGHT_MONITOR_MAX_",)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``FASTINSIGHT_*`` names in ``environ`` that nothing reads, each with the closest
    known name (or None). The settings ignore unknown names, so a misspelt one would
    otherwise silently leave the default in place (a typo in the database name means
    writing to another database)."""
    known = {f"FASTINSIGHT_{name.upper()}" for cls in (Settings, OpsSettings)
             for name in cls.model_fields} | OTHER_VARIABLES
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("FASTINSIGHT_") or upper in known or upper.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper[12:], sorted(k[12:] for k in known), n=1, cutoff=0.8)
        found.append((name, f"FASTINSIGHT_{close[0]}" if close else None))
    return found


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """Log a warning for each :func:`unknown_variables` (at start-up of the API and CLI)."""
    for name, close in unknown_variables(os.environ if environ is None else environ):
        hint = f"; did you mean {close}?" if close else ""
        log.warning("environment variable %s is not a FastInsight setting and is ignored%s", name, hint)
