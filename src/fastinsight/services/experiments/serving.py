"""What a serving process needs for the experiments that have not ended: each arm's
model version loaded, a recommend service per arm, and a fast ``route(user)``.

A background thread (every ``experiment_poll_seconds``, and at once after a change made
through this process) reads the experiment documents, resolves each arm to a model
version (a named version; the newest ready version of an algorithm, preferring the
active one; or the active version itself), loads the versions it does not hold yet
(never in a request), and then swaps in the new routing table. An experiment is only
assigned users once every one of its arms is loaded in this process; until then its
users get the default answer and their lists are not counted for it. Memory: each
extra version costs about its artefact size (``ServingStatus.loaded_bytes``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.schemas.experiments import ServingStatus
from fastinsight.services.experiments.assignment import ArmPicker, bucket, traffic_bucket
from fastinsight.services.experiments.definition import Arm, Experiment
from fastinsight.services.serving.artefacts import HostArtefacts
from fastinsight.services.serving.background import Ticker
from fastinsight.services.serving.bundle import ItemCatalog, ModelBundle
from fastinsight.services.serving.realtime import RealtimeState
from fastinsight.services.serving.recommend import RecommendService
from fastinsight.services.serving.versions import ModelManager
from fastinsight.services.serving.view import CatalogViewCache
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.experiments import ExperimentRepository
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)

ServiceKey = tuple[str | None, str]  # (version, rules as JSON): arms that share a service


@dataclass(frozen=True, slots=True)
class Route:
    """Who answers a request, and which experiment arm (if any) it counts for."""

    service: RecommendService
    experiment_id: str | None = None
    variant: str | None = None


class PinnedModel:
    """A ``ServedModel`` fixed to one version, sharing the process's item catalogue."""

    def __init__(self, manager: ModelManager, bundle: ModelBundle, artefact_bytes: int) -> None:
        self.manager = manager
        self.bundle = bundle
        self.artefact_bytes = artefact_bytes

    @property
    def current(self) -> ModelBundle | None:
        return self.bundle

    @property
    def catalog(self) -> ItemCatalog:
        return self.manager.catalog

    @property
    def fallback(self) -> Document | None:
        return None


@dataclass(frozen=True)
class _Live:
    """An experiment ready to assign users in this process (times in epoch seconds)."""

    id: str
    salt: str
    start: float
    end: float
    low: float
    high: float
    endpoints: frozenset[str]
    picker: ArmPicker
    routes: tuple[Route, ...]
    keys: frozenset[ServiceKey]  # the arm services it uses


