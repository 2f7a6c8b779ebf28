"""The composition root: every service of the API process, built in the app's lifespan.

``Services`` are one tenant's: ``build`` constructs them without touching the database;
``start`` wires the listeners between them and starts the background work; ``stop``
undoes it in reverse order. The :class:`Deployment` holds what all tenants share (the
client, the tenant directory, the pool of loaded tenants, rate limits, job slots) and the
default tenant's services, loaded at start-up like before tenancy. Routes reach a
tenant's services only through the typed aliases of ``api.deps``, which resolve the
tenant from the request's key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.api.readiness import Readiness
from fastinsight.config import Settings
from fastinsight.errors import NotFoundError
from fastinsight.observability import TENANT_MODEL_BYTES
from fastinsight.ops.jobs.kinds import JOB_KINDS, TENANT_JOB_KINDS, Paths
from fastinsight.ops.jobs.runner import JobService
from fastinsight.ops.settings import OpsSettings
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.experiments.impressions import ImpressionBuffer
from fastinsight.services.experiments.online import OnlineMetrics
from fastinsight.services.experiments.service import ExperimentService
from fastinsight.services.experiments.serving import ExperimentRuntime
from fastinsight.services.experiments.tracking import TrackedRecommendations
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.audience import AudienceService
from fastinsight.services.insights.segments import SegmentService
from fastinsight.services.serving import heap
from fastinsight.services.serving.realtime import RealtimePoller, RealtimeState
from fastinsight.services.serving.recommend import RecommendService
from fastinsight.services.serving.versions import ModelManager
from fastinsight.services.tenancy.keys import DEFAULT_TENANT
from fastinsight.services.tenancy.quotas import RowQuota, no_quota
from fastinsight.services.training.admin import ModelAdmin
from fastinsight.services.writes import WriteGate
from fastinsight.storage.mongo import connect, get_database
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.impressions import ImpressionRepository
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.jobs import JobStore
from fastinsight.storage.mongo.users import UserRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    tenant: str
    owns_client: bool  # the single-tenant tools' own client; a deployment's is shared
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
    impressions: ImpressionBuffer  # served lists, written off the request path
    experiment_runtime: ExperimentRuntime  # the arms of running experiments, loaded
    experiments: ExperimentService
    tracked: TrackedRecommendations  # every recommendation answer: arm, id, impression
    online: OnlineMetrics
    stopping: threading.Event  # set by ``stop``: a start still running in the background ends

    @classmethod
    def build(cls, settings: Settings, *, client: MongoClient[Document] | None = None,
              tenant: str = DEFAULT_TENANT, quotas: Mapping[str, int | None] | None = None,
              paths: Paths | None = None, job_slots: threading.Semaphore | None = None) -> Services:
        """Construct every service; opens the client (lazily) but reads nothing yet."""
        owns_client = client is None
        client = client if client is not None else connect(settings)
        db = get_database(client, settings)
        admit = RowQuota(db, quotas).admit if quotas else no_quota
        models = ModelManager(db, settings)
        realtime = RealtimeState(InteractionRepository(db), UserRepository(db),
                                 max_users=settings.realtime_max_users)
        insights = InsightsService(db)
        recommend = RecommendService(db, settings, models, realtime)
        impression_repo = ImpressionRepository(db)
        impressions = ImpressionBuffer(
            impression_repo.insert_many, max_queued=settings.impression_buffer_max,
            batch_size=settings.impression_batch_size, flush_seconds=settings.impression_flush_seconds)
        runtime = ExperimentRuntime(db, settings, models, recommend, realtime)
        default = tenant == DEFAULT_TENANT
        return cls(
            tenant=tenant, owns_client=owns_client, settings=settings, client=client, db=db,
            readiness=Readiness(client, db, models),
            catalog=CatalogService(db, admit), ingest=IngestService(db, settings, admit),
            models=models, realtime=realtime,
            poller=RealtimePoller(realtime, settings.realtime_poll_seconds),
            recommend=recommend,
            model_admin=ModelAdmin(db, settings, load_errors=models.load_errors),
            jobs=JobService(JobStore(db), settings=settings, ops=OpsSettings(), paths=paths,
                            kinds=JOB_KINDS if default else TENANT_JOB_KINDS, slots=job_slots),
            write_gate=WriteGate(db),
            insights=insights,
            audience=AudienceService(db, insights),
            segments=SegmentService(db, insights),
            impressions=impressions, experiment_runtime=runtime,
            experiments=ExperimentService(db, settings, runtime),
            tracked=TrackedRecommendations(runtime, impressions, impression_repo, settings),
            online=OnlineMetrics(db, settings),
            stopping=threading.Event(),
        )

    def start(self, background: bool = False) -> None:
        """Wire listeners and start background work; a database that is down is tolerated
        (each step logs and its poller or the readiness check retries). ``background``
        (a tenant loaded on its first request): read the version's popular items, then do
        everything else in a thread, so that request is answered at once."""
        self._wire()
        if not background:
            self._start_work()
            return
        self.models.read_fallback()
        threading.Thread(target=self._start_work, name=f"tenant-start-{self.tenant}",
                         daemon=True).start()

    def _start_work(self) -> None:
        self.readiness.ensure_schema()
        if self.stopping.is_set():
            return
        self.models.start()
        self.recommend.warm()
        self._export_model_bytes()
        self._start_experiments()
        heap.settle()  # the loaded version is long-lived: keep full collections off it
        if self.stopping.is_set():
            return
        self.poller.start()
        try:
            self.jobs.recover_stale()
        except Exception:  # the database may be down at start-up; serve anyway
            log.warning("jobs: could not recover stale jobs", exc_info=True)
        threading.Thread(target=_warm_insights, args=(self.insights,), name="insights-warm",
                         daemon=True).start()

    def model_bytes(self) -> int:
        """Bytes of the served version's model files (what this tenant maps)."""
        bundle = self.models.current
        return int(bundle.doc.get("artefact_bytes", 0)) if bundle is not None else 0

    def _export_model_bytes(self) -> None:
        TENANT_MODEL_BYTES.labels(tenant=self.tenant).set(self.model_bytes())

    def _wire(self) -> None:
        models, realtime = self.models, self.realtime
        models.changed_listeners.append(self.recommend.warm)
        models.changed_listeners.append(self._export_model_bytes)
        self.model_admin.activated_listeners.append(models.sync)
        self.catalog.item_listeners.append(models.item_changed)
        self.catalog.item_listeners.append(self.recommend.item_changed)  # after the catalogue
        self.catalog.user_erased_listeners.extend([realtime.user_erased, self.tracked.user_erased])
        self.ingest.fresh_listeners.append(realtime.record)
        self.models.changed_listeners.append(self.experiment_runtime.models_changed)
        self.experiments.before_report.append(self.impressions.flush)
        self.online.before.append(self.impressions.flush)

    def _start_experiments(self) -> None:
        self.impressions.start()
        self.experiment_runtime.start()

    def stop(self, discard: bool = False) -> None:
        """Stop what ``start`` started, in reverse order, then close the client.
        ``discard``: the tenant was deleted, so queued impressions are dropped, not written."""
        self.stopping.set()
        self.jobs.shutdown()
        self.poller.stop()
        self.experiment_runtime.stop()
        self.models.stop()
        self.impressions.stop(discard=discard)  # else writes what is queued: nothing lost
        if self.owns_client:
            self.client.close()


def _warm_insights(insights: InsightsService) -> None:
    """Load the current snapshot before the first request needs it (seconds on big data)."""
    try:
        insights.rollup()
    except NotFoundError:
        log.info("insights not preloaded: there is no snapshot yet")
    except Exception:  # the database is down, or the snapshot unreadable: requests retry
        log.warning("insights not preloaded", exc_info=True)
