"""Write pause ("maintenance mode") used to take a consistent backup.

FerretDB has neither snapshots nor multi-document transactions, and a plain MongoDB
standalone has no point-in-time dump either. The one reliable way to get a dump in which
all collections describe the same moment is to stop writes for its duration: the backup
sets a flag document, API write paths consult :class:`WriteGate` and answer 503 with
``Retry-After`` while it is set, and the backup waits a short grace period so writes that
were already in flight land before it starts reading.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from fastinsight.errors import Unavailable

log = logging.getLogger(__name__)

STATE_COLLECTION = "service_state"
FLAG_ID = "maintenance"

Document = dict[str, Any]


def read_flag(db: Database[Document]) -> Document | None:
    """The flag document when writes are paused, else ``None`` (one ``_id`` lookup)."""
    doc = db[STATE_COLLECTION].find_one({"_id": FLAG_ID})
    return doc if doc and doc.get("read_only") else None


@contextmanager
def writes_paused(
    db: Database[Document],
    reason: str,
    *,
    grace_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Set the flag for the duration of the block; always cleared afterwards."""
    collection = db[STATE_COLLECTION]
    collection.replace_one(
        {"_id": FLAG_ID},
        {
            "_id": FLAG_ID,
            "read_only": True,
            "reason": reason,
            "since": datetime.now(UTC),
            "owner": f"{socket.gethostname()}:{os.getpid()}",
        },
        upsert=True,
    )
    log.warning("writes paused on %s: %s", db.name, reason)
    try:
        sleep(grace_seconds)
        yield
    finally:
        collection.delete_one({"_id": FLAG_ID})
        log.warning("writes resumed on %s", db.name)


class WriteGate:
    """Answers "may I write?" for API write paths, re-reading the flag at most every ``ttl``."""

    def __init__(
        self,
        db: Database[Document],
        *,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._checked_at = float("-inf")
        self._flag: Document | None = None

    def check(self) -> None:
        """Raise :class:`Unavailable` (503, Retry-After) while writes are paused."""
        now = self._clock()
        if now - self._checked_at >= self._ttl:
            self._flag = read_flag(self._db)
            self._checked_at = now
        if self._flag is not None:
            raise Unavailable(
                f"writes are paused for maintenance ({self._flag.get('reason', 'unknown')})",
                retry_after=5,
            )
