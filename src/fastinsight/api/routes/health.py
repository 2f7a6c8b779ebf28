"""Liveness and readiness (no API key: load balancers and orchestrators call these)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from fastinsight.api.deps import ReadinessDep
from fastinsight.schemas.core import Health

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> Health:
    return Health(status="ok")


@router.get("/health/ready", responses={503: {"description": "database not reachable"}})
def ready(readiness: ReadinessDep) -> Health:
    """Ready when the database answers; 503 (with Retry-After) otherwise."""
    return Health(status="ok", database="ok", model_version=readiness.check())


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
