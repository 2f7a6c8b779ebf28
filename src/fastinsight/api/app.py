"""The application factory: ``create_app(settings)``. Nothing connects at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from fastinsight import __version__
from fastinsight.api.deployment import Deployment
from fastinsight.api.deps import require_writable
from fastinsight.api.errors import install_error_handlers
from fastinsight.api.hardening import install_hardening
from fastinsight.api.keys import checked_settings
from fastinsight.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from fastinsight.api.openapi import document_api
from fastinsight.api.routes import (
    admin,
    beacon,
    dashboard,
    experiments,
    health,
    insights,
    interactions,
    items,
    jobs,
    operator,
    recommend,
    segments,
    users,
)
from fastinsight.api.security import require_admin, require_api_key, require_operator
from fastinsight.config import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Recommendations and customer insight over your users, items and interactions.

Every route under `/v1/` needs the `X-API-Key` header; routes under `/v1/admin/` need the
admin key. `POST /v1/beacon` (browsers leaving a page) takes the API key in its body
instead, and refuses the admin key. Public, without a key: `/health/live`,
`/health/ready`, `/metrics` (Prometheus: request counts and latencies per route template,
no user data), this documentation (`/docs`, `/redoc`, `/openapi.json`) and the dashboard
shell (`/dashboard` and its static files; every data call it makes sends a key). Errors
share one body: `{"error", "message", "details": [{"field", "message"}], "request_id"}`."""


def create_app(settings: Settings) -> FastAPI:
    settings = checked_settings(settings)  # refuses missing or well-known keys

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Requests run numpy in many threads at once; BLAS threads on top of them only
        # oversubscribe the cores. Serving never trains, so one BLAS thread per call.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
        deployment = Deployment.build(settings)
        app.state.deployment = deployment
        app.state.services = deployment.default  # the default tenant's, for tools and tests
        deployment.start()
        log.info("fastinsight %s started (db=%s)", __version__, settings.mongodb_db)
        try:
            yield
        finally:
            deployment.stop()

    app = FastAPI(
        title="FastInsight", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       max_json_bytes=settings.max_json_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    install_hardening(app, settings)
    if settings.cors_origins:
        # Outermost: a preflight is answered before any other layer sees it.
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"], expose_headers=["Retry-After", "X-Request-ID"],
            max_age=600)
    _include_routers(app)
    document_api(app, settings)  # every router is in: the OpenAPI document can be built
    return app


def _include_routers(app: FastAPI) -> None:
    """Every router with its auth dependencies. Routes are matched in this order."""
    api_key = [Depends(require_api_key)]
    # Admin writes (activation, training, insights refresh, segment rebuilds) honour a
    # backup's write pause like the data routes; GETs go on (see ``require_writable``).
    admin_key = [Depends(require_admin), Depends(require_writable)]
    # The hottest route is matched first: each route tried before it costs a few µs.
    app.include_router(recommend.hot_router)  # checks the API key itself
    app.include_router(health.router)
    # Feature routers before the core ones: their fixed paths (/v1/items/trending) must
    # win over /v1/items/{item_id}.
    app.include_router(recommend.router, dependencies=api_key)
    app.include_router(admin.router, dependencies=admin_key)
    app.include_router(jobs.router)  # declares require_admin itself
    app.include_router(insights.router, dependencies=api_key)
    app.include_router(insights.admin_router, dependencies=admin_key)
    app.include_router(segments.router, dependencies=api_key)
    app.include_router(segments.admin_router, dependencies=admin_key)
    app.include_router(experiments.admin_router, dependencies=admin_key)
    app.include_router(experiments.router, dependencies=api_key)
    app.include_router(dashboard.router)  # the page asks for a key itself
    app.mount("/dashboard/static", dashboard.static_files(), name="dashboard-static")
    protected = [Depends(require_api_key), Depends(require_writable)]
    for module in (users, items, interactions):
        app.include_router(module.router, dependencies=protected)
    app.include_router(experiments.write_router, dependencies=protected)
    app.include_router(beacon.router)  # the key is in the body: the route checks it itself
    app.include_router(operator.router, dependencies=[Depends(require_operator)])
