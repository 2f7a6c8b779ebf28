"""``fastinsight monitor``: sample host and API health, append JSON lines, check thresholds.

CPU comes from ``vmstat`` when it is installed (one extra second of sampling), otherwise
from two reads of ``/proc/stat``; memory from ``/proc/meminfo``; disk from ``statvfs``;
load from ``getloadavg``. The API is probed at ``/health/ready`` and ``/metrics``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

_METRIC_SUMS = {
    "fastinsight_http_requests": "http_requests_total",
    "fastinsight_job_outcomes": "job_outcomes_total",
    "fastinsight_db_errors": "db_errors_total",
}


class Thresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_cpu_pct: float = Field(default=95.0, ge=0)
    max_mem_pct: float = Field(default=90.0, ge=0)
    max_disk_pct: float = Field(default=90.0, ge=0)
    max_load_per_cpu: float = Field(default=4.0, ge=0)
    require_ready: bool = True


@dataclass
class ApiProbe:
    url: str
    ready: bool
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Sample:
    ts: str
    host: str
    cpu_pct: float
    cpu_source: str
    mem_pct: float
    mem_used_bytes: int
    mem_total_bytes: int
    disk_path: str
    disk_pct: float
    disk_free_bytes: int
    load1: float
    load5: float
    load15: float
    cpus: int
    api: ApiProbe | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)


def _proc_cpu_times() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return idle, sum(fields)


def cpu_percent(interval: float = 1.0) -> tuple[float, str]:
    """Busy CPU percentage over ``interval`` seconds and where it came from."""
    vmstat = shutil.which("vmstat")
    if vmstat and interval >= 1:
        proc = subprocess.run(
            [vmstat, str(int(interval)), "2"],
            capture_output=True,
            text=True,
            timeout=interval + 10,
            check=False,
        )
        lines = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()]
        header = next((ln for ln in lines if "id" in ln), None)
        if proc.returncode == 0 and header and len(lines[-1]) == len(header):
            idle = float(lines[-1][header.index("id")])
            return max(0.0, min(100.0, 100.0 - idle)), "vmstat"
    idle0, total0 = _proc_cpu_times()
    time.sleep(interval)
    idle1, total1 = _proc_cpu_times()
    busy = (total1 - total0) - (idle1 - idle0)
    return (100.0 * busy / (total1 - total0) if total1 > total0 else 0.0), "proc"


def memory() -> tuple[float, int, int]:
    """(used %, used bytes, total bytes), "used" meaning not available to new processes."""
    values: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    total = values["MemTotal"]
    available = values.get("MemAvailable", values.get("MemFree", 0))
    used = total - available
    return (100.0 * used / total if total else 0.0), used, total


def probe_api(base_url: str, timeout: float = 3.0) -> ApiProbe:
    """GET ``/health/ready`` (ready = HTTP 200) and sum a few counters from ``/metrics``."""
    base = base_url.rstrip("/")
    probe = ApiProbe(url=base, ready=False)
    try:
        with httpx.Client(timeout=timeout) as client:
            started = time.perf_counter()
            response = client.get(f"{base}/health/ready")
            probe.latency_ms = round((time.perf_counter() - started) * 1000, 2)
            probe.status = response.status_code
            probe.ready = response.status_code == 200
            metrics = client.get(f"{base}/metrics")
            if metrics.status_code == 200:
                probe.metrics = summarize_metrics(metrics.text)
    except httpx.HTTPError as exc:
        probe.error = f"{exc.__class__.__name__}: {exc}"
    return probe


def summarize_metrics(text: str) -> dict[str, float]:
    """Totals of the counters worth keeping per sample (label sets summed)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        key = _METRIC_SUMS.get(family.name)
        if key is None:
            continue
        out[key] = sum(s.value for s in family.samples if s.name.endswith("_total"))
        if key == "http_requests_total":
            out["http_5xx_total"] = sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and str(s.labels.get("status", "")).startswith("5")
            )
    return out


def take_sample(
    *,
    api_url: str | None,
    disk_path: Path,
    cpu_interval: float = 1.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Sample:
    cpu, source = cpu_percent(cpu_interval)
    mem_pct, mem_used, mem_total = memory()
    disk = shutil.disk_usage(disk_path)
    load1, load5, load15 = os.getloadavg()
    return Sample(
        ts=clock().isoformat(),
        host=os.uname().nodename,
        cpu_pct=round(cpu, 2),
        cpu_source=source,
        mem_pct=round(mem_pct, 2),
        mem_used_bytes=mem_used,
        mem_total_bytes=mem_total,
        disk_path=str(disk_path),
        disk_pct=round(100.0 * disk.used / disk.total, 2) if disk.total else 0.0,
        disk_free_bytes=disk.free,
        load1=load1,
        load5=load5,
        load15=load15,
        cpus=os.cpu_count() or 1,
        api=probe_api(api_url) if api_url else None,
    )


def evaluate(sample: Sample, limits: Thresholds) -> list[str]:
    """Human-readable warnings for every threshold the sample crosses."""
    warnings: list[str] = []
    if sample.cpu_pct > limits.max_cpu_pct:
        warnings.append(f"cpu {sample.cpu_pct:.1f}% > {limits.max_cpu_pct:.1f}%")
    if sample.mem_pct > limits.max_mem_pct:
        warnings.append(f"memory {sample.mem_pct:.1f}% > {limits.max_mem_pct:.1f}%")
    if sample.disk_pct > limits.max_disk_pct:
        warnings.append(f"disk {sample.disk_path} {sample.disk_pct:.1f}% > {limits.max_disk_pct:.1f}%")
    per_cpu = sample.load1 / sample.cpus
    if per_cpu > limits.max_load_per_cpu:
        warnings.append(f"load {per_cpu:.2f}/cpu > {limits.max_load_per_cpu:.2f}/cpu")
    if sample.api is not None and limits.require_ready and not sample.api.ready:
        reason = sample.api.error or f"HTTP {sample.api.status}"
        warnings.append(f"api {sample.api.url} not ready ({reason})")
    return warnings


def append_sample(path: Path, sample: Sample) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(sample.to_json() + "\n")


def run_monitor(
    *,
    api_url: str | None,
    log_path: Path,
    limits: Thresholds,
    disk_path: Path = Path("."),
    samples: int = 1,
    interval: float = 10.0,
    cpu_interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Sample]:
    """Take ``samples`` samples ``interval`` seconds apart; each is appended to ``log_path``."""
    taken: list[Sample] = []
    for i in range(samples):
        if i:
            sleep(interval)
        sample = take_sample(api_url=api_url, disk_path=disk_path, cpu_interval=cpu_interval)
        sample.warnings = evaluate(sample, limits)
        append_sample(log_path, sample)
        for warning in sample.warnings:
            log.warning("monitor: %s", warning)
        taken.append(sample)
    return taken
