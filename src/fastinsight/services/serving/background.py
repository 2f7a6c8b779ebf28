"""A periodic task in a daemon thread, for the pollers each API process runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    """Calls ``step`` every ``interval`` seconds until ``stop``; a failing step is logged
    once per failure streak and retried with a growing pause.

    ``duty`` caps the share of wall time spent inside ``step``: after a step that took
    ``t`` seconds the next one waits at least ``t * (1 / duty - 1)``. A poll that is
    cheap keeps its interval; one that became slow (a scan on a server without the
    index) backs off instead of keeping the database busy.
    """

    def __init__(
        self, name: str, interval: Callable[[], float], step: Callable[[], None],
        max_backoff: int = 20, duty: float = 1.0,
    ) -> None:
        if not 0 < duty <= 1:
            raise ValueError("duty must be in (0, 1]")
        self.name = name
        self.max_backoff = max_backoff  # after failures, wait up to 1 + this many intervals
        self.interval = interval
        self.step = step
        self.duty = duty
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
        failures = 0
        rest = 0.0  # extra wait the duty cap asks for after the last step
        while not self._stop.wait(max(self.interval() * (1 + min(failures, self.max_backoff)), rest)):
            started = time.monotonic()
            try:
                self.step()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("%s failed: %s", self.name, exc.__class__.__name__)
            rest = (time.monotonic() - started) * (1 / self.duty - 1)
