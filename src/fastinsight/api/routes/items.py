"""Items: upsert, read, patch, delete, list, import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from fastinsight.api.deps import CatalogDep, IngestDep, SettingsDep
from fastinsight.api.routes._imports import IMPORT_DOC, FirstRow, run_import
from fastinsight.schemas.core import DeletedOut, ImportReport, ItemIn, ItemOut, ItemPatch, Page

router = APIRouter(prefix="/v1/items", tags=["items"])
ItemId = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={200: {"model": ItemOut}})
def upsert_item(body: ItemIn, svc: CatalogDep, response: Response) -> ItemOut:
    item, created = svc.upsert_item(body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return item


@router.get("")
def list_items(
    svc: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[ItemOut]:
    return svc.list_items(limit, cursor, category)


@router.post("/import", openapi_extra={"requestBody": IMPORT_DOC})
async def import_items(
    request: Request, svc: IngestDep, settings: SettingsDep, first_row: FirstRow = 1
) -> ImportReport:
    return await run_import(request, "items", svc.import_items, settings.max_body_bytes, first_row)


@router.get("/{item_id}")
def get_item(item_id: ItemId, svc: CatalogDep) -> ItemOut:
    return svc.get_item(item_id)


@router.patch("/{item_id}")
def patch_item(item_id: ItemId, body: ItemPatch, svc: CatalogDep) -> ItemOut:
    return svc.patch_item(item_id, body)


@router.delete("/{item_id}")
def delete_item(item_id: ItemId, svc: CatalogDep) -> DeletedOut:
    return svc.delete_item(item_id)
