"""Row quotas of a tenant: a write that would store more users, items or interactions
than the tenant's quota is refused whole (403 ``quota_exceeded``) before anything of it
is written.

The count of stored rows is the server's estimate, re-read at most every
``refresh_seconds`` and raised by what this process admitted since. A batch that fits
under that count is admitted at once; one that does not is checked exactly (rows whose
id is already stored do not count again), so re-sending stored rows never trips it.
Several API processes each admit against their own copy: near the bound the total can
overshoot by what the others admitted within ``refresh_seconds`` (docs/tenancy.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from pymongo.database import Database

from fastinsight.errors import QuotaExceeded
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.schema import INTERACTIONS, ITEMS, USERS

Admit = Callable[[str, Sequence[str]], None]
COLLECTIONS = {"users": USERS, "items": ITEMS, "interactions": INTERACTIONS}


class RowQuota:
    def __init__(self, db: Database[Document], limits: Mapping[str, int | None],
                 refresh_seconds: float = 5.0) -> None:
        self.db = db
        self.limits = {k: v for k, v in limits.items() if v is not None and k in COLLECTIONS}
        self.refresh_seconds = refresh_seconds
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def admit(self, kind: str, ids: Sequence[str]) -> None:
        """Raise :class:`QuotaExceeded` unless ``ids`` (rows of ``kind`` about to be
        written) fit under the tenant's quota; count them as written otherwise."""
        limit = self.limits.get(kind)
        if limit is None or not ids:
            return
        with self._lock:
            count = self._count(kind)
            new = len(ids)
            if count + new > limit:
                count = self._count(kind, fresh=True)
                new = len(ids) - self._stored(kind, ids)
            if count + new > limit:
                raise QuotaExceeded(
                    f"the tenant's quota of {limit:,} {kind} is reached: {count:,} stored, this "
                    f"write adds {new:,}; delete some or ask the operator for a larger quota",
                    details=[{"field": kind, "message": f"quota {limit}, stored {count}, adding {new}"}])
            stamp = self._counts[kind][1]
            self._counts[kind] = (count + new, stamp)

    def _count(self, kind: str, fresh: bool = False) -> int:
        cached = self._counts.get(kind)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[1] < self.refresh_seconds:
            return cached[0]
        count = int(self.db[COLLECTIONS[kind]].estimated_document_count())
        self._counts[kind] = (count, now)
        return count

    def _stored(self, kind: str, ids: Sequence[str]) -> int:
        unique = list(dict.fromkeys(ids))
        stored = 0
        for start in range(0, len(unique), 1000):
            chunk = unique[start:start + 1000]
            stored += self.db[COLLECTIONS[kind]].count_documents({"_id": {"$in": chunk}})
        return stored + (len(ids) - len(unique))


def no_quota(kind: str, ids: Sequence[str]) -> None:
    """The admit function of a tenant without quotas."""
