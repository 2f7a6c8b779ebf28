"""Liveness and readiness (no API key: load balancers and orchestrators call these)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.responses import Response

from fastinsight.api.deps import ContainerDep
from fastinsight.errors import Unavailable
from fastinsight.storage.mongo import ping

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str | None = None
    model_version: str | None = None


@router.get("/health/live")
async def live() -> Health:
    return Health(status="ok")


@router.get("/health/ready", responses={503: {"description": "database not reachable"}})
def ready(container: ContainerDep) -> Health:
    """Ready when the database answers; 503 (with Retry-After) otherwise."""
    ping(container.client)
    if not container.ensure_schema():
        raise Unavailable("database schema could not be applied yet")
    manager = container.extras.get("models")
    version = getattr(manager, "active_version", None)
    return Health(status="ok", database="ok", model_version=version)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
