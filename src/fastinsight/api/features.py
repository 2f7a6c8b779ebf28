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
    from fastinsight.services.models import ModelManager
    from fastinsight.services.recommend import RecommendService

    app.include_router(recommend.router, dependencies=[Depends(require_api_key)])
    app.include_router(admin.router, dependencies=[Depends(require_admin)])

    def start(container: Container) -> None:
        manager = ModelManager(container.db, container.settings)
        container.extras["models"] = manager
        container.extras["recommend"] = RecommendService(container.db, container.settings, manager)
        container.catalog.item_listeners.append(manager.item_changed)
        manager.start()

    def stop(container: Container) -> None:
        manager = container.extras.get("models")
        if manager is not None:
            manager.stop()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
