"""A periodic task in a daemon thread, for the pollers each API process runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fastinsight.logging_setup import FailureLog

log = logging.getLogger(__name__)


class Ticker:
    """Calls ``step`` every ``interval`` seconds until ``stop``; a failing step is retried
    with a growing pause and logged through :class:`FailureLog` (the first failure with
    its traceback, then a summary every ``report_every`` seconds while it lasts).

    ``duty`` caps the share of wall time spent inside ``step``: after a step that took
    ``t`` seconds the next one waits at least ``t * (1 / duty - 1)``. A poll that is
    cheap keeps its interval; one that became slow (a scan on a server without the
    index) backs off instead of keeping the database busy.
    """

    def __init__(
        self, name: str, interval: Callable[[], float], step: Callable[[], None],
        max_backoff: int = 20, duty: float = 1.0, report_every: float = 300.0,
    ) -> None:
        if not 0 < duty <= 1:
            raise ValueError("duty must be in (0, 1]")
        self.name = name
        self.max_backoff = max_backoff  # after failures, wait up to 1 + this many intervals
        self.interval = interval
        self.step = step
        self.duty = duty
        self.failures = FailureLog(log, name, every=report_every)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        rest = 0.0  # extra wait the duty cap asks for after the last step
        while not self._stop.wait(self._pause(rest)):
            started = time.monotonic()
            self.run_once()
            rest = (time.monotonic() - started) * (1 / self.duty - 1)

    def _pause(self, rest: float) -> float:
        return max(self.interval() * (1 + min(self.failures.failures, self.max_backoff)), rest)

    def run_once(self) -> None:
        """One step, its failure logged (never raised): what the thread does each tick."""
        try:
            self.step()
        except Exception as exc:
            self.failures.failed(exc)
        else:
            self.failures.succeeded()
