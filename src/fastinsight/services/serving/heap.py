"""Keeps CPython's cyclic garbage collector off the data a serving process holds.

A served model version with its catalogue is several hundred thousand Python objects
(id maps, item records, category lists) that live until the next version switch. A full
collection walks every one of them: at 100,000 items and 200,000 users it paused the
API process for 100-230 ms at a time, and every request in flight waited. ``settle`` runs one
collection right after a load, then moves everything alive into the interpreter's
permanent generation, which later collections skip. Frozen objects are still freed by
reference counting when nothing refers to them any more; on a version switch the
collector gets them back for one pass, for what only it can free.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def settle(reclaim: bool = False) -> None:
    """Collect once, then exempt every live object from later collections.

    ``reclaim`` first returns the frozen objects to the collector, so that a replaced
    version's reference cycles (a Keras model has many) are freed too: a full pass over
    everything, worth it on a version switch, not on every catalogue refresh.
    """
    started = time.perf_counter()
    if reclaim:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.info("heap settled: %d objects frozen in %.0f ms", gc.get_freeze_count(),
             (time.perf_counter() - started) * 1000)
