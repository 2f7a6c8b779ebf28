"""Write pause ("maintenance mode") used to take a consistent backup.

FerretDB has neither snapshots nor multi-document transactions, and a plain MongoDB
standalone has no point-in-time dump either. The one reliable way to get a dump in which
all collections describe the same moment is to stop writes for its duration: the backup
sets a flag document, every writer consults a :class:`WriteGate` (API write routes answer
503 with ``Retry-After``; training, activation, insights and segment rebuilds and jobs
refuse to start), and the backup waits a short grace period so writes that were already
in flight land before it starts reading.

This module is the setting side; the flag's storage is ``storage.mongo.maintenance`` and
the read side, which services use, is ``services.writes``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pymongo.database import Database

from fastinsight.ops.jobs.process import pid_alive
from fastinsight.services.writes import WriteGate, ensure_writable
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.maintenance import (
    FLAG_ID,
    STATE_COLLECTION,
    clear_pause_flag,
    clear_pause_flag_of,
    read_pause_flag,
    set_pause_flag,
)

log = logging.getLogger(__name__)

__all__ = ["FLAG_ID", "STATE_COLLECTION", "WriteGate", "ensure_writable", "read_flag", "writes_paused"]


def read_flag(db: Database[Document]) -> Document | None:
    """The flag document when writes are paused, else ``None`` (one ``_id`` lookup)."""
    return read_pause_flag(db)


@contextmanager
def writes_paused(
    db: Database[Document],
    reason: str,
    *,
    grace_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Set the flag for the duration of the block; always cleared afterwards."""
    set_pause_flag(db, {
        "reason": reason,
        "since": datetime.now(UTC),
        "owner": f"{socket.gethostname()}:{os.getpid()}",
    })
    log.warning("writes paused on %s: %s", db.name, reason)
    try:
        sleep(grace_seconds)
        yield
    finally:
        clear_pause_flag(db)
        log.warning("writes resumed on %s", db.name)


def reclaim_abandoned_pause(db: Database[Document]) -> bool:
    """Clear the flag when its owner, a process of this host, is gone: a backup killed
    before its clean-up could run (SIGKILL after a timeout's grace, the machine's OOM
    killer) must not leave writes paused until someone deletes the flag by hand. Owners
    on other hosts are left alone (their liveness cannot be seen from here)."""
    flag = read_pause_flag(db)
    if flag is None:
        return False
    owner = str(flag.get("owner", ""))
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or pid_alive(int(pid)):
        return False
    if clear_pause_flag_of(db, owner):
        log.warning("writes resumed on %s: the %s that paused them (%s) is gone",
                    db.name, flag.get("reason", "maintenance"), owner)
        return True
    return False