class ExperimentRuntime:
    def __init__(self, db: Database[Document], settings: Settings, manager: ModelManager,
                 default: RecommendService, realtime: RealtimeState) -> None:
        self.db = db
        self.settings = settings
        self.manager = manager
        self.realtime = realtime
        self.repo = ExperimentRepository(db)
        self.versions = ModelVersionRepository(db)
        self.default_route = Route(default)
        self._live: tuple[_Live, ...] = ()
        self._pinned: dict[str, PinnedModel] = {}
        self._services: dict[ServiceKey, RecommendService] = {}
        self.status: dict[str, ServingStatus] = {}
        self._lock = threading.Lock()
        self._ticker = Ticker("experiments-poller", lambda: settings.experiment_poll_seconds, self.refresh)

    # ---- request path -------------------------------------------------------------
    def route(self, user_id: str | None, endpoint: str) -> Route:
        live = self._live
        if not live or user_id is None:
            return self.default_route
        now = time.time()
        slot = -1.0
        for entry in live:
            if endpoint not in entry.endpoints or not entry.start <= now < entry.end:
                continue
            if slot < 0:
                slot = traffic_bucket(user_id)
            if entry.low <= slot < entry.high:
                return entry.routes[entry.picker.pick(bucket(entry.salt, user_id))]
        return self.default_route

    # ---- background -----------------------------------------------------------------
    def start(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # the database may be down at start; the poller retries
            log.warning("experiments not loaded at start: %s", exc.__class__.__name__)
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def models_changed(self) -> None:
        """After a version switch or catalogue refresh (in the model poller's thread): follow
        the active version and rebuild the arms' views. A failure here is logged, never
        passed on: it must not hold up the model poller."""
        try:
            self.refresh()
        except Exception as exc:
            log.warning("experiments not refreshed after a model change: %s", exc.__class__.__name__)
        self.warm()

    def warm(self) -> None:
        """Rebuild the arms' catalogue views (after a catalogue change), off the request path."""
        for service in list(self._services.values()):
            try:
                service.warm()
            except Exception as exc:  # an arm without a model yet: requests report it
                log.info("experiment arm not warmed: %s", exc.__class__.__name__)

    def refresh(self) -> None:
        """Re-read the experiments, load what their arms need, swap the routing table."""
        with self._lock:
            now = datetime.now(UTC)
            live, status = [], {}
            previous = {entry.id: entry for entry in self._live}
            used: set[ServiceKey] = set()
            for doc in self.repo.list(limit=1000):
                exp = Experiment.from_doc(doc)
                ended = exp.end()
                if ended is not None and ended <= now:
                    continue
                try:
                    routes, versions, keys = self._routes(exp)
                except Exception as exc:
                    kept = previous.get(exp.id)
                    if kept is not None:  # keep serving what this process already holds
                        live.append(kept)
                        used |= kept.keys
                    status[exp.id] = ServingStatus(ready=kept is not None, versions={}, error=str(exc)[:300])
                    log.warning("experiment %s not refreshed here: %s", exp.id, exc)
                    continue
                used |= keys
                live.append(_live(exp, routes, keys))
                status[exp.id] = ServingStatus(ready=True, versions=versions,
                                               loaded_bytes=self._extra_bytes(versions.values()))
            self._live = tuple(live)
            self.status = status
            self._services = {k: s for k, s in self._services.items() if k in used}
            held = {k[0] for k in self._services}
            self._pinned = {v: p for v, p in self._pinned.items() if v in held}

    def _extra_bytes(self, versions: Iterable[str | None]) -> dict[str, int]:
        """Artefact bytes of the versions held only for experiments (not the active one)."""
        active = self.manager.current
        return {v: self._pinned[v].artefact_bytes for v in set(versions)
                if v is not None and v in self._pinned and self._pinned[v].bundle is not active}

    def _routes(
        self, exp: Experiment
    ) -> tuple[tuple[Route, ...], dict[str, str | None], frozenset[ServiceKey]]:
        routes, versions, keys = [], {}, set()
        for arm in exp.arms:
            version = self._resolve(arm)
            key, service = self._service(version, arm)
            routes.append(Route(service, exp.id, arm.name))
            versions[arm.name] = version or self.manager.active_version
            if key is not None:
                keys.add(key)
        return tuple(routes), versions, frozenset(keys)

    def _resolve(self, arm: Arm) -> str | None:
        """The version an arm serves now; None: whatever is active."""
        if arm.model_version:
            return arm.model_version
        if not arm.algorithm:
            return None
        active = self.manager.current
        if active is not None and active.algorithm == arm.algorithm:
            return active.version
        newest = self.versions.newest_ready(arm.algorithm)
        if newest is None:
            raise LookupError(f"no ready version of {arm.algorithm!r}")
        return newest

    def _service(self, version: str | None, arm: Arm) -> tuple[ServiceKey | None, RecommendService]:
        """The arm's recommend service, shared by arms with the same version and rules."""
        rules = json.dumps(arm.rules, sort_keys=True) if arm.rules is not None else ""
        if version is None and not rules:
            return None, self.default_route.service
        key = (version, rules)
        pinned = self._pin(version) if version is not None else None
        service = self._services.get(key)
        if service is None:
            settings = self.settings
            if arm.rules is not None:
                settings = settings.model_copy(update={
                    "boost_categories": arm.rules.get("boost_categories") or {},
                    "pinned_items": arm.rules.get("pinned_items") or [],
                    "max_per_category": arm.rules.get("max_per_category")})
            if pinned is None:
                service = RecommendService(self.db, settings, self.manager, self.realtime)
            else:
                service = RecommendService(self.db, settings, pinned, self.realtime, CatalogViewCache())
            service.warm()
            self._services[key] = service
        return key, service

    def _pin(self, version: str) -> PinnedModel:
        """The arm's own handle on ``version``: the active bundle itself while that version
        is active (no second copy), else a copy loaded here."""
        pinned = self._pinned.get(version)
        active = self.manager.current
        is_active = active is not None and active.version == version
        if pinned is not None:
            if is_active and pinned.bundle is not active and active is not None:
                pinned.bundle = active  # drop our copy: the manager holds the same version
            return pinned
        doc = self.versions.get(version)
        if doc is None:
            raise LookupError(f"model version {version!r} does not exist")
        size = sum(int(f.get("bytes", 0)) for f in doc.get("files", []))
        bundle = active if is_active and active is not None else _load(
            self.manager.artefacts, self.versions, version, self.settings.ann_exact_max_items)
        pinned = PinnedModel(self.manager, bundle, size)
        self._pinned[version] = pinned
        return pinned


def _load(host: HostArtefacts, repo: ModelVersionRepository, version: str, exact_max_items: int
          ) -> ModelBundle:
    started = time.perf_counter()
    directory, doc = host.fetch(repo, version)
    bundle = ModelBundle.open(directory, doc, host=host, exact_max_items=exact_max_items)
    problem = bundle.sanity_problem()
    if problem:
        raise ValueError(f"model version {version} failed its sanity check: {problem}")
    log.info("experiment arm version %s loaded in %.1fs", version, time.perf_counter() - started)
    return bundle


def _live(exp: Experiment, routes: tuple[Route, ...], keys: frozenset[ServiceKey]) -> _Live:
    end = exp.end()
    return _Live(id=exp.id, salt=exp.salt, start=exp.start_at.timestamp(),
                 end=end.timestamp() if end is not None else float("inf"),
                 low=exp.traffic[0], high=exp.traffic[1], endpoints=frozenset(exp.endpoints),
                 picker=exp.picker(), routes=routes, keys=keys)
