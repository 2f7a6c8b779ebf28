"""May this process write now? The read side of the backup's write pause.

A backup taken with writes paused is consistent only if every writer honours the pause:
the API write routes, and the writers that run outside a request (training and model
activation from any path, insights refresh, segment rebuilds, jobs). ``ops`` sets and
clears the flag (``ops.maintenance.writes_paused``); everything that writes asks a
:class:`WriteGate` first and gets :class:`~fastinsight.errors.Unavailable` (HTTP 503 with
``Retry-After``, a clear message in the CLI) while the pause lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pymongo.database import Database

from fastinsight.errors import Unavailable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.maintenance import read_pause_flag

RETRY_AFTER_SECONDS = 5


class WriteGate:
    """Answers "may I write?", re-reading the flag at most every ``ttl`` seconds.

    The request path uses a ttl of about a second (one lookup per second, not per
    request); rare writers (training, activation, rebuilds) use ``ttl=0`` and read the
    flag every time they ask.
    """

    def __init__(
        self, db: Database[Document], *, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._checked_at = float("-inf")
        self._flag: Document | None = None

    def check(self, what: str = "") -> None:
        """Raise :class:`Unavailable` (503, Retry-After) while writes are paused."""
        now = self._clock()
        if self._ttl <= 0 or now - self._checked_at >= self._ttl:
            self._flag = read_pause_flag(self._db)
            self._checked_at = now
        if self._flag is not None:
            refused = f"; {what} refused" if what else ""
            raise Unavailable(
                f"writes are paused for maintenance ({self._flag.get('reason', 'unknown')}){refused}",
                retry_after=RETRY_AFTER_SECONDS,
            )


def ensure_writable(db: Database[Document], what: str) -> None:
    """For writers outside the request path: read the flag now and refuse while it is set."""
    WriteGate(db, ttl=0).check(what)
