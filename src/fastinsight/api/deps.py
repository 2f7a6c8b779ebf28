"""Typed dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fastinsight.api.container import Container
from fastinsight.config import Settings
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.data.ingest import IngestService


# The dependencies that only read app state are ``async def``: FastAPI runs a plain
# ``def`` dependency in the thread pool, a hop that costs more than the lookup itself.
def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_container(request: Request) -> Container:
    return container_of(request)


async def get_settings_dep(request: Request) -> Settings:
    return container_of(request).settings


async def get_catalog(request: Request) -> CatalogService:
    return container_of(request).catalog


async def get_ingest(request: Request) -> IngestService:
    return container_of(request).ingest


def require_writable(request: Request) -> None:
    """Write routes answer 503 (Retry-After) while a backup pauses writes; reads go on."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    gate = container_of(request).extras.get("write_gate")
    if gate is not None:
        gate.check()


ContainerDep = Annotated[Container, Depends(get_container)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CatalogDep = Annotated[CatalogService, Depends(get_catalog)]
IngestDep = Annotated[IngestService, Depends(get_ingest)]
