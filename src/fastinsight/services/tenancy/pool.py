"""The tenants one API process has loaded, bounded by count and by model memory (LRU).

Loading builds a tenant's services and starts them with the model loading in the
background (``start``), so the first request is answered at once, from the version's
stored popular items, while the files load. When a load takes the process past
``max_loaded`` tenants or ``max_bytes`` of model files, the least recently used tenants
are stopped and dropped; ``pinned`` (the default tenant) never is. Requests that still
hold a dropped tenant's services finish with them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastinsight.observability import TENANT_MODEL_BYTES, TENANTS_LOADED

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    used: float


class TenantPool(Generic[T]):
    def __init__(
        self, *, build: Callable[[str], T], start: Callable[[T], None],
        stop: Callable[[T, bool], None], model_bytes: Callable[[T], int], max_loaded: int,
        max_bytes: int, pinned: str,
    ) -> None:
        self._build, self._start, self._stop, self._bytes = build, start, stop, model_bytes
        self.max_loaded, self.max_bytes, self.pinned = max_loaded, max_bytes, pinned
        self._loaded: dict[str, _Entry[T]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def peek(self, tenant: str) -> T | None:
        """The tenant's services if loaded (marking them used), else None; never loads."""
        entry = self._loaded.get(tenant)
        if entry is None:
            return None
        entry.used = time.monotonic()
        return entry.value

    def get(self, tenant: str) -> T:
        """The tenant's services, loading them first if needed (blocking: call it from a
        worker thread, not the event loop, when ``peek`` said None)."""
        value = self.peek(tenant)
        if value is not None:
            return value
        with self._lock:
            gate = self._loading.setdefault(tenant, threading.Lock())
        with gate:  # one load per tenant; others wait for it
            value = self.peek(tenant)
            if value is not None:
                return value
            value = self._build(tenant)
            self._start(value)
            with self._lock:
                self._loaded[tenant] = _Entry(value, time.monotonic())
            TENANTS_LOADED.set(len(self._loaded))
            log.info("tenant %s loaded (%d loaded)", tenant, len(self._loaded))
        self.trim()
        return value

    def put(self, tenant: str, value: T) -> None:
        """Add services started elsewhere (the default tenant's, at start-up)."""
        with self._lock:
            self._loaded[tenant] = _Entry(value, time.monotonic())
        TENANTS_LOADED.set(len(self._loaded))

    def loaded(self) -> dict[str, T]:
        return {tenant: entry.value for tenant, entry in list(self._loaded.items())}

    def sizes(self) -> dict[str, int]:
        """Model bytes per loaded tenant (also exported as a gauge)."""
        sizes = {}
        for tenant, value in self.loaded().items():
            sizes[tenant] = self._bytes(value)
            TENANT_MODEL_BYTES.labels(tenant=tenant).set(sizes[tenant])
        return sizes

    def trim(self) -> list[str]:
        """Unload least recently used tenants until both bounds hold; returns them."""
        dropped = []
        while True:
            sizes = self.sizes()
            if len(sizes) <= self.max_loaded and sum(sizes.values()) <= self.max_bytes:
                break
            with self._lock:
                victims = sorted((e.used, t) for t, e in self._loaded.items() if t != self.pinned)
            if len(victims) <= 1 and len(sizes) <= self.max_loaded:
                break  # one tenant alone over the memory bound stays: it must serve
            if not victims:
                break
            dropped.append(victims[0][1])
            self.unload(victims[0][1])
        return dropped

    def unload(self, tenant: str, discard: bool = False) -> bool:
        """Stop and drop the tenant's services; ``discard``: it was deleted (what they
        still hold for its database is dropped, not written)."""
        with self._lock:
            entry = self._loaded.pop(tenant, None)
        if entry is None:
            return False
        TENANTS_LOADED.set(len(self._loaded))
        with contextlib.suppress(KeyError):
            TENANT_MODEL_BYTES.remove(tenant)
        try:
            self._stop(entry.value, discard)
        except Exception:
            log.exception("tenant %s: stopping its services failed", tenant)
        log.info("tenant %s unloaded", tenant)
        return True

    def stop_all(self) -> None:
        for tenant in list(self._loaded):
            self.unload(tenant)
