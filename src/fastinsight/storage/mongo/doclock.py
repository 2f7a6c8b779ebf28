"""Short per-document write locks (``document_locks``), for updates that must not interleave.

On MongoDB a single ``update_one`` is atomic per document. FerretDB 1.24 is not: it
reads the matching document, applies the update in its own process and writes the
whole document back by ``_id``, so two concurrent ``$set`` on different fields of one
document can lose one of them. Inserting a document with a fixed ``_id`` is atomic on
both (a unique index), so a lock is that insert; a duplicate-key error means another
writer holds it, deleting it releases it.

A holder that dies leaves its lock behind until ``lease`` seconds have passed; the next
writer then takes it over. Two writers taking over the same expired lock in the same
few milliseconds can both succeed (FerretDB deletes by ``_id``); that needs a crashed
holder and a race, and costs at most the lost update the lock is there to prevent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fastinsight.errors import Unavailable
from fastinsight.storage.mongo.client import Document

DOCUMENT_LOCKS = "document_locks"


@contextmanager
def document_lock(
    db: Database[Document],
    key: str,
    *,
    wait: float = 5.0,
    lease: float = 10.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the lock named ``key`` for the block; :class:`Unavailable` after ``wait`` seconds."""
    locks = db[DOCUMENT_LOCKS]
    token = uuid.uuid4().hex
    deadline = clock() + wait
    delay = 0.002
    while True:
        now = clock()
        try:
            locks.insert_one({"_id": key, "token": token, "expires": now + lease})
            break
        except DuplicateKeyError:
            held = locks.find_one({"_id": key})
            if held is None:
                continue
            if float(held.get("expires", 0.0)) < now:
                locks.delete_one({"_id": key, "token": held.get("token")})
                continue
            if now >= deadline:
                raise Unavailable(
                    "another request is changing the same record; retry", retry_after=1
                ) from None
            sleep(delay)
            delay = min(delay * 2, 0.02)
    try:
        yield
    finally:
        locks.delete_one({"_id": key, "token": token})
