"""When to send a request again: 429 and 503 only, after the server's ``Retry-After``
or an exponential backoff with jitter; never for other 4xx."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` further attempts after the first. Waits grow from ``backoff``
    seconds, doubling up to ``max_backoff``; a ``Retry-After`` of the server is waited
    for in full, unless it is longer than ``max_retry_after``: then the error is raised
    at once rather than retried early."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (0-based), or None to give up."""
        if attempt >= self.max_retries:
            return None
        # Jitter spreads clients that failed together; not a security use of random.
        backoff = min(self.max_backoff, self.backoff * 2.0 ** attempt) * random.uniform(0.5, 1.0)  # noqa: S311
        if retry_after is None:
            return backoff
        if retry_after > self.max_retry_after:
            return None
        return max(retry_after, backoff)


NO_RETRIES = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
