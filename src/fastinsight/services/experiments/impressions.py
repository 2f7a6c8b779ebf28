"""Impressions written off the request path: a bounded in-memory queue, flushed in batches.

A request only appends a small document to a deque (no lock, no I/O). A daemon thread
writes a batch of ``impression_batch_size`` as soon as one is waiting, and what is left
once the oldest queued impression has waited ``impression_flush_seconds``; the storage
packs each batch into one bucket document. (Draining the whole queue on every wake-up
wrote, under load, a small bucket every database round trip.) While the database is down the failed batch
is kept as it is and retried first (same bucket, so a write that did land is not repeated); once
queue and failed batch hold ``impression_buffer_max`` impressions new ones are dropped
(counted in ``fastinsight_impressions_dropped_total``) so memory stays bounded. ``stop`` writes
everything still queued before it returns (graceful shutdown). What a crash (SIGKILL,
power loss) loses is what was queued: at most about one flush interval of impressions
in normal operation (docs/experiments.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import InsertOutcome

log = logging.getLogger(__name__)

IMPRESSIONS_WRITTEN = Counter("fastinsight_impressions_written_total",
                              "Impressions written to the database by this process.")
IMPRESSIONS_DROPPED = Counter("fastinsight_impressions_dropped_total",
                              "Impressions dropped because the in-memory queue was full.")
IMPRESSIONS_QUEUED = Gauge("fastinsight_impressions_queued",
                           "Impressions waiting in this process's queue.")
RETRY_PAUSE_MAX = 10.0


class ImpressionBuffer:
    def __init__(
        self, write: Callable[[Sequence[Document]], InsertOutcome], *, max_queued: int,
        batch_size: int, flush_seconds: float,
    ) -> None:
        self._write = write
        self.max_queued = max_queued
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._queue: deque[Document] = deque()
        self._failed: list[Document] = []  # a batch whose write failed, retried as it is
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.last_error: str | None = None

    def __len__(self) -> int:
        return len(self._queue) + len(self._failed)

    # ---- request path -------------------------------------------------------------
    def record(self, doc: Document) -> bool:
        """Queue one impression; False if the queue is full and it was dropped."""
        queue = self._queue
        if len(queue) + len(self._failed) >= self.max_queued:
            self.dropped += 1
            IMPRESSIONS_DROPPED.inc()
            return False
        queue.append(doc)
        if len(queue) == self.batch_size:
            self._wake.set()
        return True

    # ---- writing ------------------------------------------------------------------
    def flush(self) -> int:
        """Write everything queued now; returns how many were written. Raises if the
        database fails (the unwritten batch stays queued)."""
        written = 0
        with self._flush_lock:
            while self._queue or self._failed:
                written += self._write_batch()
        return written

    def flush_due(self) -> int:
        """Write the full batches, and the rest once its oldest impression (the queue's
        head: its ``ts``) has waited a flush interval. Raises like ``flush``."""
        written = 0
        with self._flush_lock:
            while self._failed or len(self._queue) >= self.batch_size:
                written += self._write_batch()
            if self._queue and self._next_due() <= 0:
                written += self._write_batch()
        return written

    def _next_due(self) -> float:
        """Seconds until the queued rest is due (a flush interval when nothing is queued)."""
        try:
            head: datetime = self._queue[0]["ts"]
        except IndexError:
            return self.flush_seconds
        return self.flush_seconds - (datetime.now(UTC) - head).total_seconds()

    def _write_batch(self) -> int:
        # A failed batch is retried exactly as it was: it is one bucket, one id.
        batch, self._failed = self._failed, []
        if not batch:
            queue = self._queue
            while queue and len(batch) < self.batch_size:
                batch.append(queue.popleft())
        if not batch:
            return 0
        try:
            self._write(batch)
        except Exception:
            self._failed = batch
            raise
        self.written += len(batch)
        IMPRESSIONS_WRITTEN.inc(len(batch))
        return len(batch)

    # ---- background thread --------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="impression-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            pause = (min(self.flush_seconds * (1 + failures), max(RETRY_PAUSE_MAX, self.flush_seconds))
                     if failures else max(0.01, self._next_due()))
            self._wake.wait(pause)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.flush_due()
                failures = 0
                self.last_error = None
            except Exception as exc:
                failures += 1
                self.last_error = exc.__class__.__name__
                if failures == 1:
                    log.warning("impressions not written (%d queued), retrying: %s",
                                len(self._queue), self.last_error)
            IMPRESSIONS_QUEUED.set(len(self._queue))

    def stop(self, timeout: float = 10.0, discard: bool = False) -> None:
        """Stop the thread and write what is still queued (retrying for ``timeout`` s).
        ``discard``: drop it instead (the tenant was deleted: its database must stay gone)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        if discard:
            self._queue.clear()
            self._failed = []
        deadline = time.monotonic() + timeout
        while self._queue:
            try:
                self.flush()
            except Exception as exc:
                if time.monotonic() >= deadline:
                    log.error("shutting down with %d impressions unwritten: %s",
                              len(self._queue), exc.__class__.__name__)
                    return
                time.sleep(0.2)
        IMPRESSIONS_QUEUED.set(0)
