"""Keeps the active model version in memory and switches to a new one atomically.

Every API process runs one manager. A background thread polls the single
``service_state`` document for the active version (cheap on MongoDB and FerretDB alike),
loads a changed version completely, checks it, and only then replaces the reference
the request handlers read. A request therefore sees either the old or the new version,
never a half-loaded one, and a version that fails its check is never switched in.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.observability import MODEL_LOADED_AT, MODEL_VERSION
from fastinsight.services.serving import heap
from fastinsight.services.serving.background import Ticker
from fastinsight.services.serving.bundle import ItemCatalog, ModelBundle
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)


class ModelManager:
    def __init__(self, db: Database[Document], settings: Settings) -> None:
        self.repo = ModelVersionRepository(db)
        self.items = ItemRepository(db)
        self.settings = settings
        self.current: ModelBundle | None = None
        self.catalog = ItemCatalog()
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._ticker = Ticker("model-poller", lambda: self.settings.model_poll_seconds, self.poll,
                              max_backoff=2)
        self._catalog_due = 0.0
        # Called (in the poller thread) after a version switch or a catalogue refresh, so
        # derived per-version state is rebuilt there rather than in a request.
        self.changed_listeners: list[Callable[[], None]] = []
        self._catalog_seen = datetime.now(UTC)

    @property
    def active_version(self) -> str | None:
        bundle = self.current
        return bundle.version if bundle else None

    # ---- loading ----------------------------------------------------------------------
    def sync(self) -> bool:
        """Load the active version if it differs from the one served. True if switched."""
        with self._lock:
            wanted = self.repo.active_version()
            if wanted is None or wanted == self.active_version:
                return False
            try:
                with tempfile.TemporaryDirectory(prefix="fastinsight-model-") as tmp:
                    bundle = ModelBundle.load(self.repo, wanted, Path(tmp),
                                              exact_max_items=self.settings.ann_exact_max_items)
                problem = bundle.sanity_problem()
                if problem:
                    raise ValueError(problem)
            except Exception as exc:
                self.last_error = f"{wanted}: {exc}"
                log.error("not switching to model version %s: %s", wanted, exc)
                return False
            previous = self.current
            self.current = bundle
            self.last_error = None
        if previous is not None:
            MODEL_VERSION.labels(previous.version, previous.algorithm).set(0)
        MODEL_VERSION.labels(bundle.version, bundle.algorithm).set(1)
        MODEL_LOADED_AT.set(time.time())
        log.info("serving model version %s (%s)", bundle.version, bundle.algorithm)
        return True

    def refresh_catalog(self) -> None:
        """Reload all item metadata (start-up and version switches)."""
        started = datetime.now(UTC)
        self.catalog.refresh(self.items.all_documents())
        self._catalog_seen = started

    def refresh_changed_items(self) -> None:
        """Apply items other processes changed or deleted since the last look.

        Deliberately not a full reload: rebuilding 100,000 item records holds the
        interpreter for about a second, which would stall every request in this process.
        Deletions arrive as tombstones; an item stored again after its deletion wins.
        """
        started = datetime.now(UTC)
        since = self._catalog_seen - timedelta(seconds=5)  # clock skew between writers
        changed = self.items.changed_since(since)
        alive = {d["item_id"] for d in changed}
        gone = [i for i in self.items.deleted_since(since)
                if i not in alive and self.catalog.get(i) is not None]
        for item_id in gone:
            self.catalog.apply(None, item_id)
        self.catalog.merge(changed)
        self._catalog_seen = started

    def item_changed(self, item_id: str) -> None:
        """Apply a write this process made, so filters see it on the next request."""
        self.catalog.apply(self.items.get(item_id), item_id)

    # ---- background polling -----------------------------------------------------------
    def start(self) -> None:
        try:
            self.refresh_catalog()
            self.sync()
        except Exception as exc:  # the database may be down at start; the poller retries
            log.warning("initial model load failed: %s", exc.__class__.__name__)
        self._catalog_due = time.monotonic() + self.settings.catalog_refresh_seconds
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def poll(self) -> None:
        """One poller step: switch versions, keep the catalogue current."""
        switched = self.sync()
        if switched or self.catalog.refreshed_at is None:
            self.refresh_catalog()  # a new version: align everything once
        elif time.monotonic() >= self._catalog_due:
            self.refresh_changed_items()
        else:
            return
        self._catalog_due = time.monotonic() + self.settings.catalog_refresh_seconds
        for listener in self.changed_listeners:
            listener()
        heap.settle(reclaim=switched)
