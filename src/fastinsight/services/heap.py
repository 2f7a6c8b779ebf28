"""Keeps CPython's cyclic garbage collector off the data a serving process holds.

A served model version with its catalogue is several hundred thousand Python objects
(id maps, item records, category lists) that live until the next version switch. A full
collection walks every one of them: at 100,000 items and 200,000 users it paused the
API process for 100-220 ms, several times a minute under load, and every request in
flight waited (the worst latencies of ``bench/serve.py``). ``settle`` runs one
collection right after a load, then moves everything alive into the interpreter's
permanent generation, which later collections skip. Frozen objects are still freed by
reference counting when nothing refers to them any more (an old version after a switch):
they are plain arrays, dicts and strings without reference cycles.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def settle() -> None:
    """Collect once, then exempt every live object from later collections."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info("heap settled: %d objects frozen in %.0f ms", gc.get_freeze_count(),
             (time.perf_counter() - started) * 1000)
