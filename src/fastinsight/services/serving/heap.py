"""Keeps CPython's cyclic garbage collector off the data a serving process holds.

A served model version with its catalogue is several hundred thousand Python objects
(id maps, item records, category lists) that live until the next version switch. A full
collection walks every one of them: at 100,000 items and 200,000 users it paused the
API process for 100-230 ms at a time, and every request in flight waited. ``settle`` runs one
collection right after a load, then moves everything alive into the interpreter's
permanent generation, which later collections skip. Frozen objects are still freed by
reference counting when nothing refers to them any more; on a version switch the
collector gets them back for one pass, for what only it can free.

That pass walks every object of the process: with several tenants loaded it pauses all
of them (about 90 ms with 8 tenants of 5,000 items each), so one tenant's retrains would
stall the others' answers. A process therefore reclaims at most once every
``RECLAIM_EVERY_SECONDS``; a switch in between settles without reclaiming, and the
replaced versions' reference cycles wait for the next reclaim (memory, never answers).
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)

RECLAIM_EVERY_SECONDS = 600.0
_state = {"reclaimed_at": float("-inf"), "pending": False}


def settle(reclaim: bool = False) -> None:
    """Collect once, then exempt every live object from later collections.

    ``reclaim`` first returns the frozen objects to the collector, so that a replaced
    version's reference cycles (a Keras model has many) are freed too: a full pass over
    everything, worth it on a version switch, not on every catalogue refresh.
    """
    started = time.perf_counter()
    reclaim = _reclaim_now(reclaim)
    if reclaim:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.info("heap settled: %d objects frozen in %.0f ms", gc.get_freeze_count(),
             (time.perf_counter() - started) * 1000)


def _reclaim_now(asked: bool) -> bool:
    """Whether this settle reclaims: asked now or earlier, and the last reclaim is old."""
    now = time.monotonic()
    if not (asked or _state["pending"]):
        return False
    if now - float(_state["reclaimed_at"]) < RECLAIM_EVERY_SECONDS:
        _state["pending"] = True
        return False
    _state["reclaimed_at"], _state["pending"] = now, False
    return True
