"""Per-tenant token buckets: ``rate`` requests per second with bursts of ``burst``.

Each API process keeps its own buckets (no database round trip per request), so a
deployment of N processes admits up to N times the rate; docs/tenancy.md says so.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastinsight.errors import RateLimited

MAX_RETRY_AFTER = 86_400  # a day: a limit of 1e-300 requests/s still answers a sane header


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, tenant: str, rate: float, burst: float) -> None:
        """Take one token for ``tenant`` or raise :class:`RateLimited` with the wait."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate
        raise RateLimited(f"tenant {tenant!r} is over its rate limit of {rate:g} requests/s",
                          retry_after=min(MAX_RETRY_AFTER, max(1, math.ceil(min(wait, 1e9)))))

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._buckets.pop(tenant, None)
