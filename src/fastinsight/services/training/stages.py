"""Where a training run spends its time and memory, stage by stage.

Each stage records its wall time and the process's peak resident memory during the
stage. On Linux the peak is reset at the start of every stage (writing ``5`` to
``/proc/self/clear_refs`` resets ``VmHWM``), so each stage reports its own peak, not
the run's; elsewhere (or where the reset is refused) the figure is the process's peak
so far, said by ``peak_is_per_stage: false``. The stages land in the version document
(``stages``), visible in ``GET /v1/admin/models`` and read by ``bench/scale.py``.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The process's peak resident memory (since the last reset on Linux), in MiB."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class StageClock:
    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self.per_stage_peak = True

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.per_stage_peak = _reset_peak() and self.per_stage_peak
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = {"seconds": round(time.perf_counter() - started, 3),
                                 "peak_rss_mb": peak_rss_mb()}

    def to_doc(self) -> dict[str, Any]:
        return {"peak_is_per_stage": self.per_stage_peak, **self.stages}
