"""Feature routers (recommendations, admin, insights, jobs, dashboard) and their start-up hooks.

Each ``install_*`` adds routers with their auth dependencies and registers lifespan hooks
that build the feature's services from the shared container.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from fastinsight.api.container import Container
from fastinsight.api.security import require_admin, require_api_key


def install(app: FastAPI) -> None:
    install_recommendations(app)
    from fastinsight.api.routes import jobs  # operations jobs: router + lifespan hooks

    jobs.install(app)
    from fastinsight.api.routes import insights  # insights, audiences, segments, dashboard

    insights.install(app)


def install_recommendations(app: FastAPI) -> None:
    from fastinsight.api.routes import admin, recommend
    from fastinsight.services.serving import heap
    from fastinsight.services.serving.realtime import RealtimePoller, RealtimeState
    from fastinsight.services.serving.recommend import RecommendService
    from fastinsight.services.serving.versions import ModelManager
    from fastinsight.storage.mongo.interactions import InteractionRepository
    from fastinsight.storage.mongo.users import UserRepository

    app.include_router(recommend.router, dependencies=[Depends(require_api_key)])
    app.include_router(admin.router, dependencies=[Depends(require_admin)])

    def start(container: Container) -> None:
        manager = ModelManager(container.db, container.settings)
        realtime = RealtimeState(InteractionRepository(container.db), UserRepository(container.db))
        poller = RealtimePoller(realtime, container.settings.realtime_poll_seconds)
        container.extras["models"] = manager
        container.extras["realtime"] = poller
        recommend = RecommendService(container.db, container.settings, manager, realtime)
        container.extras["recommend"] = recommend
        manager.changed_listeners.append(recommend.warm)
        container.catalog.item_listeners.append(manager.item_changed)
        container.catalog.user_erased_listeners.append(realtime.user_erased)
        container.ingest.fresh_listeners.append(realtime.record)
        manager.start()
        recommend.warm()
        heap.settle()  # the loaded version is long-lived: keep full collections off it
        poller.start()

    def stop(container: Container) -> None:
        for name in ("realtime", "models"):
            service = container.extras.get(name)
            if service is not None:
                service.stop()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
