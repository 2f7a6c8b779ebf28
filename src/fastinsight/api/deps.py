"""Typed dependency aliases: the only way routes reach the services of ``api.composition``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from fastinsight.api.composition import Services
from fastinsight.api.readiness import Readiness
from fastinsight.api.security import Principal, deployment_of
from fastinsight.config import Settings
from fastinsight.ops.jobs.runner import JobService
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.experiments.online import OnlineMetrics
from fastinsight.services.experiments.service import ExperimentService
from fastinsight.services.experiments.tracking import TrackedRecommendations
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.audience import AudienceService
from fastinsight.services.insights.segments import SegmentService
from fastinsight.services.serving.recommend import RecommendService
from fastinsight.services.tenancy.admin import TenantAdmin
from fastinsight.services.training.admin import ModelAdmin


async def services_of(request: Request) -> Services:
    """The services of the tenant the request's key names (loaded on first use, in a
    worker thread). Fails closed: a route whose key check did not run answers 401."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or not principal.tenant:
        raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
    pool = deployment_of(request).pool
    services = pool.peek(principal.tenant)
    if services is None:
        services = await run_in_threadpool(pool.get, principal.tenant)
    return services


# The getters are ``async def``: FastAPI runs a plain ``def`` dependency in the thread
# pool, a hop that costs more than the lookup itself.
async def get_settings_dep(request: Request) -> Settings:
    return (await services_of(request)).settings


async def get_readiness(request: Request) -> Readiness:
    """The deployment's readiness (its database, the default tenant's served version)."""
    return deployment_of(request).default.readiness


async def get_catalog(request: Request) -> CatalogService:
    return (await services_of(request)).catalog


async def get_ingest(request: Request) -> IngestService:
    return (await services_of(request)).ingest


async def get_recommender(request: Request) -> RecommendService:
    return (await services_of(request)).recommend


async def get_model_admin(request: Request) -> ModelAdmin:
    return (await services_of(request)).model_admin


async def get_jobs(request: Request) -> JobService:
    return (await services_of(request)).jobs


async def get_insights(request: Request) -> InsightsService:
    return (await services_of(request)).insights


async def get_audience(request: Request) -> AudienceService:
    return (await services_of(request)).audience


async def get_segments(request: Request) -> SegmentService:
    return (await services_of(request)).segments


async def get_tracked(request: Request) -> TrackedRecommendations:
    return (await services_of(request)).tracked


async def get_experiments(request: Request) -> ExperimentService:
    return (await services_of(request)).experiments


async def get_online(request: Request) -> OnlineMetrics:
    return (await services_of(request)).online


async def get_tenants(request: Request) -> TenantAdmin:
    return deployment_of(request).tenants


async def require_writable(request: Request) -> None:
    """Write routes answer 503 (Retry-After) while a backup of the tenant pauses writes;
    reads go on."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    (await services_of(request)).write_gate.check()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ReadinessDep = Annotated[Readiness, Depends(get_readiness)]
CatalogDep = Annotated[CatalogService, Depends(get_catalog)]
IngestDep = Annotated[IngestService, Depends(get_ingest)]
RecommendDep = Annotated[RecommendService, Depends(get_recommender)]
ModelAdminDep = Annotated[ModelAdmin, Depends(get_model_admin)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
InsightsDep = Annotated[InsightsService, Depends(get_insights)]
AudienceDep = Annotated[AudienceService, Depends(get_audience)]
SegmentsDep = Annotated[SegmentService, Depends(get_segments)]
TrackedDep = Annotated[TrackedRecommendations, Depends(get_tracked)]
ExperimentsDep = Annotated[ExperimentService, Depends(get_experiments)]
OnlineDep = Annotated[OnlineMetrics, Depends(get_online)]
TenantsDep = Annotated[TenantAdmin, Depends(get_tenants)]
