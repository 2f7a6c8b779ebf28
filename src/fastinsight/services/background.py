"""A periodic task in a daemon thread, for the pollers each API process runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    """Calls ``step`` every ``interval`` seconds until ``stop``; a failing step is logged
    once per failure streak and retried with a growing pause."""

    def __init__(
        self, name: str, interval: Callable[[], float], step: Callable[[], None],
        max_backoff: int = 20,
    ) -> None:
        self.name = name
        self.max_backoff = max_backoff  # after failures, wait up to 1 + this many intervals
        self.interval = interval
        self.step = step
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
        while not self._stop.wait(self.interval() * (1 + min(failures, self.max_backoff))):
            try:
                self.step()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("%s failed: %s", self.name, exc.__class__.__name__)
