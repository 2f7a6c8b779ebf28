"""Keeps the active model version in memory and switches to a new one atomically.

Every API process runs one manager. A background thread polls the single
``service_state`` document for the active version (cheap on MongoDB and FerretDB alike),
loads a changed version completely, checks it, and only then replaces the reference
the request handlers read. A request therefore sees either the old or the new version,
never a half-loaded one, and a version that fails its check is never switched in (nor
downloaded again on every poll: the failure is remembered until the version changes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo.database import Database
from pymongo.errors import PyMongoError

from fastinsight.config import Settings
from fastinsight.observability import MODEL_LOADED_AT, MODEL_VERSION
from fastinsight.services.serving import heap
from fastinsight.services.serving.artefacts import HostArtefacts
from fastinsight.services.serving.background import Ticker
from fastinsight.services.serving.bundle import ItemCatalog, ModelBundle
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadFailure:
    """A version this process could not serve, and what the attempt depended on."""

    version: str
    reason: str
    attempt: tuple[object, ...]
    at: datetime
class ServedModel(Protocol):
    """What a recommend service serves from: a loaded version and the item catalogue.
    The process's :class:`ModelManager` (the active version) is one; an experiment arm
    pinned to another version is another (``services.experiments.serving``)."""

    @property
    def current(self) -> ModelBundle | None: ...

    @property
    def catalog(self) -> ItemCatalog: ...

    @property
    def fallback(self) -> Document | None:
        """While the active version's files are still loading: its stored list of the
        most popular items (``fallback`` of the version document), else None."""


class ModelManager:
    def __init__(self, db: Database[Document], settings: Settings) -> None:
        self.repo = ModelVersionRepository(db)
        self.items = ItemRepository(db)
        self.settings = settings
        self.artefacts = HostArtefacts(settings.model_cache_dir or settings.var_dir / "models")
        self.current: ModelBundle | None = None
        self.catalog = ItemCatalog()
        self.last_error: str | None = None
        self.failed: dict[str, LoadFailure] = {}
        self._lock = threading.Lock()
        self._ticker = Ticker("model-poller", lambda: self.settings.model_poll_seconds, self.poll,
                              max_backoff=2)
        self._catalog_due = 0.0
        # Called (in the poller thread) after a version switch or a catalogue refresh, so
        # derived per-version state is rebuilt there rather than in a request.
        self.changed_listeners: list[Callable[[], None]] = []
        self._catalog_seen = datetime.now(UTC)
        self.fallback: Document | None = None
        self._stopped = threading.Event()

    @property
    def active_version(self) -> str | None:
        bundle = self.current
        return bundle.version if bundle else None

    # ---- loading ----------------------------------------------------------------------
    def sync(self) -> bool:
        """Load the active version if it differs from the one served. True if switched.

        A version that fails to load or to pass its check is remembered with the reason
        (``load_errors``) and not downloaded again until it is activated again or its
        stored files change; the served version stays. A database error is not held
        against the version: it propagates, and the poller retries with a back-off.
        """
        with self._lock:
            pointer = self.repo.active()
            wanted = str(pointer["version"]) if pointer else None
            if wanted is None or wanted == self.active_version:
                return False
            attempt = self._attempt(wanted, pointer)
            failed = self.failed.get(wanted)
            if failed is not None and failed.attempt == attempt:
                return False
            try:
                bundle = self._load(wanted)
            except PyMongoError:
                raise
            except Exception as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
                self.failed[wanted] = LoadFailure(wanted, reason, attempt, datetime.now(UTC))
                self.last_error = f"{wanted}: {reason}"
                log.error("not switching to model version %s (kept %s): %s", wanted,
                          self.active_version, reason, exc_info=exc)
                return False
            previous = self.current
            self.current = bundle
            self.failed.pop(wanted, None)
            self.last_error = None
        if previous is not None:
            MODEL_VERSION.labels(previous.version, previous.algorithm).set(0)
        MODEL_VERSION.labels(bundle.version, bundle.algorithm).set(1)
        MODEL_LOADED_AT.set(time.time())
        log.info("serving model version %s (%s)", bundle.version, bundle.algorithm)
        return True

    def _load(self, version: str) -> ModelBundle:
        directory, doc = self.artefacts.fetch(self.repo, version)
        bundle = ModelBundle.open(directory, doc, host=self.artefacts,
                                  exact_max_items=self.settings.ann_exact_max_items)
        problem = bundle.sanity_problem()
        if problem:
            raise ValueError(f"sanity check failed: {problem}")
        return bundle

    def _attempt(self, version: str, pointer: Document | None) -> tuple[object, ...]:
        """What a load attempt depends on: when the version was activated and what files
        it has. A remembered failure is tried again only once one of them changes."""
        doc = self.repo.get(version) or {}
        files = tuple((f.get("name"), f.get("sha256")) for f in doc.get("files", []))
        return ((pointer or {}).get("activated_at"), files)

    def prune_host_copies(self) -> None:
        """Remove this host's copies of versions no longer stored (pruned by retention)."""
        try:
            self.artefacts.prune([str(d["version"]) for d in self.repo.list(limit=None)])
        except OSError:
            log.warning("could not prune this host's model copies in %s", self.artefacts.root,
                        exc_info=True)

    def load_errors(self) -> dict[str, str]:
        """Versions this process could not load, with the reason (for the admin API)."""
        return {version: f.reason for version, f in dict(self.failed).items()}

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
        """Load the active version, then poll. A tenant loaded on demand calls this from a
        thread of its own, after ``read_fallback`` (``api.composition.Services.start``)."""
        try:
            self.refresh_catalog()
            self.sync()
        except Exception:  # the database may be down at start; the poller retries
            log.warning("initial model load failed; the poller retries", exc_info=True)
        self.fallback = None
        self._catalog_due = time.monotonic() + self.settings.catalog_refresh_seconds
        if not self._stopped.is_set():
            self._ticker.start()

    def read_fallback(self) -> None:
        """Answer from the active version's stored popular items until it is loaded."""
        try:
            pointer = self.repo.active()
            doc = self.repo.get(str(pointer["version"])) if pointer else None
            stored = (doc or {}).get("fallback")
            self.fallback = {**stored, "version": doc["version"]} if doc and stored else None
        except Exception:
            log.warning("could not read the active version's fallback list", exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        self._ticker.stop()

    def poll(self) -> None:
        """One poller step: switch versions, keep the catalogue current."""
        switched = self.sync()
        if switched:
            self.prune_host_copies()
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
