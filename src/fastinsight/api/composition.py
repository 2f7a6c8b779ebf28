"""The composition root: every service of the API process, built once in the app's lifespan.

``Services.build`` constructs everything without touching the database; ``start`` wires
the listeners between services and starts the background work; ``stop`` undoes it in
reverse order. Routes reach the services only through the typed aliases of ``api.deps``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.api.readiness import Readiness
from fastinsight.config import Settings
from fastinsight.ops.jobs.runner import JobService
from fastinsight.ops.maintenance import WriteGate
from fastinsight.ops.settings import OpsSettings
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.audience import AudienceService
from fastinsight.services.insights.segments import SegmentService
from fastinsight.services.serving import heap
from fastinsight.services.serving.realtime import RealtimePoller, RealtimeState
from fastinsight.services.serving.recommend import RecommendService
from fastinsight.services.serving.versions import ModelManager
from fastinsight.services.training.admin import ModelAdmin
from fastinsight.storage.mongo import connect, get_database
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.jobs import JobStore
from fastinsight.storage.mongo.users import UserRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    client: MongoClient[Document]
    db: Database[Document]
    readiness: Readiness
    catalog: CatalogService
    ingest: IngestService
    models: ModelManager  # the served model version, polled from the database
    realtime: RealtimeState
    poller: RealtimePoller
    recommend: RecommendService
    model_admin: ModelAdmin
    jobs: JobService
    write_gate: WriteGate
    insights: InsightsService
    audience: AudienceService
    segments: SegmentService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Construct every service; opens the client (lazily) but reads nothing yet."""
        client = connect(settings)
        db = get_database(client, settings)
        models = ModelManager(db, settings)
        realtime = RealtimeState(InteractionRepository(db), UserRepository(db),
                                 max_users=settings.realtime_max_users)
        insights = InsightsService(db)
        return cls(
            settings=settings, client=client, db=db,
            readiness=Readiness(client, db, models),
            catalog=CatalogService(db), ingest=IngestService(db, settings),
            models=models, realtime=realtime,
            poller=RealtimePoller(realtime, settings.realtime_poll_seconds),
            recommend=RecommendService(db, settings, models, realtime),
            model_admin=ModelAdmin(db, settings),
            jobs=JobService(JobStore(db), settings=settings, ops=OpsSettings()),
            write_gate=WriteGate(db),
            insights=insights,
            audience=AudienceService(db, insights),
            segments=SegmentService(db, insights),
        )

    def start(self) -> None:
        """Wire listeners and start background work; a database that is down is tolerated
        (each step logs and its poller or the readiness check retries)."""
        self.readiness.ensure_schema()
        self._start_serving()
        try:
            self.jobs.recover_stale()
        except Exception as exc:  # the database may be down at start-up; serve anyway
            log.warning("jobs: could not recover stale jobs: %s", exc.__class__.__name__)
        threading.Thread(target=_warm_insights, args=(self.insights,), name="insights-warm",
                         daemon=True).start()

    def _start_serving(self) -> None:
        models, realtime = self.models, self.realtime
        models.changed_listeners.append(self.recommend.warm)
        self.model_admin.activated_listeners.append(models.sync)
        self.catalog.item_listeners.append(models.item_changed)
        self.catalog.item_listeners.append(self.recommend.item_changed)  # after the catalogue
        self.catalog.user_erased_listeners.append(realtime.user_erased)
        self.ingest.fresh_listeners.append(realtime.record)
        models.start()
        self.recommend.warm()
        heap.settle()  # the loaded version is long-lived: keep full collections off it
        self.poller.start()

    def stop(self) -> None:
        """Stop what ``start`` started, in reverse order, then close the client."""
        self.jobs.shutdown()
        self.poller.stop()
        self.models.stop()
        self.client.close()


def _warm_insights(insights: InsightsService) -> None:
    """Load the current snapshot before the first request needs it (seconds on big data)."""
    try:
        insights.rollup()
    except Exception as exc:  # no snapshot yet, or the database is down: requests retry
        log.info("insights not preloaded: %s", exc.__class__.__name__)
